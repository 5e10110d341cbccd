"""Newest (or oldest) N events for a word the token index finds in few blocks of small row groups.

The usual path (engine.search) hands DuckDB one statement of a ``read_parquet`` per
file with the kept blocks as ``@timestamp`` ranges. DuckDB pays per file and per row
group it opens (the footer's row groups checked, every column's reader set up) and
decodes ``message`` of each kept row group to run the query's regex; for 16,384-row
groups that is still the cheaper reader (it skips the other columns' vectors that hold
no hit), but for small row groups its per-group cost dominates.

Here the kept blocks of files whose blocks are their row groups and hold at most
MAX_GROUP_ROWS rows (compacted with a smaller ``block_rows``: the logs service's
``--block-rows``, bench/query.py
``--block-rows``; files of the default size, old or hand-copied ones and files whose
index does not line up take the usual path) are read by pyarrow, each row group whole
(no reader here decodes less than a column chunk: docs/benchmarks.md, "Rare word,
fourth pass"), in tasks run READ_THREADS at a time (pyarrow lets go of the GIL), footers
read once per file. Each task's rows are cut at once to those whose ``message`` holds the
query's required words as substrings in any case (a superset of the token match: the
Bloom filters' own rule, per row), and DuckDB runs the query's full WHERE over what is
left: a few rows.

Groups are read newest first in waves (FIRST_WAVE_ROWS, then 4x each) and the search
stops once the N-th event found is newer than every group not read yet.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..event import FIELD_TYPES
from ..store.blocks import ParquetFile
from ..store.columns import COLUMNS, TS, ident
from ..store.tokens import Need
from .errors import DamagedFile, FileGone, QueryError
from .execution import DuckDB, event_dict
from .plan import block_mask

if TYPE_CHECKING:
    import pyarrow as pa

NAMES = [name for name, _ in COLUMNS]
MAX_GROUP_ROWS = 8192  # files with larger row groups take the usual path: DuckDB decodes a hit's
# 16,384-row group for less than pyarrow (it skips the other columns' vectors without a match)
MAX_ROWS = 2_000_000  # kept rows past this: the usual path (it stops early for a frequent word)
FIRST_WAVE_ROWS = 250_000  # as plan.FIRST_SLICE_ROWS: rows of the first wave, x4 each
READ_THREADS = 2  # row groups decoded at once (the machine's cores; pyarrow releases the GIL)
GROUPS_PER_TASK = 4  # row groups of one file read by one call
SMALL_DICTIONARY = 4096  # compressed bytes of a column chunk's dictionary page read as a dictionary

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class Group:
    """A kept block of a file, which is its row group ``index``."""

    pf: ParquetFile
    index: int
    min_ts: int
    max_ts: int
    rows: int


def kept(db: DuckDB, files: tuple[ParquetFile, ...], start: int, end: int,
         need: Need) -> tuple[list[Group], list[ParquetFile]] | None:
    """(the kept groups of the files this path reads, the files left to the usual path), or
    None when the kept rows are too many for it (MAX_ROWS)."""
    import numpy as np
    groups: list[Group] = []
    rest: list[ParquetFile] = []
    rows = 0
    for pf in files:
        if pf.max_ts < start or pf.min_ts > end:
            continue
        if not 0 < pf.index.get("block_rows", 0) <= MAX_GROUP_ROWS:
            rest.append(pf)  # large row groups (DuckDB decodes less of them), or an unknown size
            continue
        mask = block_mask(pf, need)
        if mask is None:
            rest.append(pf)  # no usable filters
            continue
        blocks = np.asarray(pf.blocks, dtype=np.int64).reshape(-1, 5)
        sel = np.flatnonzero(mask & (blocks[:, 1] >= start) & (blocks[:, 0] <= end))
        try:
            if len(sel) and not lines_up(pf):
                rest.append(pf)
                continue
        except (OSError, ValueError) as exc:
            raise file_error(db, pf, exc) from None
        for i in sel.tolist():
            lo, hi, n = pf.blocks[i][:3]
            groups.append(Group(pf, i, lo, hi, n))
            rows += n
        if rows > MAX_ROWS:
            return None
    return groups, rest


def required(need: Need, message: pa.Array) -> pa.Array:
    """Per row: does ``message`` hold every word ``need`` requires, as a substring in any case
    (prefix keys ``*abcd`` as ``abcd``)? A superset of the rows whose tokens match."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def walk(n: Need) -> pa.Array | None:
        if n.op == "keys":
            out = None
            for key in n.keys:
                has = pc.match_substring(message, key.lstrip("*"), ignore_case=True)
                out = has if out is None else pc.and_kleene(out, has)
            return out
        parts = [p for p in (walk(c) for c in n.children) if p is not None]
        if not parts:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = pc.and_kleene(out, p) if n.op == "and" else pc.or_kleene(out, p)
        return out

    got = walk(need)
    if got is None:
        return pa.array([True] * len(message))
    return pc.fill_null(got, False)


def footer(pf: ParquetFile) -> Any:
    """The file's footer as pyarrow reads it, read once (files never change once written)."""
    import pyarrow.parquet as pq
    if pf.arrow_metadata is None:
        pf.arrow_metadata = pq.read_metadata(pf.path)
    return pf.arrow_metadata


def lines_up(pf: ParquetFile) -> bool:
    """Are the file's index blocks its row groups (same count, same rows)?"""
    md = footer(pf)
    return md.num_row_groups == len(pf.blocks) and all(
        md.row_group(i).num_rows == b[2] for i, b in enumerate(pf.blocks))


