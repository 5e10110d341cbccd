"""Compaction: a sealed NDJSON segment becomes a Parquet file plus its block index.

One pass, per sealed segment (``.idx.json`` beside it) without a Parquet file::

    1. read the segment with the engine's column types (DuckDB's read_json; messages taken
       for JSON unchecked first: columns.with_request_fields) into an Arrow
       table sorted by (@timestamp, seq) (not sorted again when it is in order already:
       in_order, read_sorted)
    2. from that table: each block's (= row group's) time and seq range, counts and a
       Bloom filter of its message tokens (tokens.py); write parquet/<name>.red
       (red_summary.py) and fsync it
    3. write parquet/<name>.parquet.tmp (pyarrow: zstd level 1, Parquet v2 pages, 16384-row
       row groups) and fsync it
    4. write parquet/<name>.blocks.json atomically (write, fsync, rename)
    5. rename the .parquet.tmp to .parquet and fsync the directory   <- the commit point
    6. delete the segment and its index

Readers take a segment's Parquet file as soon as it exists and then ignore the
segment (query/view.py), so an event is never counted twice and never missing: a
crash before 5 leaves the segment in charge, a crash after it leaves a segment
that the next pass deletes. A segment is compacted only ``grace`` seconds after
it was sealed, so live tails have read its last lines from the NDJSON first.

Each worker compacts its own segments (``owns``: catalogue.owned_by; worker 0 also those of
workers not running), in a thread with its own single-threaded DuckDB, woken by its own
writer's seals. One thread for both workers' segments was busy 89% of a 300k events/s load
and the backlog still grew: one thread was the ceiling (docs/benchmarks.md, "Compaction,
sixth cut"). Retention runs after worker 0's passes alone. It counts in
prometheus-client counters of the server's registry (``logmesh_compacted_*``,
``logmesh_compaction_*``), which are thread-safe.
Parquet v2 encodings (delta for integers) read 5-6x faster than v1 here:
sum(@timestamp) over 1M rows 3.2 ms vs 20 ms (bench/query.py's data).
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ...fsio import fsync_path, write_atomic
from ...metrics import Metrics, number, value
from . import catalogue, claims, layout, long_lines, red_summary, tokens
from .catalogue import SegmentInfo, list_segments
from .columns import (
    COLUMNS,
    MAX_OBJECT_BYTES,
    MESH_SELECT,
    SELECT_LIST,
    TS,
    ident,
    read_ndjson_lenient_sql,
    read_ndjson_sql,
    sql_str,
)
from .duck import duckdb

log = logging.getLogger("logmesh.logs.compact")

COMPACT_GRACE_SECONDS = 5.0  # a sealed segment waits this long, so tails read its last lines first
COMPACT_INTERVAL_SECONDS = 10.0  # how often the thread looks for work without being woken
RETRY_SECONDS = 60.0  # a segment whose compaction failed is tried again this much later
# Fields whose values are counted per block in the index (facets, mesh, histograms `by`):
# a block with more distinct values than SUMMARY_MAX_VALUES stores none and is read instead.
SUMMARY_FIELDS = ("service.name", "log.level", "http.request.method", "url.path",
                  "http.response.status_code")
SUMMARY_MAX_VALUES = 64
MINUTE_MS = 60_000  # blocks also keep their event count per minute, for histograms ...
MAX_BLOCK_MINUTES = 1440  # ... unless their events span more than a day (a wrong clock): then read
# zstd level 1, not DuckDB's default 3: 0.25-0.3 CPU s per million events less and files 0.5-1%
# smaller on both of bench/compact_cost.py's kinds of events (docs/benchmarks.md, "Compaction cost")
ZSTD_LEVEL = 1
ORDER_SAMPLE_BYTES = 256 * 1024  # read first to guess whether a segment is in order (in_order)
JSON_COLUMNS = tuple(n for n, t in COLUMNS if t == "JSON")  # Parquet's JSON type, as DuckDB wrote them
DELTA_INTEGERS = ("seq", "@timestamp", "received_at")  # nearly sorted: delta-encoded (write_parquet)
# Strings of nearly a value a row: PLAIN (no dictionary that only grows), which zstd compresses
# better than DELTA_LENGTH_BYTE_ARRAY (lengths apart from the bytes) and writes for less CPU:
# book packets' params 3.36 -> 2.99 MB a segment, 0.24 -> 0.21 CPU s per million events
PLAIN_STRINGS = ("event.id", "trace.id", "params", "labels")
PREFIXED_STRINGS = ("key",)  # counters and ids sharing their starts: DELTA_BYTE_ARRAY, 5-20x smaller
# message is dictionary-encoded when its first MESSAGE_SAMPLE rows repeat (syslog's, services'
# fixed texts), else PLAIN: a dictionary of distinct texts costs a hash a row before the writer
# gives it up, and the plain pages after it compress worse (book packets: 0.30 vs 0.23 CPU s
# per million events, 3.31 vs 3.14 MB a segment)
MESSAGE_SAMPLE = 4096
# The read is fetched in record batches of this many rows, not DuckDB's default of a million
# (a whole segment in one batch): each batch's buffers (~2-3 MB of messages) come from the heap
# again and again, where a segment's ~40 MB buffers were mapped afresh each time, page faults
# the compacting thread paid in the kernel (docs/benchmarks.md, "Compaction, seventh cut")
FETCH_ROWS = 16384
# DuckDB's JSON reader sizes its buffers by maximum_object_size: buffers of 16 MB were mapped
# afresh (faulted in) every segment, ~50k page faults per million events; of 2 MB, ~3k
# (docs/benchmarks.md, "Compaction, seventh cut"). Twice the largest event ingest takes; a longer
# line is read whole all the same (tests/logs/store/test_compact.py) up to ~32 MB, and one DuckDB
# refuses is read again with room for it (store/long_lines.py).
READ_OBJECT_BYTES = 2 * layout.MAX_EVENT_BYTES
BLOCK = "_b"  # the block (row group) of a row, a column of the table the summaries are counted in


def new_connection(threads: int = 1, memory_limit: str = "1GB", spill: Path | None = None):
    config = {"threads": threads, "memory_limit": memory_limit}
    con = duckdb.connect(":memory:", config=config)
    if spill is not None:
        con.execute(f"SET temp_directory = {sql_str(str(spill))}")
    return con


def in_order(path: str) -> bool:
    """Do the segment's first lines (ORDER_SAMPLE_BYTES of them) come in (@timestamp, seq)
    order? A guess only (read_sorted checks every line): lines written as they arrived (book
    packets, with the time they were received) nearly always are, and then the read is not
    sorted, 0.3-0.4 CPU s per million events less; lines with their senders' own times nearly
    never are."""
    try:
        with open(path, "rb") as f:
            head = f.read(ORDER_SAMPLE_BYTES).split(b"\n")[:-1]  # whole lines only
        keys = [(ev["@timestamp"], ev["seq"]) for ev in map(orjson.loads, head)]
    except (OSError, ValueError, KeyError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return False
    return all(isinstance(t, int) and isinstance(q, int) for t, q in keys) and keys == sorted(keys)


def read_sorted(con: duckdb.DuckDBPyConnection, relation: str, guess_in_order: bool) -> Any:
    """``relation``'s rows as an Arrow table sorted by (@timestamp, seq), NULLs last as ORDER
    BY puts them. With ``guess_in_order`` it is read as it comes and checked; out of order
    after all, it is sorted then (one more pass: the price of a wrong guess).

    Arrow, not a DuckDB table: the Parquet file, the token filters and the summaries are all
    made from this one table, and fetching the read straight to Arrow costs 0.3-0.4 CPU s per
    million events less than a temporary table (docs/benchmarks.md, "Compaction, third cut")."""
    order = f"ORDER BY {TS}, seq"
    if not guess_in_order:
        return con.sql(f"SELECT {SELECT_LIST} FROM {relation} {order}").to_arrow_table(FETCH_ROWS)
    table = con.sql(f"SELECT {SELECT_LIST} FROM {relation}").to_arrow_table(FETCH_ROWS)
    import numpy as np  # the compacting worker's, as tokens.py's

    ts, seq = table.column("@timestamp"), table.column("seq")
    if ts.null_count or seq.null_count:  # a NULL: let ORDER BY place it
        ordered = False
    else:
        ts, seq = ts.to_numpy(), seq.to_numpy()
        dt = np.diff(ts)
        ordered = bool(np.all((dt > 0) | ((dt == 0) & (np.diff(seq) >= 0))))
    if ordered:
        return table
    con.register("_unsorted", table)
    try:
        return con.sql(f"SELECT * FROM _unsorted {order}").to_arrow_table(FETCH_ROWS)
    finally:
        con.unregister("_unsorted")


def write_parquet(table: Any, path: Path, block_rows: int, *, page_rows: int = 0) -> None:
    """``table`` as the store's Parquet file, fsynced: a row group a block, zstd level 1,
    Parquet v2 pages, delta encodings for the times and seqs (read 5-6x faster than plain),
    PLAIN for the columns of ids and JSON and for messages that do not repeat (nearly a value
    a row: their dictionaries only grow), DELTA_BYTE_ARRAY for keys, dictionaries for the rest; ``params`` and ``labels`` keep Parquet's JSON type, as DuckDB
    wrote them. pyarrow's writer, not DuckDB's COPY: 0.3-0.35 CPU s per million events less
    and the files 5-7% smaller (docs/benchmarks.md, "Compaction, third cut"). ``page_rows``: pages
    of at most that many rows and a page index (bench/rare_word_pages.py measures a page reader on
    them; compaction writes pyarrow's default pages: "Rare word, fifth pass")."""
    import pyarrow as pa
    import pyarrow.parquet as papq

    columns = []
    for name in table.column_names:
        col = table.column(name)
        if name in JSON_COLUMNS:
            col = pa.chunked_array([pa.ExtensionArray.from_storage(pa.json_(), c) for c in col.chunks], pa.json_())
        columns.append(col)
    table = pa.Table.from_arrays(columns, names=table.column_names)
    encodings = {**dict.fromkeys(DELTA_INTEGERS, "DELTA_BINARY_PACKED"),
                 **dict.fromkeys(PLAIN_STRINGS, "PLAIN"), **dict.fromkeys(PREFIXED_STRINGS, "DELTA_BYTE_ARRAY")}
    if "message" in table.column_names and not repeats(table.column("message")):
        encodings["message"] = "PLAIN"
    papq.write_table(table, str(path), row_group_size=block_rows, compression="zstd",
                     compression_level=ZSTD_LEVEL, data_page_version="2.0", column_encoding=encodings,
                     use_dictionary=[n for n in table.column_names if n not in encodings],
                     **({"max_rows_per_page": page_rows, "write_page_index": True} if page_rows else {}))
    fsync_path(path)


def repeats(column: Any) -> bool:
    """Do the column's first MESSAGE_SAMPLE values repeat (fewer than half of them distinct)?"""
    import pyarrow.compute as pc

    sample = column.slice(0, MESSAGE_SAMPLE)
    return pc.count_distinct(sample).as_py() * 2 < len(sample)


def summaries(con: duckdb.DuckDBPyConnection, final: Path, empty: frozenset[str] = frozenset()) -> tuple:
    """What the block index keeps of view ``c`` (the file's rows, each with its block in
    column BLOCK) beside the token filters: the blocks' ranges, per-minute counts, value
    counts, the /mesh counts and the services; and the RED summary, written beside ``final``
    (red_summary.py) before the index that names it. Returns (blocks, values, minutes,
    services, red). ``empty``: columns NULL in every row, whose statements would find
    nothing (book packets have no service.name or status code): not run."""
    b = ident(BLOCK)
    blocks = con.execute(f"SELECT {b} AS b, min({TS}), max({TS}), count(*), min(seq), max(seq) "
                         "FROM c GROUP BY b ORDER BY b").fetchall()
    minutes: dict[int, list[int]] = {}
    wide = {blk[0] for blk in blocks if blk[2] // MINUTE_MS - blk[1] // MINUTE_MS > MAX_BLOCK_MINUTES}
    for blk, m, n in con.execute(f"SELECT {b} AS b, {TS} // {MINUTE_MS} AS m, count(*) "
                                 "FROM c GROUP BY ALL ORDER BY b, m").fetchall():
        if blk in wide:
            continue
        entry = minutes.setdefault(blk, [m])
        entry.extend([0] * (m - entry[0] - (len(entry) - 1)))  # minutes without events
        entry.append(n)
    values: dict[str, list[dict[str, int] | None]] = {}
    for f in SUMMARY_FIELDS:
        per: dict[int, dict[str, int]] = {}
        for blk, v, n in [] if f in empty else con.execute(f"SELECT {b} AS b, CAST({ident(f)} AS VARCHAR), count(*) "
                                     f"FROM c WHERE {ident(f)} IS NOT NULL GROUP BY ALL").fetchall():
            per.setdefault(blk, {})[v] = n
        values[f] = [per.get(blk[0], {}) if len(per.get(blk[0], {})) <= SUMMARY_MAX_VALUES else None
                     for blk in blocks]
    mesh: dict[int, dict[str, list[int]]] = {}
    no_service = "service.name" in empty
    for blk, svc, *counts in [] if no_service else con.execute(f"SELECT {b} AS b, {MESH_SELECT} FROM c "
                                         f"WHERE {ident('service.name')} IS NOT NULL GROUP BY ALL").fetchall():
        mesh.setdefault(blk, {})[svc] = counts
    values["mesh"] = [mesh.get(blk[0], {}) if len(mesh.get(blk[0], {})) <= SUMMARY_MAX_VALUES else None
                      for blk in blocks]  # service -> [requests, errors, events]: /mesh
    services = {} if no_service else {str(svc): n for svc, n in con.execute(
        f"SELECT {ident('service.name')}, count(*) FROM c WHERE {ident('service.name')} IS NOT NULL "
        "GROUP BY ALL").fetchall()}
    red = red_summary.write(con, "c", final)  # before the index that names it
    return blocks, values, minutes, services, red


def es_id_rows(table: Any) -> int | None:
    """How many of ``table``'s rows carry the label ``es.id`` (an Elasticsearch ``_id``): one
    C pass over the labels' text, the test the start's scan makes (es_ids_store.py); None
    when the labels are not text (the scan then reads the file, as one compacted before)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "labels" not in table.column_names:
        return 0
    labels = table.column("labels")
    try:
        if not (pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type)):
            labels = labels.cast(pa.string())
        return pc.sum(pc.match_substring(labels, f'"{layout.ES_ID_LABEL}":')).as_py() or 0
    except pa.ArrowException:
        return None


def compact_segment(con: duckdb.DuckDBPyConnection, seg: SegmentInfo, parquet_dir: Path,
                    block_rows: int = layout.PARQUET_ROW_GROUP_ROWS) -> dict:
    """Steps 1-5 of the module docstring for one segment; returns the block index written."""
    parquet_dir.mkdir(parents=True, exist_ok=True)
    name = layout.parquet_name(seg.path.name)
    final = parquet_dir / name
    tmp = parquet_dir / (name + layout.TMP_SUFFIX)
    path = str(seg.path)
    damaged = False
    guess = in_order(path)
    room = long_lines.object_bytes((seg.index or {}).get("longest"))  # MAX_OBJECT_BYTES unless longer

    def typed(size: int) -> Any:
        try:  # messages taken for JSON unchecked (buffers for lines of READ_OBJECT_BYTES unless
            # the index says longer); one that is no JSON fails the read, and the checked one is taken
            return read_sorted(con, read_ndjson_sql(path, trust_json=True, max_object_bytes=(
                READ_OBJECT_BYTES if size <= MAX_OBJECT_BYTES else size)), guess)
        except duckdb.Error as exc:
            if long_lines.too_long(exc) and size <= MAX_OBJECT_BYTES:
                raise  # read_fitting reads again with room for the longest line
            return read_sorted(con, read_ndjson_sql(path, max_object_bytes=size), guess)

    try:
        table = long_lines.read_fitting(typed, path, room)
    except duckdb.Error as exc:
        log.warning("%s: typed read failed (%s); reading value by value", seg.path.name, exc)
        table = long_lines.read_fitting(
            lambda size: read_sorted(con, read_ndjson_lenient_sql(path, size), False), path, room)
        damaged = True
    rows = table.num_rows
    expected = (seg.index or {}).get("count")
    if expected is not None and rows != expected:
        log.error("%s: read %d event(s), its index says %d; the segment is kept in %s/",
                  seg.path.name, rows, expected, layout.QUARANTINE_DIR)
        damaged = True
    if rows == 0:  # nothing readable, nothing to write: an empty file's index has no block, so
        # no query ever reads it and damage to it later would go unseen (durability machine)
        if damaged:
            fsync_path(catalogue.set_aside(seg.path).parent)
        return {"rows": 0, "bytes": 0}
    import numpy as np  # the compacting worker's, as tokens.py's

    con.register("c", table.append_column(BLOCK, [np.arange(rows, dtype=np.int64) // block_rows]))
    try:
        empty = frozenset(n for n in (*SUMMARY_FIELDS, "service.name") if table.column(n).null_count == rows)
        blocks, values, minutes, services, red = summaries(con, final, empty)
        blooms = tokens.build_blooms(con, table.column("message"), block_rows, len(blocks))
    finally:
        con.unregister("c")
    es_ids = es_id_rows(table)
    write_parquet(table, tmp, block_rows)
    del table
    index = {
        # first: a start's `_id` scan reads this member alone (es_ids_store.py)
        "es_ids": es_ids,
        "version": layout.PARQUET_FORMAT_VERSION, "segment": seg.path.name, "rows": rows,
        "min_ts": min((b[1] for b in blocks), default=0), "max_ts": max((b[2] for b in blocks), default=0),
        "first_seq": min((b[4] for b in blocks), default=0), "last_seq": max((b[5] for b in blocks), default=0),
        "bytes": tmp.stat().st_size, "block_rows": block_rows, "services": services,
        "blocks": [[b[1], b[2], b[3], b[4], b[5]] for b in blocks],
        "tokens": blooms.encode(),  # per block a Bloom filter of message tokens (tokens.py)
        "minutes": [minutes.get(b[0], []) for b in blocks],  # [first minute, count, count, ...]
        "values": values,  # field -> per block {value: count} (None: too many values)
        "red": red,  # the .red file's version and the blocks it does not summarize
    }
    write_atomic(parquet_dir / layout.blocks_name(name), orjson.dumps(index))
    os.replace(tmp, final)
    fsync_path(parquet_dir)
    if damaged:  # its readable rows are in the Parquet file; the whole original goes aside
        fsync_path(catalogue.set_aside(seg.path).parent)
    return index


def thread_faults() -> int:
    """The calling thread's minor page faults so far (0 where the OS does not count them): a
    compaction's buffers are mapped afresh a segment, ~150-200k faults per million events in
    the server (docs/benchmarks.md, "Compaction, sixth cut")."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    return resource.getrusage(who).ru_minflt if who is not None else 0


def remove_segment(seg: SegmentInfo) -> None:
    seg.path.unlink(missing_ok=True)
    seg.path.with_name(layout.index_name(seg.path.name)).unlink(missing_ok=True)
    fsync_path(seg.path.parent)


class Compactor:
    """A worker's background thread: compact its sealed segments (``owns``), then (worker 0's)
    apply retention."""

    def __init__(self, data_dir: Path, *, grace: float = COMPACT_GRACE_SECONDS,
                 interval: float = COMPACT_INTERVAL_SECONDS, clock: Callable[[], float] = time.time,
                 after_pass: Callable[[], None] | None = None,
                 block_rows: int = layout.PARQUET_ROW_GROUP_ROWS,
                 metrics: Metrics | None = None, worker: str = "0") -> None:
        """``metrics``: the registry its counters go to (the server's; one of its own if
        None), labelled ``worker``."""
        self.data_dir = Path(data_dir)
        self.parquet_dir = self.data_dir / layout.PARQUET_DIR
        self.grace = grace
        self.interval = interval
        self.clock = clock
        self.after_pass = after_pass  # e.g. retention
        self.block_rows = block_rows
        m = metrics or Metrics()

        def counter(name: str, help_text: str) -> Any:
            return m.counter(name, help_text, ["worker"]).labels(worker)

        self.segments = counter("logmesh_compacted_segments_total", "Segments compacted to Parquet.")
        self.events = counter("logmesh_compacted_events_total", "Events compacted to Parquet.")
        self.seconds = counter("logmesh_compaction_seconds_total", "Time spent compacting.")
        self.cpu_seconds = counter("logmesh_compaction_cpu_seconds_total",
                                   "CPU time of the compacting thread (its DuckDB runs in it).")
        self.errors = counter("logmesh_compaction_errors_total", "Failed compactions (retried).")
        self.page_faults = counter("logmesh_compaction_page_faults_total",
                                   "Minor page faults of the compacting thread (its kernel CPU).")
        self.parquet_bytes = 0  # bytes this compactor wrote and read (not metrics; in stats)
        self.ndjson_bytes = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, float] = {}  # segment -> when it last failed (retried later)
        self._conflicts: set[str] = set()  # segments kept beside a Parquet file of their name
        self.failure: str | None = None  # the last pass's error, for /healthz (None: it went well)
        self.started = False
        # hold(seg) True: a forwarding sink still reads this NDJSON (sinks/cursor.py:unsent_by);
        # compact it, but delete it only on a later pass, once the sink has sent it.
        self.hold: Callable[[SegmentInfo], bool] | None = None
        # owns(worker): does this compactor take that worker's segments (owned_by)? None: every
        # worker's (one compactor for the store: tests, tools)
        self.owns: Callable[[int], bool] | None = None
        # on_damaged(n): n events of a sealed segment no reader could read (its index counted
        # them; its readable rows compacted, the original set aside): counted as recovery counts
        # a damaged line (server.py wires the writer's counter), not only logged
        self.on_damaged: Callable[[int], None] | None = None
        # defer(due): True while the due segments may wait (ingest busy, one segment due:
        # store/pacing.py, wired by server.py); None: each is compacted once due
        self.defer: Callable[[list[SegmentInfo]], bool] | None = None

    @property
    def stats(self) -> dict[str, int | float]:
        """The counts: read from the metrics, with the bytes written and read."""
        return {"segments": number(value(self.segments)), "events": number(value(self.events)),
                "seconds": value(self.seconds), "errors": number(value(self.errors)),
                "parquet_bytes": self.parquet_bytes, "ndjson_bytes": self.ndjson_bytes}

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            spill = self.parquet_dir / ".spill"
            spill.mkdir(parents=True, exist_ok=True)
            self._con = new_connection(spill=spill)
        return self._con

    def pending(self) -> list[SegmentInfo]:
        """Sealed segments without a Parquet file, sealed at least ``grace`` seconds ago (and
        not failed in the last RETRY_SECONDS), the longest sealed first, whichever worker's."""
        now = self.clock()
        return [seg for due, seg in sorted(self._waiting(), key=lambda d: (d[0], d[1].path.name))
                if due <= now]

    def next_delay(self) -> float:
        """Seconds until the next sealed segment may be compacted (0: one may now), at most
        ``interval``: the thread sleeps this long, so that a backlog is compacted without a
        pause and a segment sealed meanwhile is taken as its grace runs out."""
        due = min((d for d, _ in self._waiting()), default=None)
        return self.interval if due is None else min(self.interval, max(0.0, due - self.clock()))

    def _waiting(self) -> list[tuple[float, SegmentInfo]]:
        """(when it may be compacted, segment) for each sealed segment without a Parquet file;
        deletes those whose Parquet file holds their events (compacted before a crash, or
        held by a sink until now)."""
        done = catalogue.parquet_names(self.data_dir)
        out = []
        for seg in list_segments(self.data_dir):
            if not seg.sealed or (self.owns is not None and not self.owns(seg.worker)):
                continue
            if layout.parquet_name(seg.path.name) in done:
                if self._same_events(seg):  # compacted before (a crash, or a sink held it)
                    self._remove(seg)
                continue
            try:
                sealed_at = seg.path.with_name(layout.index_name(seg.path.name)).stat().st_mtime
            except FileNotFoundError:
                continue
            out.append((max(sealed_at + self.grace, self._failed.get(seg.path.name, -RETRY_SECONDS)
                            + RETRY_SECONDS), seg))
        return out

    def _same_events(self, seg: SegmentInfo) -> bool:
        """Does the Parquet file named like ``seg`` hold ``seg``'s events? Only then may it go.

        A name says which events a file holds only while seqs never repeat; a
        store written before they were kept unique (issue 14) may hold a newer
        segment under a compacted one's name. That segment is kept and said so.
        """
        blocks = self.parquet_dir / layout.blocks_name(layout.parquet_name(seg.path.name))
        try:
            info = orjson.loads(blocks.read_bytes())
            same = (info["first_seq"], info["last_seq"]) == (seg.index["first_seq"],  # type: ignore[index]
                                                             seg.index["last_seq"])  # type: ignore[index]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            same = False
        if not same and seg.path.name not in self._conflicts:
            self._conflicts.add(seg.path.name)
            log.error("%s: a Parquet file of the same name holds other events; the segment is kept "
                      "(move it to another data directory to read it)", seg.path.name)
        return same

    def _remove(self, seg: SegmentInfo) -> None:
        if self.hold is None or not self.hold(seg):
            remove_segment(seg)

    def clean_tmp(self) -> None:
        """Remove the files a crash left half written, and the summaries and block indexes of no
        Parquet file (catalogue.orphans): this compactor's own only, since another worker's
        compactor may be writing its own right now."""
        for path in catalogue.tmp_files(self.data_dir, layout.PARQUET_DIR) + catalogue.orphans(self.data_dir):
            if self.owns is None or self.owns(catalogue.tmp_worker(path.name)):
                path.unlink(missing_ok=True)

    def run_once(self) -> int:
        """Compact every pending segment; returns how many were compacted."""
        self.clean_tmp()
        done = 0
        failure = None
        due = self.pending()
        if due and self.defer is not None and self.defer(due):
            return 0  # looked at again in a second (_run), or when a seal wakes the thread
        for seg in due:
            if self._stop.is_set():
                break
            t0, cpu0, faults0 = time.perf_counter(), time.thread_time(), thread_faults()
            try:
                with claims.claim(seg.path) as mine:  # not removed by retention meanwhile
                    if not mine:
                        continue  # retention is removing it, or did
                    size = seg.path.stat().st_size
                    index = compact_segment(self.connection(), seg, self.parquet_dir, self.block_rows)
                    self._remove(seg)
            except FileNotFoundError:
                continue  # removed meanwhile (retention)
            except (duckdb.Error, OSError, ValueError) as exc:
                self.errors.inc()
                self._failed[seg.path.name] = self.clock()
                failure = f"compaction of {seg.path.name} failed: {exc}"
                log.error("compaction of %s failed (retrying in a minute): %s", seg.path.name, exc)
                continue
            took = time.perf_counter() - t0
            expected = (seg.index or {}).get("count")
            if expected is not None and index["rows"] < expected and self.on_damaged is not None:
                self.on_damaged(expected - index["rows"])
            self.cpu_seconds.inc(time.thread_time() - cpu0)
            self.page_faults.inc(thread_faults() - faults0)
            self._failed.pop(seg.path.name, None)
            done += 1
            self.segments.inc()
            self.events.inc(index["rows"])
            self.seconds.inc(took)
            self.parquet_bytes += index["bytes"]
            self.ndjson_bytes += size
            log.info("compacted %s: %d events, %d -> %d bytes (%.1f%%) in %.2fs", seg.path.name,
                     index["rows"], size, index["bytes"], 100 * index["bytes"] / max(size, 1), took)
        if failure is not None:
            self.failure = failure
        elif not self._failed:
            self.failure = None
        return done

    # -- the thread -------------------------------------------------------------------------------
    def wake(self, *_: object) -> None:
        """Look for work now (the writer's on_seal hook)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="compactor", daemon=True)
        self._thread.start()
        self.started = True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        """Passes one after the other while segments are due, else a sleep until the next one
        is (or a seal wakes it: the new segment's grace is then counted). Sleeping the grace
        after every wake, as before, left the thread idle ~5 s after each pass during a
        backlog, since some segment always sealed during the pass (bench/sustained.py:
        docs/benchmarks.md, "Compaction, fifth cut")."""
        while not self._stop.is_set():
            done = 0
            try:
                done = self.run_once()
                if self.after_pass is not None:
                    self.after_pass()
                delay = self.next_delay()
            except Exception as exc:
                log.exception("compaction pass failed")
                self.failure = f"compaction pass failed: {exc!r}"
                delay = self.interval
            if delay > 0 or not done:  # a due segment that was not compacted: not in a spin
                self._wake.wait(max(delay, 0.0 if done else 1.0))
            self._wake.clear()

    def stop(self, timeout: float = 30.0) -> None:
        self.started = False
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._con is not None:
            try:
                self._con.close()
            except duckdb.Error:
                pass
            self._con = None
