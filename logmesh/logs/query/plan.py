"""Planning a query: which files and blocks it reads, and the SQL that reads them.

Pure functions of a :class:`Snapshot` (what the engine's view of the store,
view.py, last saw) and the query; nothing here touches the disk or DuckDB, so
the choices are table-tested (tests/logs/query/test_plan.py).

Pruning, before DuckDB sees a file:

* by time: a file or block whose [min_ts, max_ts] misses the range is left out;
* by message tokens (store/tokens.py): a block whose Bloom filter lacks a required
  word (or a prefix's first characters) is left out; the kept blocks become ``@timestamp BETWEEN`` ranges that DuckDB
  matches against row group statistics, so only those row groups are read.

Answers from the block index, for blocks wholly inside the range (the others are read):
counts of every event or of one ``field:value`` on a summarised field
(compact.SUMMARY_FIELDS), match-all histograms (per-minute counts), histograms
``by`` and ``top`` of a summarised field. A block is never both counted from its
index and read: see :func:`source`.

Searches that want the newest (or oldest) N events scan in time slices from
that end, each a few times larger than the last, and stop once N are found
(:func:`slices`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..event import FIELD_TYPES
from ..store import long_lines, tokens
from ..store.blocks import ParquetFile
from ..store.catalogue import SegmentInfo
from ..store.columns import SELECT_LIST, TS, read_ndjson_lenient_sql, sql_str
from ..store.compact import SUMMARY_FIELDS
from . import kql
from .errors import QueryError

if TYPE_CHECKING:
    import numpy as np

MAX_PRUNE_RANGES = 200  # more kept block ranges than this are merged (a superset: see source)
FIRST_SLICE_ROWS = 250_000  # rows in the first time slice of a newest/oldest-N search; x4 each
NICE_INTERVALS_MS = [1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
                     900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
                     86_400_000, 172_800_000, 604_800_000, 2_592_000_000]
TARGET_BUCKETS = 100


@dataclass
class LiveSegment:
    """A segment not compacted yet, loaded into the engine's live table (view.py): what it
    holds so far and where the next load starts. Mutated by view.py's refresh only."""

    id: int
    path: Path
    worker: int
    first_seq: int
    offset: int = 0
    rows: int = 0
    min_ts: int | None = None
    max_ts: int | None = None
    services: dict[str, int] = field(default_factory=dict)
    inode: int = 0  # recovery rewrites a damaged segment as a new file: read that one again
    last_line: bytes = b""  # the last line loaded, ending at offset: still there, or read again


@dataclass(frozen=True)
class Snapshot:
    """One consistent view: which files and live segments a query reads."""

    parquet: tuple[ParquetFile, ...]
    live: tuple[LiveSegment, ...]  # copies: safe to read while the engine refreshes
    gen: int  # the live table's generation: rows loaded later have a higher one (one per chunk)
    cold: tuple[SegmentInfo, ...] = ()  # sealed, not compacted, read from the file per query

    def live_ids(self, start: int | None = None, end: int | None = None) -> list[int]:
        return [s.id for s in self.live if s.rows and s.min_ts is not None
                and (start is None or s.max_ts >= start) and (end is None or s.min_ts <= end)]  # type: ignore[operator]


@dataclass(frozen=True)
class Source:
    """A FROM clause over the snapshot, and what it costs."""

    sql: str | None  # None: nothing to read (everything was answered from the indexes)
    rows: int  # an estimate: rows in the kept blocks and live segments
    counted: tuple[tuple[ParquetFile, int], ...] = ()  # (file, block) left to the caller


@dataclass
class Unit:
    """A block or a live or cold segment, as the slicing of a search sees it."""

    min_ts: int
    max_ts: int
    rows: int


def where(node: kql.Node | None, now: int) -> tuple[str, list[Any]]:
    """The WHERE of a query (no query: every event); relative times are read against ``now``."""
    if node is None:
        return "TRUE", []
    return kql.compile_where(node, now=now)


