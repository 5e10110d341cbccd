"""Every on-disk name, format fact and limit of the store, in one place.

A data directory looks like::

    data/
      segments/
        w00-0000000000000001.ndjson      events, one JSON object per line (append-only)
        w00-0000000000000001.idx.json    written when the segment is sealed
        w00-0000000000000002.counts.json the active segment's counts so far (live_counts.py)
        w00.lock                          held (flock) by the worker writing w00-*
        w00.seq                           the highest seq w00 ever sealed: seqs never repeat
      parquet/
        w00-0000000000000001.parquet     a sealed segment compacted (zstd, sorted by time)
        w00-0000000000000001.blocks.json its row groups' time ranges and message token filters
        w00-0000000000000001.red         its access logs per route, minute and duration bucket
      quarantine/<file>@<offset>.damaged  bytes recovery could not read (damage, torn writes)
      sinks/<name>.cursor                 a sink's durable position (JSON, replaced atomically)
      deadletter/<name>.ndjson            events a sink could not deliver, with the reason
      metrics/                            --workers N: the workers' prometheus-client files
      health/wNN.json                     --workers N: what each worker heard of the mesh
      scratch/<kind>-<pid>-<random>/    a process's temporary files (store/scratch.py): removed
                                          by the next start when the process is gone
      saved-searches.json                 the web UI's saved searches (http/saved_searches.py)

Segment files are NDJSON so DuckDB, grep and jq read them as they are. A
segment is named by its worker and the sequence number of its first event;
sealed segments are never rewritten in place.
"""

from __future__ import annotations

import re

SEGMENT_FORMAT_VERSION = 1  # bump when the line format changes; readers check the index's "version"

SEGMENTS_DIR = "segments"
PARQUET_DIR = "parquet"
SINKS_DIR = "sinks"
DEADLETTER_DIR = "deadletter"
QUARANTINE_DIR = "quarantine"
METRICS_DIR = "metrics"  # logs/server.py: one registry's files per worker (multiprocess mode)
HEALTH_DIR = "health"  # logs/health_monitor.py: what each worker heard, shared once a second
BALANCE_DIR = "balance"  # logs/ingest/balance.py: each worker's open ingest connections (--workers)
SCRATCH_DIR = "scratch"  # store/scratch.py: each process's temporary files, swept at start
SAVED_SEARCHES_FILE = "saved-searches.json"  # http/saved_searches.py: replaced atomically, under a lock
QUARANTINE_SUFFIX = ".damaged"
SEGMENT_SUFFIX = ".ndjson"
HIGHWATER_SUFFIX = ".seq"  # {"last_seq": N}: outlives every segment and Parquet file of a worker
INDEX_SUFFIX = ".idx.json"  # {"version", "first_seq", "last_seq", "count", "min_ts", "max_ts", "bytes", "longest", "services": {name: n}, "sparse": [[seq, ts, offset], ...]}
# beside the active segment: its index less "sparse", replaced (not fsynced) after each group the
# writer writes; "bytes" is the offset it covers. Removed when the segment is sealed, and by
# recovery (store/live_counts.py): /api/v1/stats reads it instead of the segment's lines
COUNTS_SUFFIX = ".counts.json"
PARQUET_SUFFIX = ".parquet"
BLOCKS_SUFFIX = ".blocks.json"  # beside each .parquet: per row group time range + message token filter
RED_SUFFIX = ".red"  # beside each .parquet: its access logs' RED summary (Parquet; red_summary.py)
TMP_SUFFIX = ".tmp"  # files being written; never read, removed at the next compaction pass
# The label an Elasticsearch action's `_id` is kept as (logs/ingest/es_bulk.py; no other
# source may set it: ingest/common.refuse_es_labels). Compaction counts the events that carry
# it into the block index's "es_ids", so a start's `_id` scan (ingest/es_ids_store.py)
# opens no Parquet file without one.
ES_ID_LABEL = "es.id"
PARQUET_FORMAT_VERSION = 2  # bump when the Parquet columns or the .blocks.json layout change
# Block indexes still read: 1 held message trigrams (store/trigrams.py), sound for whole-token
# matches too, so its blocks are still pruned by them; 2 holds token Bloom filters (tokens.py).
READABLE_PARQUET_VERSIONS = (1, 2)
PARQUET_ROW_GROUP_ROWS = 16384  # rows per row group (= index block): small enough to skip by time
SEGMENT_RE = re.compile(r"^w(\d{2})-(\d{16})\.ndjson$")
_STEM_RE = re.compile(r"^w(\d{2})-(\d{16})$")  # a segment's or Parquet file's name, less its suffix

