"""The query engine: DuckDB over the Parquet files and the live NDJSON segments.

Where an event is read from::

    parquet/<seg>.parquet      every compacted segment (store/compact.py); its .blocks.json
                               gives each row group's time range and message trigrams
    live (in-memory table)     every segment without a Parquet file yet -- the active
                               ones of every worker and sealed ones awaiting compaction --
                               loaded incrementally: each refresh reads only the bytes
                               appended since the last one (whole lines only)

A segment is read from its NDJSON only while its Parquet file does not exist;
once the file appears (the compactor's commit point) the segment's rows stop
being queried, so nothing is counted twice. Every process (each ``--workers``
process answers API requests) keeps its own live table, fed from the files,
so what one worker writes is seen by all within one refresh (each query and
every tail poll refreshes; a refresh that finds nothing new costs a listdir
and a stat per live segment).

Pruning, before DuckDB sees a file:

* by time: a file or block whose [min_ts, max_ts] misses the range is left out;
* by message trigrams (store/trigrams.py): a block that cannot hold a required word
  is left out; the kept blocks become ``@timestamp BETWEEN`` ranges that DuckDB
  matches against row group statistics, so only those row groups are read.

Answers from the block index, for blocks wholly inside the range (the others are read):
counts of every event or of one ``field:value`` on a summarised field
(compact.SUMMARY_FIELDS), match-all histograms (per-minute counts), histograms
``by`` and ``top`` of a summarised field. A block is never both counted from its
index and read: see ``source``.

Searches that want the newest (or oldest) N events scan in time slices from
that end, each a few times larger than the last, and stop once N are found.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ..event import FIELD_TYPES
from ..store import layout, trigrams
from ..store.columns import (
    COLUMNS,
    MESH_SELECT,
    SELECT_LIST,
    TS,
    ident,
    read_ndjson_lenient_sql,
    read_ndjson_sql,
    sql_str,
)
from ..store.compact import MINUTE_MS, SUMMARY_FIELDS, decode_bitmaps
from ..store.reader import SegmentInfo, list_segments, read_complete
from . import kql, trigram_need

log = logging.getLogger("logmesh.logs.query")

LIVE_CHUNK_BYTES = 64 * 1024 * 1024  # a live segment is loaded at most this much per step
# A sealed segment still waiting for compaction stays in memory this long at most, and only
# while the live table holds less than LIVE_MAX_BYTES of NDJSON; past either (compaction off
# or behind) it is read from its file by each query instead: slower, but memory stays bounded.
LIVE_SEALED_SECONDS = 600.0
LIVE_MAX_BYTES = 1024 * 1024 * 1024
GONE_GRACE_SECONDS = 30.0  # rows of a compacted segment are dropped from memory this long after
MAX_PRUNE_RANGES = 200  # more kept block ranges than this are merged (superset: still correct)
FIRST_SLICE_ROWS = 250_000  # rows in the first time slice of a newest/oldest-N search; x4 each
MAX_BUCKETS = 10_000  # histogram buckets per answer; a smaller interval is refused
BY_VALUES = 10  # histogram `by`: the most frequent values; the rest are summed under OTHER
OTHER = "(other)"
NONE = "(none)"
JSON_COLUMNS = {n for n, t in COLUMNS if t == "JSON"}
NICE_INTERVALS_MS = [1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
                     900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
                     86_400_000, 172_800_000, 604_800_000, 2_592_000_000]
TARGET_BUCKETS = 100


class QueryError(ValueError):
    """A request the engine cannot answer as asked (an HTTP 400); the message says why."""


class _DamagedFile(Exception):
    """A Parquet file of the store cannot be read: quarantined, and the query asked again."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


REFRESH_WAIT_SECONDS = 0.5  # a query waits this long for another thread's refresh, then goes on


class _FileGone(Exception):
    """A file the query's snapshot named was removed meanwhile: refresh and ask again."""


MAX_DAMAGED_PER_QUERY = 3  # files set aside (or found gone) before a query gives up and says why
_QUOTED_PATH = re.compile(r"""['"]([^'"]+\.(?:parquet|ndjson))['"]""")
_QUOTED_PARQUET = re.compile(r"""['"]([^'"]+\.parquet)['"]""")


class QueryTimeout(Exception):
    """A query ran past its deadline and was interrupted (an HTTP 503)."""


# -- what the engine knows about the files --------------------------------------------------------


@dataclass
class ParquetFile:
    path: Path
    worker: int
    index: dict
    _bitmaps: list[int] | None = None

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

    def bitmaps(self) -> list[int] | None:
        if self._bitmaps is None and "trigrams" in self.index:
            try:
                self._bitmaps = decode_bitmaps(self.index["trigrams"], len(self.blocks))
            except (ValueError, TypeError) as exc:
                log.warning("%s: unreadable trigrams (%s); scanning it whole", self.path.name, exc)
                self.index.pop("trigrams", None)
        return self._bitmaps


@dataclass
class LiveSegment:
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
    min_ts: int
    max_ts: int
    rows: int


# -- cursors -------------------------------------------------------------------------------------


def encode_cursor(ts: int, seq: int, order: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts, seq, order])).decode().rstrip("=")


