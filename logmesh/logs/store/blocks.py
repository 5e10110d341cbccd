"""A Parquet file as the read path sees it: its block index, read once.

Compaction (compact.py) writes the index beside each file (``.blocks.json``):
per block (= row group) its time and seq range, a Bloom filter of its message
tokens (tokens.py; the first format kept message trigrams instead, still read:
trigrams.py), per-minute counts and value counts; first, how many events carry an
Elasticsearch ``_id`` (``es_ids``: a start's scan opens no file without one,
ingest/es_ids_store.py). Queries prune and count with
it without opening the file. A file whose index is missing or of a format
version this one does not know (copied in by hand, or from another logmesh) is
still read: its ranges are rebuilt from the Parquet footer's row-group
statistics, and it is never pruned by tokens nor counted from an index.
"""

from __future__ import annotations

import binascii
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from . import layout, tokens, trigrams
from .columns import sql_str
from .duck import duckdb

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("logmesh.logs.query")  # said while a query refreshes: the query's logger
MAX_MASKS = 64  # keys whose block masks a file keeps (a few bytes each: one bool a block)


@dataclass
class ParquetFile:
    path: Path
    worker: int  # -1: a name layout.py cannot parse
    index: dict
    _filters: tokens.Blooms | list[int] | bool | None = None  # False: none usable
    arrow_metadata: object = None  # its Parquet footer as pyarrow read it (query/rare.py)
    _masks: dict = field(default_factory=dict)  # key_mask's answers, MAX_MASKS keys at most

    @property
    def min_ts(self) -> int:
        return self.index["min_ts"]

    @property
    def max_ts(self) -> int:
        return self.index["max_ts"]

    @property
    def rows(self) -> int:
        return self.index["rows"]

    @property
    def blocks(self) -> list[list[int]]:  # [min_ts, max_ts, rows, min_seq, max_seq]
        return self.index["blocks"]

    def summary(self, field_name: str, block: int) -> dict[str, int] | None:
        """{value: count} of ``field_name`` in a block (compact.SUMMARY_FIELDS), None if unknown."""
        per = (self.index.get("values") or {}).get(field_name)
        return per[block] if per is not None and block < len(per) else None

    def minutes(self, block: int) -> list[int] | None:
        """[first minute, count, count, ...] of a block, None if unknown."""
        per = self.index.get("minutes")
        m = per[block] if per is not None and block < len(per) else None
        return m or None

    def key_test(self, block: int) -> Callable[[str], bool] | None:
        """``has(key)`` for a block: may it hold this index key (tokens.py)? None when the file
        has no usable filters (then none of its blocks is pruned)."""
        if self._filters is None:
            self._filters = self._load_filters()
        filters = self._filters
        if isinstance(filters, tokens.Blooms):
            return lambda key: filters.has(block, key)
        if isinstance(filters, list):  # an old file's trigram bitmaps: sound for tokens too
            bitmap = filters[block]
            return lambda key: trigrams.has_key(bitmap, key)
        return None

    def key_mask(self, key: str) -> np.ndarray | None:
        """Per block, may it hold this index key? (numpy, all blocks at once: a file of
        small blocks has hundreds.) None when the file has no token Bloom filters."""
        if self._filters is None:
            self._filters = self._load_filters()
        filters = self._filters
        if not isinstance(filters, tokens.Blooms):
            return None
        out = self._masks.get(key)
        if out is None:  # kept: a search tests each file's blocks twice (slices, then source)
            import numpy as np
            bits = np.frombuffer(filters.raw, dtype=np.uint8).reshape(-1, filters.m // 8)
            out = np.ones(len(bits), dtype=bool)
            for p in tokens.positions(key, filters.m):
                out &= (bits[:, p >> 3] >> (p & 7)) & 1 == 1
            out.flags.writeable = False  # shared by every query that asks
            if len(self._masks) >= MAX_MASKS:
                self._masks.clear()
            self._masks[key] = out
        return out

    def _load_filters(self) -> tokens.Blooms | list[int] | bool:
        try:
            if "tokens" in self.index:
                return tokens.Blooms.decode(self.index["tokens"], len(self.blocks))
            if "trigrams" in self.index:
                return trigrams.decode_bitmaps(self.index["trigrams"], len(self.blocks))
        except (ValueError, TypeError, KeyError, AttributeError, zlib.error, binascii.Error) as exc:
            log.warning("%s: unreadable token filters (%s); scanning it whole", self.path.name, exc)
        return False


def open_parquet(path: Path, con: duckdb.DuckDBPyConnection) -> ParquetFile | None:
    """The file and its index; ``con`` reads the footer when there is no usable index.
    None (said in the log) when the file cannot be read at all."""
    parsed = layout.parse_name(path.name, layout.PARQUET_SUFFIX)
    index = None
    try:
        index = orjson.loads(path.with_name(layout.blocks_name(path.name)).read_bytes())
        if not well_formed(index):
            index = None
    except (OSError, orjson.JSONDecodeError):
        index = None
    if index is None:
        try:
            index = index_from_metadata(con, path)
        except duckdb.Error as exc:
            log.warning("%s: cannot read (%s); skipped", path.name, exc)
            return None
    return ParquetFile(path, parsed[0] if parsed is not None else -1, index)


def well_formed(index: object) -> bool:
    """Is this a block index of a known version with what every query reads of it (the
    ranges of the file and of each block)? A damaged one that still parses as JSON failed
    every query of its range (issue 18); it is not used, as a missing one."""
    if not isinstance(index, dict) or index.get("version") not in layout.READABLE_PARQUET_VERSIONS:
        return False
    if not all(type(index.get(k)) is int for k in ("rows", "min_ts", "max_ts", "first_seq", "last_seq")):
        return False
    blocks = index.get("blocks")
    return isinstance(blocks, list) and all(
        isinstance(b, list) and len(b) == 5 and all(type(v) is int for v in b) for b in blocks)


def index_from_metadata(con: duckdb.DuckDBPyConnection, path: Path) -> dict:
    """A block index without trigrams, minutes or value counts, from the row groups' statistics."""
    rows = con.execute(
        "SELECT row_group_id, any_value(row_group_num_rows), "
        "min(TRY_CAST(stats_min_value AS BIGINT)) FILTER (WHERE path_in_schema = '@timestamp'), "
        "max(TRY_CAST(stats_max_value AS BIGINT)) FILTER (WHERE path_in_schema = '@timestamp'), "
        "min(TRY_CAST(stats_min_value AS BIGINT)) FILTER (WHERE path_in_schema = 'seq'), "
        "max(TRY_CAST(stats_max_value AS BIGINT)) FILTER (WHERE path_in_schema = 'seq') "
        f"FROM parquet_metadata({sql_str(str(path))}) GROUP BY row_group_id ORDER BY row_group_id"
    ).fetchall()
    blocks = [[r[2] or 0, r[3] or 0, r[1], r[4] or 0, r[5] or 0] for r in rows]
    return {"rows": sum(b[2] for b in blocks), "min_ts": min((b[0] for b in blocks), default=0),
            "max_ts": max((b[1] for b in blocks), default=0),
            "first_seq": min((b[3] for b in blocks), default=0),
            "last_seq": max((b[4] for b in blocks), default=0), "blocks": blocks, "services": None}
