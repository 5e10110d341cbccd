"""A search for a word rare in a file, answered from the file's row postings.

Where a file's postings (store/postings.py) name the rows a query's words may be in,
those rows' row groups are read with pyarrow (every column of the row group, the least
a Parquet reader can decode here: DuckDB writes one page per column chunk) and only
the named rows are kept; DuckDB then applies the query's full WHERE to those few rows.
No message is matched by a regex and no DuckDB statement is made per file, which is
where today's search spends its time on a word in a few events a file (the benchmark's
``deadlock``: one 16,384-row group read and matched per hit, two statements a file).

Files whose postings cannot say (a word frequent in the file, a prefix, no postings: an
older file) are left to the engine's usual path; the caller merges both answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..store import postings
from ..store.blocks import ParquetFile
from ..store.columns import COLUMNS
from ..store.tokens import Need

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

NAMES = [name for name, _ in COLUMNS]


def rows_for(pf: ParquetFile, need: Need) -> np.ndarray | None:
    """The rows of ``pf`` that may match (sorted, distinct; a superset), or None when its
    postings cannot narrow them (a required word is frequent there, or a prefix)."""
    import numpy as np
    posted = pf.postings()
    if posted is None:
        return None

    def walk(n: Need) -> np.ndarray | None:
        if n.op == "keys":
            sets = [posted.rows_of(k) for k in n.keys if not k.startswith("*")]
            known = [s for s in sets if s is not postings.UNKNOWN]
            return _meet(known)
        parts = [walk(c) for c in n.children]
        if n.op == "and":
            return _meet([p for p in parts if p is not None])
        if any(p is None for p in parts):
            return None
        return np.unique(np.concatenate(parts)) if parts else None  # type: ignore[arg-type]

    return walk(need)


def _meet(sets: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np
    if not sets:
        return None
    out = sets[0]
    for s in sets[1:]:
        out = np.intersect1d(out, s)
    return np.unique(out)


def split(files: Iterable[ParquetFile], start: int, end: int,
          need: Need | None) -> tuple[list[tuple[ParquetFile, list[int]]], list[ParquetFile]]:
    """([(file, its rows in blocks that overlap [start, end])], the files the postings cannot
    answer)."""
    answered: list[tuple[ParquetFile, list[int]]] = []
    rest: list[ParquetFile] = []
    for pf in files:
        if pf.max_ts < start or pf.min_ts > end:
            rest.append(pf)  # out of range: the usual path skips it
            continue
        rows = rows_for(pf, need) if need is not None else None
        if rows is None:
            rest.append(pf)
            continue
        keep: list[int] = []
        first = 0
        for lo, hi, n, _, _ in pf.blocks:
            if hi >= start and lo <= end:
                keep.extend(int(r) for r in rows[(rows >= first) & (rows < first + n)])
            first += n
        answered.append((pf, keep))
    return answered, rest


def fetch(pf: ParquetFile, rows: list[int]) -> pa.Table:
    """Every column of these rows of the file (row numbers of the file, sorted): their row
    groups decoded by pyarrow, the rows taken. OSError when the file cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(pf.path, metadata=pf.arrow_metadata, arrow_extensions_enabled=False)
    pf.arrow_metadata = reader.metadata  # the footer is read once per file
    starts, first = [], 0
    md = reader.metadata
    for g in range(md.num_row_groups):
        starts.append(first)
        first += md.row_group(g).num_rows
    groups: dict[int, list[int]] = {}
    for r in rows:
        g = max(i for i, s in enumerate(starts) if s <= r)
        groups.setdefault(g, []).append(r - starts[g])
    parts = []
    for g, at in groups.items():
        # text columns written with a dictionary are read as one (~2 ms less a row group than
        # 16,384 strings each); pyarrow refuses that for a column written otherwise, so per group
        chunks = [md.row_group(g).column(j) for j in range(md.num_columns)]
        coded = [c.path_in_schema for c in chunks if c.physical_type == "BYTE_ARRAY" and c.path_in_schema in NAMES
                 and {"RLE_DICTIONARY", "PLAIN_DICTIONARY"} & set(c.encodings)
                 and not any(e.startswith("DELTA") for e in c.encodings)]
        try:
            table = pq.ParquetFile(pf.path, metadata=md, read_dictionary=coded,
                                   arrow_extensions_enabled=False).read_row_group(g, columns=NAMES)
        except pa.ArrowNotImplementedError:  # a dictionary pyarrow cannot keep after all
            table = reader.read_row_group(g, columns=NAMES)
        parts.append(as_plain(table.take(pa.array(at, pa.int64()))))
    return pa.concat_tables(parts, promote_options="permissive")


def as_plain(table: pa.Table) -> Any:
    """Dictionary columns as their values (DuckDB reads each column as the store's type)."""
    import pyarrow as pa
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)