MAX_WORKERS = 64  # seq = (per-worker counter << WORKER_BITS) | worker: unique in the store
WORKER_BITS = 6
# The largest seq a file's name holds (segment_name: 16 digits). A number past it read from an
# index or the high-water file is damage: seqs made from it named files no pattern matched.
MAX_SEQ = 10**16 - 1
MAX_SEGMENT_EVENTS = 1 << 32  # more than any segment holds (a seq step for a Parquet file without index)
SPARSE_EVERY = 4096  # one [seq, ts, offset] entry in the index per this many events

MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: ISO-8601's, DuckDB's and ES's end
MAX_EVENT_BYTES = 1024 * 1024  # the usual longest event (--max-packet-size's default): readers' buffers
# The longest line the store takes (store/segment.py: LineTooLong). An event is refused at ingest,
# before it is acknowledged, and counted (too_large) when its stored line would be longer. An event
# grows when stored (a control character of a protobuf or syslog message is written \u0001: 6x), so
# a body within --max-body-size (16 MiB) made a line of ~96 MB, and a raised one had no bound; DuckDB
# takes ~2.5x a line in memory to read it (store/long_lines.py), in every query and compaction that
# reads its segment: 64 MiB bounds that at ~160 MB. Refused, not cut: an acknowledged event is
# stored as sent, and the sender is told (NDJSON: that event; OTLP, ES bulk, Loki: the request).
# VictoriaLogs skips lines over -insert.maxLineSizeBytes (256 KiB) and Loki refuses entries over
# max_line_size (256 KB): this bound is for memory, not a policy on what a log line should be.
MAX_LINE_BYTES = 64 * 1024 * 1024
# --max-packet-size at most: a packet (a socket's line, frame or message) of it stores in at most
# 6 x 10 MiB (a byte of it is at most 6 stored, \u00XX), within MAX_LINE_BYTES with room for the
# fields logmesh adds (address, times, seq): the socket paths never meet LineTooLong
MAX_PACKET_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_SEGMENT_BYTES = 256 * 1024 * 1024  # a segment is sealed past this size ...
ROTATE_SECONDS = {"hour": 3600, "day": 86400}  # ... or when the hour (day) of the clock changes
DEFAULT_FSYNC_INTERVAL = 0.05  # --fsync batch: events are on disk at most this long after arrival


def highwater_name(worker: int) -> str:
    return f"w{worker:02d}{HIGHWATER_SUFFIX}"


def segment_name(worker: int, first_seq: int) -> str:
    return f"w{worker:02d}-{first_seq:016d}{SEGMENT_SUFFIX}"


def index_name(segment: str) -> str:
    return segment[: -len(SEGMENT_SUFFIX)] + INDEX_SUFFIX


def counts_name(segment: str) -> str:
    return segment[: -len(SEGMENT_SUFFIX)] + COUNTS_SUFFIX


def parquet_name(segment: str) -> str:
    return segment[: -len(SEGMENT_SUFFIX)] + PARQUET_SUFFIX


def blocks_name(parquet: str) -> str:
    return parquet[: -len(PARQUET_SUFFIX)] + BLOCKS_SUFFIX


def parse_name(name: str, suffix: str = SEGMENT_SUFFIX) -> tuple[int, int] | None:
    """(worker, first seq) of ``w<worker>-<first seq><suffix>``; None for any other name."""
    m = _STEM_RE.match(name[: -len(suffix)]) if name.endswith(suffix) else None
    return (int(m.group(1)), int(m.group(2))) if m else None


def make_seq(counter: int, worker: int) -> int:
    return (counter << WORKER_BITS) | worker


def split_seq(seq: int) -> tuple[int, int]:
    """``seq`` -> (counter, worker)."""
    return seq >> WORKER_BITS, seq & (MAX_WORKERS - 1)