def decode_cursor(text: str, order: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        ts, seq, o = orjson.loads(raw)
        if not (isinstance(ts, int) and isinstance(seq, int) and o in ("asc", "desc")):
            raise ValueError
        if abs(ts) >= 2**63 or abs(seq) >= 2**63:
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise QueryError("bad cursor: pass next_cursor from the previous page unchanged") from None
    if o != order:
        raise QueryError(f"this cursor is for order={o}; pass the same order as the first page")
    return ts, seq


def choose_interval(span_ms: int) -> int:
    for step in NICE_INTERVALS_MS:
        if span_ms / step <= TARGET_BUCKETS:
            return step
    return NICE_INTERVALS_MS[-1] * max(1, -(-span_ms // (NICE_INTERVALS_MS[-1] * TARGET_BUCKETS)))


def field_expr(name: str) -> tuple[str, list[Any], str]:
    """A field name -> (SQL expression, its parameters, type) for top and histogram ``by``."""
    if not name or len(name) > 256:
        raise QueryError("field: give a field name, e.g. service.name or url.path")
    kind = FIELD_TYPES.get(name)
    if kind == "object":
        raise QueryError(f'"{name}" is an object: pick one of its keys, e.g. {name}.id')
    if kind is not None:
        return ident(name), [], kind
    column, _, rest = name.partition(".")
    if column == "params" and rest:
        keys = rest.split(".")
        if "" in keys:
            raise QueryError(f'empty key in "{name}": write params.a.b')
        path = "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)
        return 'json_extract_string("params", ?)', [path], "keyword"
    key = rest if column == "labels" and rest else name
    path = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return 'json_extract_string("labels", ?)', [path], "keyword"


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


def _merge_ranges(ranges: list[tuple[int, int]], cap: int) -> list[tuple[int, int]]:
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


def event_dict(names: list[str], row: Iterable[Any]) -> dict:
    ev: dict[str, Any] = {}
    for name, value in zip(names, row, strict=False):
        if value is None:
            continue
        if name in JSON_COLUMNS and isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        ev[name] = value
    return ev


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (Linux: nice is per thread; elsewhere
    setpriority would renice the whole process, so nothing is done). Never fails."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError:
        pass


def _connect_at_nice(config: dict[str, Any], nice: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose worker threads, started by ``connect``, inherit ``nice``:
    connected from a short-lived thread at that level."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return duckdb.connect(":memory:", config=config)
    out: list[Any] = []

    def connect() -> None:
        lower_priority(nice)
        try:
            out.append(duckdb.connect(":memory:", config=config))
        except BaseException as exc:  # re-raised in the caller's thread
            out.append(exc)

    t = threading.Thread(target=connect, name="duckdb-connect")
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


class Engine:
    def __init__(self, data_dir: Path, *, threads: int | None = None,
                 memory_limit: str | None = None, clock: Callable[[], float] = time.time,
                 worker_nice: int = 0) -> None:
        """``worker_nice``: DuckDB's own worker threads run at this nice level (Linux), so the
        CPU they take from ingest goes back to it first (see :func:`lower_priority`)."""
        self.data_dir = Path(data_dir)
        self.seg_dir = self.data_dir / layout.SEGMENTS_DIR
        self.parquet_dir = self.data_dir / layout.PARQUET_DIR
        self.clock = clock
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.con = _connect_at_nice(config, worker_nice)
        self.con.execute("SET parquet_metadata_cache = true")
        cols = ", ".join(f"{ident(n)} {t}" for n, t in COLUMNS)
        self.con.execute(f"CREATE TABLE live ({cols}, _seg INTEGER, _gen BIGINT)")
        self._tmp = Path(tempfile.mkdtemp(prefix="logmesh-live-"))
        self._lock = threading.Lock()
        self._local = threading.local()
        self._parquet: dict[str, ParquetFile] = {}
        self._live: dict[str, LiveSegment] = {}
        self._gone: dict[int, float] = {}  # live segment id -> when its rows stopped being queried
        self._next_id = 1
        self._gen = 0
        self._snapshot = Snapshot((), (), 0)
        self._refreshed = 0.0
        self.counters = {"queries": 0, "query_seconds": 0.0, "live_bytes_loaded": 0, "refreshes": 0,
                         "damaged_files": 0, "damaged_rows": 0}

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def snapshot(self) -> Snapshot:
        """The last refresh's view (no refresh: for metrics)."""
        return self._snapshot

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self.con.cursor()
        return cur

    # -- keeping up with the files ------------------------------------------------------------------
    def refresh(self, max_age: float = 0.0) -> Snapshot:
        """Load what was appended since the last refresh; ``max_age``: reuse a recent one.

        With ``max_age`` (queries), a refresh already under way in another thread is
        waited for at most REFRESH_WAIT_SECONDS (a page's queries arrive together, and one
        that skipped the wait missed the event just acknowledged); then the last finished
        refresh's snapshot is used. That thread may be a heavy query's,
        at a low CPU priority (http/query_api.py), and under fast ingest a refresh loads megabytes:
        waiting for it made every normal query as slow as the heavy one (issue 15 #7).
        """
        if max_age and time.monotonic() - self._refreshed < max_age:
            return self._snapshot
        if max_age and self._refreshed:
            if getattr(self._local, "no_load", False):  # with_deadline(load_new=False)
                return self._snapshot
            if not self._lock.acquire(timeout=REFRESH_WAIT_SECONDS):
                return self._snapshot
            self._lock.release()
        with self._lock:
            if max_age and time.monotonic() - self._refreshed < max_age:
                return self._snapshot
            self._refresh_locked()
            self._refreshed = time.monotonic()
            return self._snapshot

    def _refresh_locked(self) -> None:
        self.counters["refreshes"] += 1
        segments = list_segments(self.data_dir)  # segments first, then Parquet files: see store/compact.py
        try:
            names = set(os.listdir(self.parquet_dir))
        except FileNotFoundError:
            names = set()
        parquet = {n for n in names if n.endswith(layout.PARQUET_SUFFIX)}
        for n in list(self._parquet):
            if n not in parquet:
                del self._parquet[n]  # removed by retention
        for n in sorted(parquet - set(self._parquet)):
            pf = self._load_parquet(n, names)
            if pf is not None:
                self._parquet[n] = pf
        seen = set()
        cold: list[SegmentInfo] = []
        wall = time.time()
        for seg in segments:
            name = seg.path.name
            if layout.parquet_name(name) in self._parquet:
                continue  # compacted: the Parquet file is in charge
            if seg.sealed and self._is_cold(seg, wall):
                cold.append(seg)  # its rows, if loaded, go once the grace below has run
                continue
            seen.add(name)
            live = self._live.get(name)
            if live is None:
                live = self._live[name] = LiveSegment(self._next_id, seg.path, seg.worker, seg.first_seq)
                self._next_id += 1
            self._load_live(live)
            if not seg.path.exists():  # compacted while we looked: its Parquet file is in charge
                pq_name = layout.parquet_name(name)
                if (self.parquet_dir / pq_name).exists() and pq_name not in self._parquet:
                    pf = self._load_parquet(pq_name, set(os.listdir(self.parquet_dir)))
                    if pf is not None:
                        self._parquet[pq_name] = pf
                        seen.discard(name)
        now = time.monotonic()
        for name in list(self._live):
            if name not in seen:
                self._gone[self._live.pop(name).id] = now
        for sid, when in list(self._gone.items()):
            if now - when > GONE_GRACE_SECONDS:
                self.con.execute("DELETE FROM live WHERE _seg = ?", [sid])
                del self._gone[sid]
        self._snapshot = Snapshot(
            tuple(sorted(self._parquet.values(), key=lambda p: (p.min_ts, p.path.name))),
            tuple(LiveSegment(s.id, s.path, s.worker, s.first_seq, s.offset, s.rows, s.min_ts,
                              s.max_ts, dict(s.services)) for s in self._live.values()),
            self._gen, tuple(cold))

    def _is_cold(self, seg: SegmentInfo, wall: float) -> bool:
        try:
            sealed_at = seg.path.with_name(layout.index_name(seg.path.name)).stat().st_mtime
        except FileNotFoundError:
            return False
        if wall - sealed_at > LIVE_SEALED_SECONDS:
            return True
        loaded = sum(s.offset for s in self._live.values())
        return seg.path.name not in self._live and loaded + int(seg.index.get("bytes", 0)) > LIVE_MAX_BYTES  # type: ignore[union-attr]

    def _load_parquet(self, name: str, names: set[str]) -> ParquetFile | None:
        path = self.parquet_dir / name
        m = layout.SEGMENT_RE.match(name[: -len(layout.PARQUET_SUFFIX)] + layout.SEGMENT_SUFFIX)
        worker = int(m.group(1)) if m else -1
        blocks_file = layout.blocks_name(name)
        index = None
        if blocks_file in names:
            try:
                index = orjson.loads((self.parquet_dir / blocks_file).read_bytes())
                if index.get("version") != layout.PARQUET_FORMAT_VERSION:
                    index = None
            except (OSError, orjson.JSONDecodeError):
                index = None
        if index is None:  # no index (copied in by hand?): rebuild the ranges from the file
            try:
                index = self._index_from_metadata(path)
            except duckdb.Error as exc:
                log.warning("%s: cannot read (%s); skipped", name, exc)
                return None
        return ParquetFile(path, worker, index)

    def _index_from_metadata(self, path: Path) -> dict:
        rows = self.cursor().execute(
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

    def _load_live(self, live: LiveSegment) -> None:
        while True:
            try:
                st = os.stat(live.path)
            except FileNotFoundError:
                return
            size = st.st_size
            if live.inode and st.st_ino != live.inode:
                live.offset = size + 1  # replaced (recovery dropped damaged lines): read it again
            live.inode = st.st_ino
            if size < live.offset:  # cut by crash recovery: read it again
                self.con.execute("DELETE FROM live WHERE _seg = ?", [live.id])
                live.offset, live.rows, live.min_ts, live.max_ts = 0, 0, None, None
                live.services.clear()
            if size == live.offset:
                return
            data, nxt = read_complete(live.path, live.offset, LIVE_CHUNK_BYTES)
            if not data:
                return
            self._gen += 1  # each chunk its own generation: see _insert_live
            self._insert_live(live, data, self._gen)
            live.offset = nxt
            self.counters["live_bytes_loaded"] += len(data)

    def _insert_live(self, live: LiveSegment, data: bytes, gen: int) -> None:
        """Append one chunk of whole lines; ``gen`` must be new, since the segment's counts
        are taken from the rows of (segment, gen): a generation shared by two chunks of one
        refresh counted the first chunk again with the second (issue 14, defect 8)."""
        tmp = self._tmp / f"{live.id}-{gen}.ndjson"
        tmp.write_bytes(data)
        try:
            head = f"INSERT INTO live SELECT {SELECT_LIST}, {live.id}, {gen} FROM "
            try:
                self.con.execute(head + read_ndjson_sql(str(tmp)))
            except duckdb.Error as exc:
                log.warning("%s: typed read failed (%s); reading value by value", live.path.name, exc)
                self.con.execute(head + read_ndjson_lenient_sql(str(tmp)))
        finally:
            tmp.unlink(missing_ok=True)
        rows = self.con.execute(
            f"SELECT {ident('service.name')}, count(*), min({TS}), max({TS}) FROM live "
            "WHERE _seg = ? AND _gen = ? GROUP BY ALL", [live.id, gen]).fetchall()
        for svc, n, lo, hi in rows:
            live.rows += n
            if svc is not None:
                live.services[svc] = live.services.get(svc, 0) + n
            if lo is not None:
                live.min_ts = lo if live.min_ts is None else min(live.min_ts, lo)
                live.max_ts = hi if live.max_ts is None else max(live.max_ts, hi)

    # -- building queries --------------------------------------------------------------------------
    def source(self, snap: Snapshot, start: int, end: int, need: trigrams.Need | None = None,
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
            bitmaps = pf.bitmaps() if need is not None else None
            kept: list[tuple[int, int]] = []
            indexed: list[int] = []
            pruned = False
            for i, (lo, hi, n, s0, s1) in enumerate(pf.blocks):
                if hi < start or lo > end:
                    continue
                if (seq is not None and not s0 <= seq <= s1) or (
                        bitmaps is not None and need is not None and not need.allows(bitmaps[i])):
                    pruned = True
                    continue
                if from_index is not None and from_index(pf, i):
                    indexed.append(i)
                    continue
                kept.append((max(lo, start), min(hi, end)))
                rows += n
            changed = bool(indexed and kept)
            while changed:  # a block read by time range would also read its neighbours' edge rows
                changed = False
                for i in list(indexed):
                    lo, hi, n = pf.blocks[i][:3]
                    if any(lo <= k_hi and hi >= k_lo for k_lo, k_hi in kept):
                        indexed.remove(i)
                        kept.append((max(lo, start), min(hi, end)))
                        rows += n
                        changed = True
            counted.extend((pf, i) for i in indexed)
            pruned |= bool(indexed)
            if not kept:
                continue
            path = sql_str(str(pf.path))
            if not pruned and start <= pf.min_ts and pf.max_ts <= end:
                whole.append(path)
                continue
            ranges = _merge_ranges(kept, MAX_PRUNE_RANGES)
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
            parts.append(f"SELECT {SELECT_LIST} FROM {read_ndjson_lenient_sql(str(seg.path))} "
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

    def units(self, snap: Snapshot, start: int, end: int, need: trigrams.Need | None) -> list[Unit]:
        out = []
        for pf in snap.parquet:
            if pf.max_ts < start or pf.min_ts > end:
                continue
            bitmaps = pf.bitmaps() if need is not None else None
            for i, (lo, hi, n, _, _) in enumerate(pf.blocks):
                if hi < start or lo > end:
                    continue
                if bitmaps is not None and need is not None and not need.allows(bitmaps[i]):
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

    def with_deadline(self, deadline: float | None, fn: Callable[..., Any], *args: Any,
                      load_new: bool = True, **kwargs: Any) -> Any:
        """Run ``fn`` (in this thread) with its DuckDB queries interrupted at ``deadline``.

        ``deadline`` is a ``time.monotonic()`` instant, not a duration: the API sets it when
        the request arrives, so the time a query waited for this thread counts against it
        too (issue 15 #7: a 10 s timeout answered after 20.5 s). None: no deadline.
        ``load_new=False``: ``fn`` reads the last snapshot and never loads new lines itself
        (a heavy query's low-priority thread must not hold the refresh: the API refreshes
        for it first, at normal priority), except before the very first refresh.
        """
        if deadline is not None and deadline <= time.monotonic():
            raise QueryTimeout("the query ran out of time before it started")
        self._local.deadline = deadline
        self._local.no_load = not load_new
        try:
            for _ in range(MAX_DAMAGED_PER_QUERY):
                try:
                    return fn(*args, **kwargs)
                except _DamagedFile as exc:  # set it aside, then ask again without it
                    self._quarantine(exc.path)
                except _FileGone:  # compacted or deleted by retention under the query
                    with self._lock:
                        self._refreshed = 0.0
                    self.refresh()
            return fn(*args, **kwargs)
        finally:
            self._local.deadline = None
            self._local.no_load = False

    def _gone_file(self, exc: duckdb.Error) -> bool:
        """Did the query name a file of ours that compaction or retention removed meanwhile?"""
        text = str(exc)
        if "No files found" not in text and "No such file" not in text:
            return False
        return any(self.data_dir in Path(n).parents and not Path(n).exists()
                   for n in _QUOTED_PATH.findall(text))

    def _damaged(self, exc: duckdb.Error) -> Path | None:
        """The Parquet file of ours that ``exc`` says DuckDB could not read, if it really cannot.

        Errors in a page name the file; a damaged footer ("TProtocolException: Invalid
        data") may not, and then every file's footer is read (the error path only).
        """
        con = duckdb.connect()
        named = [Path(n) for n in _QUOTED_PARQUET.findall(str(exc))]
        for path in named:
            if path.parent != self.parquet_dir or not path.exists():
                continue  # not ours, or removed by retention meanwhile: nothing damaged
            try:  # every column of every row group decompressed, not only the footer read
                con.execute("SELECT sum(length(CAST(COLUMNS(*) AS VARCHAR))) FROM "
                            f"read_parquet({sql_str(str(path))})").fetchall()
            except duckdb.Error:
                return path
        if named:
            return None
        for path in sorted(self.parquet_dir.glob("*" + layout.PARQUET_SUFFIX)):
            try:
                con.execute(f"SELECT count(*) FROM parquet_metadata({sql_str(str(path))})").fetchall()
            except duckdb.Error:
                return path
        return None

    def _quarantine(self, path: Path) -> None:
        """Move an unreadable Parquet file (and its block index) to ``quarantine/``, said and counted.

        A bad disk or a stray write can damage a compacted file as well as a
        segment; without this one file would fail every query of its time
        range. Its events are lost to search (the bytes are kept for a human).
        """
        qdir = self.data_dir / layout.QUARANTINE_DIR
        qdir.mkdir(exist_ok=True)
        with self._lock:
            pf = self._parquet.pop(path.name, None)
            rows = pf.rows if pf is not None else 0
            for p in (path, path.with_name(layout.blocks_name(path.name))):
                try:
                    os.replace(p, qdir / f"{p.name}@0{layout.QUARANTINE_SUFFIX}")
                except FileNotFoundError:
                    pass
            self._refreshed = 0.0
        self.counters["damaged_files"] += 1
        self.counters["damaged_rows"] += rows
        log.error("%s cannot be read (damaged); moved to %s/ with its %d event(s)", path.name,
                  layout.QUARANTINE_DIR, rows)

    def _run(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple]]:
        t0 = time.perf_counter()
        cur = self.cursor()
        deadline = getattr(self._local, "deadline", None)
        timer = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QueryTimeout("the query ran out of time")
            timer = threading.Timer(left, cur.interrupt)
            timer.daemon = True
            timer.start()
        try:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout("the query ran out of time") from None
        except (duckdb.InvalidInputException, duckdb.ConversionException,
                duckdb.OutOfRangeException, duckdb.IOException) as exc:
            if self._gone_file(exc):
                raise _FileGone(str(exc)) from None
            damaged = self._damaged(exc)
            if damaged is not None:
                raise _DamagedFile(damaged) from None
            raise QueryError(f"the query cannot be run on these events: {exc}") from None
        except duckdb.Error as exc:  # e.g. a damaged footer: "TProtocolException: Invalid data"
            damaged = self._damaged(exc)
            if damaged is not None:
                raise _DamagedFile(damaged) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self.counters["queries"] += 1
            self.counters["query_seconds"] += time.perf_counter() - t0
        return names, rows

    @staticmethod
    def where(node: kql.Node | None, now: int) -> tuple[str, list[Any]]:
        if node is None:
            return "TRUE", []
        return kql.compile_where(node, now=now)

    # -- the API's questions ---------------------------------------------------------------------------
    def search(self, node: kql.Node | None, start: int, end: int, *, limit: int = 100,
               order: str = "desc", cursor: str | None = None, now: int | None = None,
               extra: tuple[str, list[Any]] | None = None) -> tuple[list[dict], str | None]:
        """The first ``limit`` events by (@timestamp, seq) in ``order``, after ``cursor``."""
        now = now if now is not None else int(self.clock() * 1000)
        where, params = self.where(node, now)
        if extra is not None:
            where, params = f"({where}) AND ({extra[0]})", params + extra[1]
        need = trigram_need.need(node) if node is not None else None
        desc = order == "desc"
        after = decode_cursor(cursor, order) if cursor else None
        if after is not None:
            if desc:
                end = min(end, after[0])
            else:
                start = max(start, after[0])
            op = "<" if desc else ">"
            where = f"({where}) AND ({TS} {op} ? OR ({TS} = ? AND seq {op} ?))"
            params = params + [after[0], after[0], after[1]]
        snap = self.refresh(max_age=0.05)
        events: list[dict] = []
        for lo, hi in self._slices(self.units(snap, start, end, need), start, end, desc):
            src = self.source(snap, lo, hi, need)
            if src is None:
                continue
            want = limit - len(events)
            direction = "DESC" if desc else "ASC"
            names, rows = self._run(
                f"SELECT * FROM ({src.sql}) WHERE {where} "
                f"ORDER BY {TS} {direction}, seq {direction} LIMIT {want}", params)
            events.extend(event_dict(names, r) for r in rows)
            if len(events) >= limit:
                break
        nxt = None
        if len(events) >= limit and events:
            last = events[-1]
            nxt = encode_cursor(last["@timestamp"], last["seq"], order)
        return events, nxt

    @staticmethod
    def _slices(units: list[Unit], start: int, end: int, desc: bool) -> list[tuple[int, int]]:
        """Cut [start, end] into time slices from the wanted end, each ~4x the rows of the last."""
        if not units:
            return []
        out = []
        budget = FIRST_SLICE_ROWS
        if desc:
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
        else:
            units = sorted(units, key=lambda u: u.min_ts)
            lo = max(start, min(u.min_ts for u in units))
            while lo <= end:
                acc, cut = 0, end
                for u in units:
                    if u.max_ts < lo:
                        continue
                    acc += u.rows
                    if acc >= budget:
                        cut = min(end, max(u.max_ts, lo))
                        break
                out.append((lo, cut))
                lo = cut + 1
                budget *= 4
                if not any(u.max_ts >= lo for u in units):
                    break
        return out

    def count(self, node: kql.Node | None, start: int, end: int, now: int | None = None) -> int:
        now = now if now is not None else int(self.clock() * 1000)
        snap = self.refresh(max_age=0.05)
        need = trigram_need.need(node) if node is not None else None
        every = node is None or isinstance(node, kql.MatchAll)
        term = summary_term(node)

        def inside(pf: ParquetFile, i: int) -> bool:
            lo, hi = pf.blocks[i][:2]
            return start <= lo and hi <= end and (every or pf.summary(term[0], i) is not None)  # type: ignore[index]

        src = self.source(snap, start, end, need, from_index=inside if every or term else None)
        if src is None:
            return 0
        total = 0
        for pf, i in src.counted:
            total += pf.blocks[i][2] if every else pf.summary(term[0], i).get(term[1], 0)  # type: ignore[union-attr,index]
        if src.sql is not None:
            where, params = self.where(node, now)
            _, rows = self._run(f"SELECT count(*) FROM ({src.sql}) WHERE {where}", params)
            total += rows[0][0]
        return total

    def histogram(self, node: kql.Node | None, start: int, end: int, *, interval: int | None = None,
                  by: str | None = None, now: int | None = None) -> dict:
        now = now if now is not None else int(self.clock() * 1000)
        expr, eparams, _ = field_expr(by) if by else ("", [], "")
        interval = interval or choose_interval(end - start + 1)
        first = start // interval * interval
        nb = (end - first) // interval + 1
        if nb > MAX_BUCKETS:
            raise QueryError(f"interval {interval} ms makes {nb} buckets over this range; "
                             f"at most {MAX_BUCKETS}: pick a larger interval or leave it out")
        counts = [0] * nb
        stacks: list[dict[str, int]] | None = [{} for _ in range(nb)] if by else None
        snap = self.refresh(max_age=0.05)
        need = trigram_need.need(node) if node is not None else None
        every = node is None or isinstance(node, kql.MatchAll)
        by_minute = interval % MINUTE_MS == 0  # then each minute falls in one bucket

        def from_index(pf: ParquetFile, i: int) -> bool:
            # Every event counts: a block inside the range is counted from its index when it
            # lies in one bucket (or its per-minute counts can be split); by a field, when it
            # lies in one bucket and its value counts are known. The rest is read.
            lo, hi = pf.blocks[i][:2]
            if not (start <= lo and hi <= end):
                return False
            one = (lo - first) // interval == (hi - first) // interval
            if by:
                return one and pf.summary(by, i) is not None
            return one or (by_minute and pf.minutes(i) is not None)

        src = self.source(snap, start, end, need, from_index=from_index if every and (
            not by or by in SUMMARY_FIELDS) else None)
        rows: list[tuple[int, str | None, int]] = []
        for pf, i in src.counted if src is not None else ():
            lo, hi, n = pf.blocks[i][:3]
            k = (lo - first) // interval
            if by:
                summary = pf.summary(by, i) or {}
                rows.extend((k, v, c) for v, c in summary.items())
                if n > sum(summary.values()):
                    rows.append((k, None, n - sum(summary.values())))
            elif k == (hi - first) // interval:
                counts[k] += n
            else:
                m0, *per_minute = pf.minutes(i)  # type: ignore[misc]
                for j, c in enumerate(per_minute):
                    counts[((m0 + j) * MINUTE_MS - first) // interval] += c
        if src is not None and (src.sql is not None or rows):
            where, params = self.where(node, now)
            if by:
                if src.sql is not None:
                    _, got = self._run(
                        f"SELECT ({TS} - ?) // ? AS k, CAST({expr} AS VARCHAR) AS v, count(*) FROM ({src.sql}) "
                        f"WHERE {where} GROUP BY ALL", [first, interval] + eparams + params)
                    rows.extend(got)
                totals: dict[str, int] = {}
                for _, v, n in rows:
                    key = NONE if v is None else v
                    totals[key] = totals.get(key, 0) + n
                keep = set(sorted(totals, key=lambda k: (-totals[k], k))[:BY_VALUES])
                for k, v, n in rows:
                    key = NONE if v is None else v
                    key = key if key in keep else OTHER
                    counts[k] += n
                    stack = stacks[k]  # type: ignore[index]
                    stack[key] = stack.get(key, 0) + n
            elif src.sql is not None:
                _, got = self._run(
                    f"SELECT ({TS} - ?) // ? AS k, count(*) FROM ({src.sql}) "
                    f"WHERE {where} GROUP BY ALL", [first, interval] + params)
                for k, n in got:
                    counts[k] += n
        buckets = []
        for i in range(nb):
            b: dict[str, Any] = {"t": first + i * interval, "count": counts[i]}
            if stacks is not None:
                b["by"] = stacks[i]
            buckets.append(b)
        return {"interval_ms": interval, "from": start, "to": end, "total": sum(counts),
                "buckets": buckets}

    def top(self, node: kql.Node | None, start: int, end: int, field_name: str, *, limit: int = 10,
            now: int | None = None) -> dict:
        now = now if now is not None else int(self.clock() * 1000)
        expr, eparams, kind = field_expr(field_name)
        snap = self.refresh(max_age=0.05)
        need = trigram_need.need(node) if node is not None else None
        every = node is None or isinstance(node, kql.MatchAll)

        def from_index(pf: ParquetFile, i: int) -> bool:
            lo, hi = pf.blocks[i][:2]
            return start <= lo and hi <= end and pf.summary(field_name, i) is not None

        src = self.source(snap, start, end, need,
                          from_index=from_index if every and field_name in SUMMARY_FIELDS else None)
        counts: dict[Any, int] = {}
        total = 0
        for pf, i in src.counted if src is not None else ():
            total += pf.blocks[i][2]
            for v, c in (pf.summary(field_name, i) or {}).items():
                key = int(v) if kind == "long" else v
                counts[key] = counts.get(key, 0) + c
        if src is not None and src.sql is not None:
            where, params = self.where(node, now)
            if counts:  # merged with the index's counts: every value is needed
                _, rows = self._run(f"SELECT {expr} AS v, count(*) AS n FROM ({src.sql}) WHERE {where} "
                                    "GROUP BY ALL", eparams + params)
                for v, n in rows:
                    total += n
                    if v is not None:
                        counts[v] = counts.get(v, 0) + n
            else:
                _, rows = self._run(
                    f"SELECT v, n, sum(n) OVER () AS total FROM (SELECT {expr} AS v, count(*) AS n "
                    f"FROM ({src.sql}) WHERE {where} GROUP BY ALL) "
                    f"ORDER BY v IS NULL, n DESC, v LIMIT {limit + 1}", eparams + params)
                total += int(rows[0][2]) if rows else 0
                for v, n, _ in rows:
                    if v is not None:
                        counts[v] = counts.get(v, 0) + n
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
        values = [{"value": v, "count": n} for v, n in ranked]
        return {"field": field_name, "type": kind, "total": total, "values": values}

    def fields(self, start: int, end: int) -> list[dict]:
        out = [{"name": n, "type": t} for n, t in FIELD_TYPES.items()]
        snap = self.refresh(max_age=0.05)
        src = self.source(snap, start, end)
        if src is None:
            return out
        sample = (f"SELECT labels, params FROM ({src.sql}) "
                  "WHERE labels IS NOT NULL OR params IS NOT NULL LIMIT 20000")
        _, rows = self._run(
            f"SELECT DISTINCT 'labels', unnest(json_keys(labels)) FROM ({sample}) WHERE json_type(labels) = 'OBJECT' "
            f"UNION SELECT DISTINCT 'params', unnest(json_keys(params)) FROM ({sample}) "
            "WHERE json_type(params) = 'OBJECT'", [])
        known = set(FIELD_TYPES)
        for column, key in sorted(rows, key=lambda r: (r[0], r[1])):
            name = f"{column}.{key}"
            if name not in known:
                known.add(name)
                out.append({"name": name, "type": "keyword"})
        return out

    def event(self, seq: int, context: int = 10, trace_window_ms: int = 86_400_000) -> dict | None:
        """One event by seq, with ``context`` events of its service before/after and its trace."""
        snap = self.refresh(max_age=0.05)
        worker = seq & (layout.MAX_WORKERS - 1)
        lo, hi = -(2**62), 2**62
        src = self.source(snap, lo, hi, workers={worker}, seq=seq)
        if src is None:
            return None
        names, rows = self._run(f"SELECT * FROM ({src.sql}) WHERE seq = ? LIMIT 1", [seq])
        if not rows:
            return None
        ev = event_dict(names, rows[0])
        ts = ev["@timestamp"]
        svc = ev.get("service.name")
        same = (f"{ident('service.name')} IS NOT DISTINCT FROM ?", [svc])
        before: list[dict] = []
        after: list[dict] = []
        if context > 0:
            before, _ = self.search(None, lo, hi, limit=context, order="desc",
                                    cursor=encode_cursor(ts, seq, "desc"), extra=same)
            after, _ = self.search(None, lo, hi, limit=context, order="asc",
                                   cursor=encode_cursor(ts, seq, "asc"), extra=same)
        trace: list[dict] = []
        tid = ev.get("trace.id")
        if tid is not None:
            trace, _ = self.search(None, ts - trace_window_ms, ts + trace_window_ms, limit=1000,
                                   order="asc", extra=(f"{ident('trace.id')} = ?", [tid]))
        return {"event": ev, "before": before[::-1], "after": after, "trace": trace}

    def tail(self, node: kql.Node | None, since_gen: int, now: int | None = None,
             limit: int = 10_000) -> tuple[list[dict], int]:
        """Events loaded after generation ``since_gen`` that match; and the generation now."""
        snap = self.refresh(max_age=0.1)
        if snap.gen <= since_gen:
            return [], snap.gen
        ids = [s.id for s in snap.live]
        if not ids:
            return [], snap.gen
        now = now if now is not None else int(self.clock() * 1000)
        where, params = self.where(node, now)
        names, rows = self._run(
            f"SELECT {SELECT_LIST} FROM live WHERE _gen > ? AND _gen <= ? AND _seg IN "
            f"({', '.join(map(str, ids))}) AND ({where}) ORDER BY {TS}, seq LIMIT {limit}",
            [since_gen, snap.gen] + params)
        return [event_dict(names, r) for r in rows], snap.gen

    def service_counts(self, start: int, end: int) -> dict[str, dict[str, int]]:
        """Per service over [start, end]: requests and errors (docs/api.md, /mesh)."""
        snap = self.refresh(max_age=0.05)

        def from_index(pf: ParquetFile, i: int) -> bool:
            lo, hi = pf.blocks[i][:2]
            return start <= lo and hi <= end and pf.summary("mesh", i) is not None

        src = self.source(snap, start, end, from_index=from_index)
        if src is None:
            return {}
        out: dict[str, dict[str, int]] = {}
        rows: list[tuple] = []
        for pf, i in src.counted:
            rows.extend((svc, *c) for svc, c in (pf.summary("mesh", i) or {}).items())
        if src.sql is not None:
            _, got = self._run(f"SELECT {MESH_SELECT} FROM ({src.sql}) GROUP BY ALL", [])
            rows.extend(got)
        for svc, r, e, n in rows:
            if svc is None:
                continue
            c = out.setdefault(str(svc), {"requests": 0, "errors": 0, "events": 0})
            c["requests"] += r
            c["errors"] += e
            c["events"] += n
        return out

    def stats(self) -> dict:
        snap = self.refresh(max_age=0.05)
        events = 0
        services: dict[str, int] = {}
        lo: int | None = None
        hi: int | None = None
        unknown: list[ParquetFile] = []
        for pf in snap.parquet:
            events += pf.rows
            if pf.rows:
                lo = pf.min_ts if lo is None else min(lo, pf.min_ts)
                hi = pf.max_ts if hi is None else max(hi, pf.max_ts)
            if pf.index.get("services") is None:
                unknown.append(pf)
            else:
                for s, n in pf.index["services"].items():
                    services[s] = services.get(s, 0) + n
        if unknown:
            _, rows = self._run(
                f"SELECT {ident('service.name')}, count(*) FROM read_parquet([{', '.join(sql_str(str(p.path)) for p in unknown)}]) "
                f"WHERE {ident('service.name')} IS NOT NULL GROUP BY ALL", [])
            for s, n in rows:
                services[s] = services.get(s, 0) + n
        live_events = 0
        for s in snap.live:
            live_events += s.rows
            if s.rows and s.min_ts is not None:
                lo = s.min_ts if lo is None else min(lo, s.min_ts)
                hi = s.max_ts if hi is None else max(hi, s.max_ts)  # type: ignore[type-var]
            for name, n in s.services.items():
                services[name] = services.get(name, 0) + n
        cold_events = 0
        for seg in snap.cold:
            info = seg.index or {}
            cold_events += int(info.get("count", 0))
            if info.get("count"):
                lo = info["min_ts"] if lo is None else min(lo, info["min_ts"])
                hi = info["max_ts"] if hi is None else max(hi, info["max_ts"])
        if snap.cold:
            src = " UNION ALL ".join(f"SELECT {ident('service.name')} FROM {read_ndjson_lenient_sql(str(seg.path))}"
                                     for seg in snap.cold)
            _, rows = self._run(f"SELECT {ident('service.name')}, count(*) FROM ({src}) "
                                f"WHERE {ident('service.name')} IS NOT NULL GROUP BY ALL", [])
            for name, n in rows:
                services[name] = services.get(name, 0) + n
        files = nbytes = 0
        for sub in (layout.SEGMENTS_DIR, layout.PARQUET_DIR):
            try:
                with os.scandir(self.data_dir / sub) as it:
                    for entry in it:
                        if entry.name.endswith((layout.SEGMENT_SUFFIX, layout.PARQUET_SUFFIX,
                                                layout.INDEX_SUFFIX, layout.BLOCKS_SUFFIX)):
                            nbytes += entry.stat().st_size
                            if entry.name.endswith((layout.SEGMENT_SUFFIX, layout.PARQUET_SUFFIX)):
                                files += 1
            except FileNotFoundError:
                pass
        return {"events": events + live_events + cold_events, "bytes": nbytes, "segments": files, "from": lo, "to": hi,
                "services": dict(sorted(services.items(), key=lambda kv: -kv[1])),
                "parquet_files": len(snap.parquet), "parquet_events": events,
                "live_segments": len(snap.live), "live_events": live_events,
                "cold_segments": len(snap.cold), "cold_events": cold_events}