def choose_interval(span_ms: int) -> int:
    for step in NICE_INTERVALS_MS:
        if span_ms / step <= TARGET_BUCKETS:
            return step
    return NICE_INTERVALS_MS[-1] * max(1, -(-span_ms // (NICE_INTERVALS_MS[-1] * TARGET_BUCKETS)))


def buckets(start: int, end: int, interval: int | None, most: int) -> tuple[int, int, int]:
    """``(interval, first bucket's start, bucket count)`` of a time series over [start, end];
    the interval chosen when not given. Raises QueryError past ``most`` buckets."""
    interval = interval or choose_interval(end - start + 1)
    first = start // interval * interval
    nb = (end - first) // interval + 1
    if nb > most:
        raise QueryError(f"interval {interval} ms makes {nb} buckets over this range; at most "
                         f"{most}: pick a larger interval or leave it out")
    return interval, first, nb


def summary_term(node: kql.Node | None) -> tuple[str, str] | None:
    """``field:value`` on a summarised field -> (field, value as the index keys it), else None."""
    if not isinstance(node, kql.Match) or node.field not in SUMMARY_FIELDS:
        return None
    if not isinstance(node.value, kql.Literal):
        return None
    kind = FIELD_TYPES[node.field]
    text = node.value.text
    if kind == "keyword":
        return node.field, text
    if kind == "long" and re.fullmatch(r"[+-]?[0-9]{1,19}", text):
        n = int(text)
        return (node.field, str(n)) if abs(n) < 2**63 else None
    return None


def merge_ranges(ranges: list[tuple[int, int]], cap: int) -> list[tuple[int, int]]:
    """``ranges`` joined where they touch, then across the smallest gaps until at most ``cap``
    are left: past the cap a superset, which also covers what lies in the gaps (source()
    reads the blocks there rather than count them from their index). Sorts ``ranges``."""
    ranges.sort()
    out: list[list[int]] = []
    for a, b in ranges:
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    while len(out) > cap:  # merge across the smallest gaps: a superset of the kept blocks
        gaps = sorted(range(len(out) - 1), key=lambda i: out[i + 1][0] - out[i][1])
        drop = set(gaps[: len(out) - cap])
        merged: list[list[int]] = []
        for i, r in enumerate(out):
            if merged and (i - 1) in drop:
                merged[-1][1] = r[1]
            else:
                merged.append(list(r))
        out = merged
    return [(a, b) for a, b in out]


def block_mask(pf: ParquetFile, need: tokens.Need) -> np.ndarray | None:
    """Per block of ``pf``: may it hold what ``need`` requires? All blocks at once (numpy: a
    file of small blocks has hundreds, ~1 µs each this way against ~10 in :func:`may_match`).
    None: the file has no token Bloom filters."""
    def walk(n: tokens.Need) -> np.ndarray | None:
        if n.op == "keys":
            out = None
            for key in n.keys:
                has = pf.key_mask(key)
                if has is None:
                    return None
                out = has if out is None else out & has
            return out
        parts = [walk(c) for c in n.children]
        if n.op == "and":
            known = [p for p in parts if p is not None]
            if not known:
                return None
            out = known[0]
            for p in known[1:]:
                out = out & p
            return out
        if any(p is None for p in parts):
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out | p  # type: ignore[operator]
        return out

    return walk(need)


def allowed(pf: ParquetFile, need: tokens.Need | None) -> list[bool] | None:
    """Per block, :func:`may_match`, for all blocks of the file at once; None: every block."""
    if need is None:
        return None
    mask = block_mask(pf, need)
    return mask.tolist() if mask is not None else [may_match(pf, i, need) for i in range(len(pf.blocks))]


def may_match(pf: ParquetFile, block: int, need: tokens.Need | None) -> bool:
    """Can the block hold what ``need`` requires? True when its file has no filters."""
    if need is None:
        return True
    has = pf.key_test(block)
    return has is None or need.allows(has)


def source(snap: Snapshot, start: int, end: int, need: tokens.Need | None = None,
           workers: set[int] | None = None, seq: int | None = None,
           from_index: Callable[[ParquetFile, int], bool] | None = None,
           live: bool = True) -> Source | None:
    """Rows of the Parquet blocks and live segments that may match, already cut to [start, end].

    Files wholly inside the range are read without a time filter (reading @timestamp
    would double the cost of a count: 15 vs 8 ms over 2.5M rows); the others, and
    those whose blocks were pruned, get their own scan with their own time ranges, so
    one file's ranges never make DuckDB read another file's row groups.

    ``from_index(file, block)`` True: the caller answers that block from its index
    (it is returned in ``counted`` instead of read) -- unless a block that is read shares
    a timestamp with it, since a time range cannot then take one without the other.
    """
    whole: list[str] = []
    parts: list[str] = []
    counted: list[tuple[ParquetFile, int]] = []
    rows = 0
    for pf in snap.parquet:
        if pf.max_ts < start or pf.min_ts > end:
            continue
        if workers is not None and pf.worker not in workers:
            continue
        if seq is not None and not pf.index["first_seq"] <= seq <= pf.index["last_seq"]:
            continue
        kept: list[tuple[int, int]] = []
        indexed: list[int] = []
        pruned = False
        ok = allowed(pf, need)
        for i, (lo, hi, n, s0, s1) in enumerate(pf.blocks):
            if hi < start or lo > end:
                continue
            if (seq is not None and not s0 <= seq <= s1) or (ok is not None and not ok[i]):
                pruned = True
                continue
            if from_index is not None and from_index(pf, i):
                indexed.append(i)
                continue
            kept.append((max(lo, start), min(hi, end)))
            rows += n
        # A block read by time range would also read its neighbours' edge rows, and ranges
        # merged past MAX_PRUNE_RANGES whole blocks between them: a block counted from its
        # index that a range read reaches is read instead, never both.
        ranges = merge_ranges(list(kept), MAX_PRUNE_RANGES)
        changed = bool(indexed and kept)
        while changed:
            changed = False
            for i in list(indexed):
                lo, hi, n = pf.blocks[i][:3]
                if any(lo <= r_hi and hi >= r_lo for r_lo, r_hi in ranges):
                    indexed.remove(i)
                    kept.append((max(lo, start), min(hi, end)))
                    rows += n
                    changed = True
            if changed:
                ranges = merge_ranges(list(kept), MAX_PRUNE_RANGES)
        counted.extend((pf, i) for i in indexed)
        pruned |= bool(indexed)
        if not kept:
            continue
        path = sql_str(str(pf.path))
        if not pruned and start <= pf.min_ts and pf.max_ts <= end:
            whole.append(path)
            continue
        cond = " OR ".join(f"({TS} BETWEEN {a} AND {b})" for a, b in ranges)
        parts.append(f"SELECT {SELECT_LIST} FROM read_parquet({path}) WHERE {cond}")
    if whole:
        parts.insert(0, f"SELECT {SELECT_LIST} FROM read_parquet([{', '.join(whole)}])")
    for seg in snap.cold:
        info = seg.index or {}
        if info.get("max_ts", end) < start or info.get("min_ts", start) > end:
            continue
        if workers is not None and seg.worker not in workers:
            continue
        if seq is not None and not seg.first_seq <= seq <= info.get("last_seq", seq):
            continue
        room = long_lines.object_bytes(info.get("longest"))  # its largest write: no line is longer
        parts.append(f"SELECT {SELECT_LIST} FROM {read_ndjson_lenient_sql(str(seg.path), room)} "
                     f"WHERE {TS} BETWEEN {int(start)} AND {int(end)}")
        rows += int(info.get("count", 0))
    in_range = set(snap.live_ids(start, end))
    segs = [s for s in snap.live if live and s.id in in_range and (workers is None or s.worker in workers)]
    if segs:
        ids = ", ".join(str(s.id) for s in segs)
        parts.append(f"SELECT {SELECT_LIST} FROM live WHERE _seg IN ({ids}) "
                     f"AND {TS} BETWEEN {int(start)} AND {int(end)}")
        rows += sum(s.rows for s in segs)
    if not parts and not counted:
        return None
    return Source(" UNION ALL ".join(parts) if parts else None, rows, tuple(counted))


def units(snap: Snapshot, start: int, end: int, need: tokens.Need | None) -> list[Unit]:
    out = []
    for pf in snap.parquet:
        if pf.max_ts < start or pf.min_ts > end:
            continue
        ok = allowed(pf, need)
        for i, (lo, hi, n, _, _) in enumerate(pf.blocks):
            if hi < start or lo > end:
                continue
            if ok is not None and not ok[i]:
                continue
            out.append(Unit(lo, hi, n))
    for s in snap.live:
        if s.rows and s.min_ts is not None and s.max_ts >= start and s.min_ts <= end:  # type: ignore[operator]
            out.append(Unit(s.min_ts, s.max_ts, s.rows))  # type: ignore[arg-type]
    for seg in snap.cold:
        info = seg.index or {}
        lo, hi = int(info.get("min_ts", 0)), int(info.get("max_ts", 0))
        if hi >= start and lo <= end:
            out.append(Unit(lo, hi, int(info.get("count", 0))))
    return out


def slices(units: list[Unit], start: int, end: int, desc: bool,
           first: int = FIRST_SLICE_ROWS) -> list[tuple[int, int]]:
    """Cut [start, end] into time slices from the wanted end, the first of ~``first`` rows,
    each next ~4x the rows of the last."""
    if not desc:  # oldest first is newest first on negated times: the same cuts, mirrored
        mirrored = [Unit(-u.max_ts, -u.min_ts, u.rows) for u in units]
        return [(-hi, -lo) for lo, hi in slices(mirrored, -end, -start, True, first)]
    if not units:
        return []
    out = []
    budget = first
    units = sorted(units, key=lambda u: -u.max_ts)
    hi = min(end, max(u.max_ts for u in units))
    while hi >= start:
        acc, cut = 0, start
        for u in units:
            if u.min_ts > hi:
                continue
            acc += u.rows
            if acc >= budget:
                cut = max(start, min(u.min_ts, hi))
                break
        out.append((cut, hi))
        hi = cut - 1
        budget *= 4
        if not any(u.min_ts <= hi for u in units):
            break
    return out