def small_dictionaries(md: Any, indexes: list[int]) -> list[str]:
    """The string columns whose pages are all in a small dictionary in these row groups
    (service names, levels, paths): read as dictionaries, ~30% less CPU a row group."""
    out = []
    for j in range(md.num_columns):
        chunks = [md.row_group(g).column(j) for g in indexes]
        if all(c.physical_type == "BYTE_ARRAY" and c.has_dictionary_page
               and c.data_page_offset - c.dictionary_page_offset < SMALL_DICTIONARY
               and not any(e.startswith("DELTA") for e in c.encodings) for c in chunks):
            out.append(chunks[0].path_in_schema)
    return [n for n in out if n in NAMES and n != "message"]  # message: matched as strings


def read_groups(pf: ParquetFile, indexes: list[int], need: Need) -> pa.Table:
    """These row groups of the file, every column, cut to the rows :func:`required` keeps."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    md = footer(pf)
    try:
        table = pq.ParquetFile(pf.path, metadata=md, arrow_extensions_enabled=False,
                               read_dictionary=small_dictionaries(md, indexes)).read_row_groups(
            indexes, columns=NAMES, use_threads=False)
    except pa.ArrowNotImplementedError:  # a page pyarrow cannot keep as a dictionary after all
        table = pq.ParquetFile(pf.path, metadata=md, arrow_extensions_enabled=False).read_row_groups(
            indexes, columns=NAMES, use_threads=False)
    table = table.filter(required(need, table.column("message")))
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)  # DuckDB reads each column as the store's type


def pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="rare-read")
        return _pool


def waves(groups: list[Group], desc: bool) -> list[list[Group]]:
    """The groups newest (oldest) first, cut into waves of FIRST_WAVE_ROWS rows, x4 each."""
    order = sorted(groups, key=(lambda g: -g.max_ts) if desc else (lambda g: g.min_ts))
    out: list[list[Group]] = []
    budget, acc = FIRST_WAVE_ROWS, 0
    for g in order:
        if not out or acc >= budget:
            if out:
                budget *= 4
            out.append([])
            acc = 0
        out[-1].append(g)
        acc += g.rows
    return out


def read_wave(db: DuckDB, wave: list[Group], need: Need) -> list[pa.Table]:
    """Each file's groups of the wave read in tasks of GROUPS_PER_TASK, READ_THREADS at once."""
    by_file: dict[int, tuple[ParquetFile, list[int]]] = {}
    for g in wave:
        by_file.setdefault(id(g.pf), (g.pf, []))[1].append(g.index)
    tasks = [(pf, sorted(ix)[i:i + GROUPS_PER_TASK]) for pf, ix in by_file.values()
             for i in range(0, len(ix), GROUPS_PER_TASK)]

    def run(task: tuple[ParquetFile, list[int]]) -> pa.Table:
        pf, ix = task
        try:
            return read_groups(pf, ix, need)
        except (OSError, ValueError) as exc:  # pyarrow's errors are OSErrors and ValueErrors
            raise file_error(db, pf, exc) from None

    return list(pool().map(run, tasks))


def file_error(db: DuckDB, pf: ParquetFile, exc: Exception) -> Exception:
    """What a file pyarrow could not read means for the query: gone (compaction, retention),
    damaged (the engine sets it aside and asks again), or this query's own error."""
    if isinstance(exc, FileNotFoundError):
        return FileGone(str(exc))
    if db.unreadable(pf.path):
        return DamagedFile(pf.path)
    return QueryError(f"the query cannot be run on these events: {exc}")


def search(db: DuckDB, files: tuple[ParquetFile, ...], need: Need, where: str, params: list[Any],
           start: int, end: int, desc: bool, limit: int) -> tuple[list[dict], list[ParquetFile]] | None:
    """(the first ``limit`` events matching ``where`` in the kept groups of the files this path
    reads, the files left to the usual path); None: too many kept rows, all to the usual path."""
    import pyarrow as pa
    picked = kept(db, files, start, end, need)
    if picked is None:
        return None
    groups, rest = picked
    direction = "DESC" if desc else "ASC"
    json = ", ".join(f"CAST({ident(n)} AS JSON) AS {ident(n)}" for n, t in FIELD_TYPES.items() if t == "object")
    sql = (f"SELECT * FROM (SELECT * REPLACE ({json}) FROM _rare_rows) WHERE {TS} BETWEEN ? AND ? "
           f"AND ({where}) ORDER BY {TS} {direction}, seq {direction} LIMIT {int(limit)}")
    tables: list[pa.Table] = []
    events: list[dict] = []
    cuts = waves(groups, desc)
    for n, wave in enumerate(cuts):
        tables.extend(t for t in read_wave(db, wave, need) if t.num_rows)
        if not tables:
            continue
        names, rows = db.run_on("_rare_rows", pa.concat_tables(tables, promote_options="permissive"),
                                sql, [start, end, *params])
        events = [event_dict(names, r) for r in rows]
        if len(events) >= limit and n + 1 < len(cuts):
            edge = cuts[n + 1][0].max_ts if desc else cuts[n + 1][0].min_ts
            last = events[-1]["@timestamp"]
            if (last > edge) if desc else (last < edge):
                break  # every group not read yet lies past the last event kept
    return events, rest
