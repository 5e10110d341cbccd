"""The engine's view of the data directory: the Parquet files it knows, and the live table.

Where an event is read from::

    parquet/<seg>.parquet      every compacted segment (store/compact.py); its .blocks.json
                               gives each row group's time range and message token filter
    live (in-memory table)     every segment without a Parquet file yet -- the active
                               ones of every worker and sealed ones awaiting compaction --
                               loaded incrementally: each refresh reads only the bytes
                               appended since the last one (whole lines only), after
                               checking that the last line it loaded is still there (a
                               segment cut or replaced since is read again from its start)
    cold                       a sealed segment kept out of memory (LIVE_SEALED_SECONDS,
                               LIVE_MAX_BYTES): read from its file by each query

A segment is read from its NDJSON only while its Parquet file does not exist;
once the file appears (the compactor's commit point) the segment's rows stop
being queried, so nothing is counted twice. Every process (each ``--workers``
process answers API requests) keeps its own live table, fed from the files,
so what one worker writes is seen by all within one refresh (each query and
every tail poll refreshes; a refresh that finds nothing new costs a listdir
and a stat per live segment).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from ..store import catalogue, layout, long_lines
from ..store.blocks import ParquetFile, open_parquet
from ..store.catalogue import SegmentInfo
from ..store.columns import (
    COLUMNS,
    SELECT_LIST,
    TS,
    ident,
    read_ndjson_lenient_sql,
    read_ndjson_sql,
)
from ..store.duck import duckdb
from ..store.reader import read_complete
from .execution import DuckDB, QueryCounters
from .plan import LiveSegment, Snapshot

log = logging.getLogger("logmesh.logs.query")

LIVE_CHUNK_BYTES = 64 * 1024 * 1024  # a live segment is loaded at most this much per step
# A sealed segment still waiting for compaction stays in memory this long at most, and only
# while the live table holds less than LIVE_MAX_BYTES of NDJSON; past either (compaction off
# or behind) it is read from its file by each query instead: slower, but memory stays bounded.
LIVE_SEALED_SECONDS = 600.0
LIVE_MAX_BYTES = 1024 * 1024 * 1024
GONE_GRACE_SECONDS = 30.0  # rows of a compacted segment are dropped from memory this long after
MAX_LAST_LINE = 64 * 1024  # of the last line loaded, this much is kept to check it is still there


class StoreView:
    """What one engine has read of the store; :meth:`refresh` catches up with the files."""

    def __init__(self, data_dir: Path, db: DuckDB, counters: QueryCounters, scratch: Path) -> None:
        """``scratch``: where chunks of live segments are written for DuckDB to read (the
        engine's store/scratch.py directory, removed by the engine)."""
        self.data_dir = Path(data_dir)
        self.parquet_dir = self.data_dir / layout.PARQUET_DIR
        self.db = db
        # Parquet files whose footer could not be read: the engine sets the damaged ones
        # aside (engine.refresh), else they were skipped at every refresh, never counted
        self.unopened: list[Path] = []
        self.con = db.con
        self.counters = counters  # the engine's: bytes loaded into the live table
        cols = ", ".join(f"{ident(n)} {t}" for n, t in COLUMNS)
        self.con.execute(f"CREATE TABLE live ({cols}, _seg INTEGER, _gen BIGINT)")
        self._tmp = scratch
        self._parquet: dict[str, ParquetFile] = {}
        self._live: dict[str, LiveSegment] = {}
        self._gone: dict[int, float] = {}  # live segment id -> when its rows stopped being queried
        self._next_id = 1
        self._gen = 0
        self._snapshot = Snapshot((), (), 0)

    @property
    def snapshot(self) -> Snapshot:
        """The last refresh's view."""
        return self._snapshot

    def forget(self, name: str) -> ParquetFile | None:
        """Stop reading a Parquet file (the engine set it aside as damaged)."""
        return self._parquet.pop(name, None)

    def refresh(self) -> Snapshot:
        """Load what was appended since the last refresh; the caller holds the engine's lock."""
        # segments first, then Parquet files: see store/compact.py
        segments = catalogue.list_segments(self.data_dir)
        parquet = self.refresh_parquet()
        seen = set()
        cold: list[SegmentInfo] = []
        wall = time.time()
        for seg in segments:
            name = seg.path.name
            if layout.parquet_name(name) in self._parquet:
                continue  # compacted: the Parquet file is in charge
            if seg.sealed and self.is_cold(seg, wall):
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
                    pf = open_parquet(self.parquet_dir / pq_name, self.db.cursor())
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
            self._sorted_parquet() if len(parquet) != len(self._parquet) else parquet,
            tuple(LiveSegment(s.id, s.path, s.worker, s.first_seq, s.offset, s.rows, s.min_ts,
                              s.max_ts, dict(s.services)) for s in self._live.values()),
            self._gen, tuple(cold))
        return self._snapshot

    def refresh_parquet(self) -> tuple[ParquetFile, ...]:
        """Open the Parquet files that appeared, forget those retention removed; the files known
        now, by time. The caller holds the engine's lock and listed the segments first (see
        store/compact.py)."""
        parquet = catalogue.parquet_names(self.data_dir)
        for n in list(self._parquet):
            if n not in parquet:
                del self._parquet[n]  # removed by retention
        for n in sorted(parquet - set(self._parquet)):
            pf = open_parquet(self.parquet_dir / n, self.db.cursor())
            if pf is not None:
                self._parquet[n] = pf
            else:
                self.unopened.append(self.parquet_dir / n)
        return self._sorted_parquet()

    def _sorted_parquet(self) -> tuple[ParquetFile, ...]:
        return tuple(sorted(self._parquet.values(), key=lambda p: (p.min_ts, p.path.name)))

    def is_cold(self, seg: SegmentInfo, wall: float) -> bool:
        """A sealed segment read from its file by each query, not held in memory (the
        module's docstring); the caller holds the engine's lock."""
        try:
            sealed_at = seg.path.with_name(layout.index_name(seg.path.name)).stat().st_mtime
        except FileNotFoundError:
            return False
        if wall - sealed_at > LIVE_SEALED_SECONDS:
            return True
        loaded = sum(s.offset for s in self._live.values())
        return seg.path.name not in self._live and loaded + int(seg.index.get("bytes", 0)) > LIVE_MAX_BYTES  # type: ignore[union-attr]

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
                self._forget_rows(live)
            if size == live.offset:
                return
            # Read from the start of the last line loaded: if another line is there now, the
            # file was cut and written again in place since (the same inode, as long or longer:
            # a failed group write retried with other lines), and what was loaded is not its
            # content any more, nor is the old offset a line's start.
            back = len(live.last_line)
            data, nxt = read_complete(live.path, live.offset - back, LIVE_CHUNK_BYTES + back)
            if data[:back] != live.last_line:
                log.warning("%s: rewritten in place since it was loaded; reading it again",
                            live.path.name)
                self._forget_rows(live)
                continue
            data = data[back:]
            if not data:
                return
            self._gen += 1  # each chunk its own generation: see _insert_live
            self._insert_live(live, data, self._gen)
            live.offset = nxt
            live.last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1:][-MAX_LAST_LINE:]
            self.counters.live_bytes.inc(len(data))

    def _forget_rows(self, live: LiveSegment) -> None:
        """Drop what was loaded of a segment: it is read again from its start."""
        self.con.execute("DELETE FROM live WHERE _seg = ?", [live.id])
        live.offset, live.rows, live.min_ts, live.max_ts, live.last_line = 0, 0, None, None, b""
        live.services.clear()

    def _chunk_file(self, name: str, data: bytes) -> Path:
        """``data`` in a file of the scratch directory for DuckDB to read; the caller removes it.
        When the data directory's disk is full, a file of the system's temp directory: a full
        disk failed every search (500) over events stored before it filled (found from outside)."""
        path = self._tmp / name
        try:
            path.write_bytes(data)
            return path
        except OSError as exc:
            path.unlink(missing_ok=True)
            log.warning("cannot write %s (%s); writing it to %s", path, exc, tempfile.gettempdir())
        fd, other = tempfile.mkstemp(prefix="logmesh-live-", suffix=".ndjson")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return Path(other)

    def _insert_live(self, live: LiveSegment, data: bytes, gen: int) -> None:
        """Append one chunk of whole lines; ``gen`` must be new, since the segment's counts
        are taken from the rows of (segment, gen): a generation shared by two chunks of one
        refresh counted the first chunk again with the second (issue 14, defect 8)."""
        tmp = self._chunk_file(f"{live.id}-{gen}.ndjson", data)
        try:
            head = f"INSERT INTO live SELECT {SELECT_LIST}, {live.id}, {gen} FROM "
            try:  # a line too long for DuckDB's buffers is read again with room for it (long_lines.py)
                long_lines.read_fitting(lambda size: self.con.execute(
                    head + read_ndjson_sql(str(tmp), max_object_bytes=size)), tmp)
            except duckdb.Error as exc:
                log.warning("%s: typed read failed (%s); reading value by value", live.path.name, exc)
                long_lines.read_fitting(lambda size: self.con.execute(
                    head + read_ndjson_lenient_sql(str(tmp), size)), tmp)
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
