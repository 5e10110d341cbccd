"""Retention: delete the oldest sealed segments and Parquet files by age or total size.

``--retention 7d``: a file goes once its newest event (``max_ts`` of its index)
is older than that and the file itself was written longer ago than that (its mtime), as
Elasticsearch's ILM ages an index from its rollover: an acknowledged event stays at least
the retention after it was stored, even one stamped years ago (a backfill; events stamped
1970 and 1990 went within seconds of their ack). A store copied without its files' times
keeps them a retention longer, never shorter. A newest event stamped more than a day after its
file was written counts as stamped then (FUTURE_SLACK_MS: its sender's clock is wrong), for the
age and for --max-disk's order. ``--max-disk 10GB``: while segments + Parquet files (with
their indexes) take more than that, the file with the oldest newest event goes. A sealed
segment waiting for compaction counts at what its events will take compacted (the bytes a
Parquet event takes in this store), not at its NDJSON size, which is ~10-15x that: a
backlog (a restart after a burst or a kill -9) must not push out compacted events it will
never displace (found from outside: a restart with --max-disk 150MB and a backlog deleted
12.7M acked events of a store that measured 6.4 MB once compacted). The disk holds the
backlog's excess meanwhile; a disk that fills is refused (507), not emptied. The active segment of any worker (no ``.idx.json`` yet) is never touched, so
the limit can be exceeded by the active segments alone; that is logged.

Runs in worker 0's compaction thread after each of its passes (the other workers' compactors
run none: once for the store). A segment another worker is compacting right then is left to
the next pass, as the Parquet file it becomes (claims.py). Every deletion is
logged with its reason and counted (``logmesh_retention_deleted_*`` in /metrics:
prometheus-client counters of the server's registry).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ...metrics import Metrics, number, value
from . import catalogue, claims, layout, red_summary

log = logging.getLogger("logmesh.logs.retention")

REASONS = ("age", "disk")  # why a file went: --retention, --max-disk
# A newest event stamped later than this after its file was written has a wrong clock (its
# sender's): the file's own time stands for it. One event stamped 9999 kept its file, and every
# event in it, for ever under --retention, and last under --max-disk, which deleted newer
# events first (found from outside); a sender whose clock runs ahead pinned every file.
FUTURE_SLACK_MS = 86_400_000


@dataclass
class Victim:
    """A deletable unit: a sealed segment and its index, or a Parquet file and its blocks."""

    kind: str  # "segment" | "parquet"
    paths: list[Path]  # the data file first: once it is gone, readers ignore the rest
    max_ts: int
    events: int
    bytes: int  # what deleting it frees
    written_ms: int = 0  # the data file's mtime: an event is kept a retention after it
    counted: int = -1  # what --max-disk counts it at (bytes, unless a segment waiting for compaction)

    def __post_init__(self) -> None:
        if self.counted < 0:
            self.counted = self.bytes


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _size(path: Path) -> int:
    st = _stat(path)
    return 0 if st is None else st.st_size


def _written_ms(st: os.stat_result | None) -> int:
    return 0 if st is None else int(st.st_mtime * 1000)


def _newest(max_ts: int, written_ms: int) -> int:
    """A file's newest event as retention ages and orders it: its stamp, unless that is more
    than FUTURE_SLACK_MS after the file was written (a wrong clock)."""
    return written_ms if written_ms and max_ts > written_ms + FUTURE_SLACK_MS else max_ts


class Retention:
    def __init__(self, data_dir: Path, *, max_age_ms: int | None = None, max_bytes: int | None = None,
                 clock: Callable[[], float] = time.time, metrics: Metrics | None = None,
                 worker: str = "0") -> None:
        """``metrics``: the registry its counters go to (the server's; one of its own if
        None), labelled ``worker``."""
        self.data_dir = Path(data_dir)
        self.max_age_ms = max_age_ms
        self.max_bytes = max_bytes
        self.clock = clock
        m = metrics or Metrics()
        files = m.counter("logmesh_retention_deleted_files_total",
                          "Segment and Parquet files deleted by retention, by reason (age, disk).",
                          ["worker", "reason"])
        self.deleted_files = {reason: files.labels(worker, reason) for reason in REASONS}

        def counter(name: str, help_text: str) -> Any:
            return m.counter(name, help_text, ["worker"]).labels(worker)

        self.deleted_bytes = counter("logmesh_retention_deleted_bytes_total", "Bytes deleted by retention.")
        self.deleted_events = counter("logmesh_retention_deleted_events_total",
                                      "Events deleted by retention.")
        self._warned = False

    @property
    def counters(self) -> dict[str, int]:
        """Files deleted by reason (``files_age``, ``files_disk``), their bytes and events:
        read from the metrics."""
        return {**{f"files_{r}": int(number(value(c))) for r, c in self.deleted_files.items()},
                "bytes": int(number(value(self.deleted_bytes))),
                "events": int(number(value(self.deleted_events)))}

    @property
    def enabled(self) -> bool:
        return bool(self.max_age_ms or self.max_bytes)

    def scan(self) -> tuple[list[Victim], int]:
        """(deletable units, total bytes the limit counts: a sealed segment at its compacted size)."""
        victims: list[Victim] = []
        for pq in catalogue.parquet_files(self.data_dir):
            path = pq.path
            blocks = path.with_name(layout.blocks_name(path.name))
            st = _stat(path)
            try:
                info = orjson.loads(blocks.read_bytes())
                max_ts, events = int(info["max_ts"]), int(info["rows"])
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                if st is None:
                    continue
                # no index: the file's own time is a fair stand-in for its newest event
                max_ts, events = _written_ms(st), 0
            red = red_summary.red_path(path)
            victims.append(Victim("parquet", [path, blocks, red], _newest(max_ts, _written_ms(st)), events,
                                  (0 if st is None else st.st_size) + _size(blocks) + _size(red),
                                  _written_ms(st)))
        counted = [v for v in victims if v.events]
        rows = sum(v.events for v in counted)
        per_event = sum(v.bytes for v in counted) / rows if rows else None  # None: no Parquet yet
        backlog = 0  # bytes the waiting segments take beyond their compacted estimate
        compacted = {v.paths[0].name for v in victims}
        for seg in catalogue.list_segments(self.data_dir):
            if seg.index is None:
                continue  # active (or not recovered yet, or its index unreadable): never touched
            idx = seg.path.with_name(layout.index_name(seg.path.name))
            st = _stat(seg.path)
            size = (0 if st is None else st.st_size) + _size(idx)
            if layout.parquet_name(seg.path.name) in compacted:
                # a copy its Parquet file holds (a crash between compaction's commit and the
                # segment's removal): deleting it deletes no event, and frees all its bytes
                events, estimate = 0, size
            else:
                events = int(seg.index.get("count", 0))
                estimate = size if per_event is None else min(size, int(events * per_event))
            backlog += size - estimate
            victims.append(Victim("segment", [seg.path, idx], _newest(int(seg.index.get("max_ts", 0)),
                                  _written_ms(st)), events, size, _written_ms(st), estimate))
        victims.sort(key=lambda v: (v.max_ts, v.paths[0].name))
        return victims, catalogue.usage(self.data_dir).bytes - backlog

    def run_once(self) -> list[Victim]:
        """Delete what the limits say; returns what was deleted."""
        if not self.enabled:
            return []
        victims, total = self.scan()
        now = int(self.clock() * 1000)
        deleted: list[Victim] = []
        keep: list[Victim] = []
        for v in victims:
            if self.max_age_ms and max(v.max_ts, v.written_ms) < now - self.max_age_ms:
                if self._delete(v, "age", f"newest event and the file older than "
                                          f"{self.max_age_ms // 1000}s"):
                    deleted.append(v)
                    total -= v.counted
            else:
                keep.append(v)
        if self.max_bytes:
            for v in keep:
                if total <= self.max_bytes:
                    break
                if not self._delete(v, "disk", f"store {total} bytes > --max-disk {self.max_bytes}"):
                    break  # being compacted: the oldest goes first, as a Parquet file next pass
                deleted.append(v)
                total -= v.counted
            if total > self.max_bytes and not self._warned:
                self._warned = True
                log.warning("retention: %d bytes counted exceed --max-disk %d, but only the active "
                            "segments are left (never deleted)", total, self.max_bytes)
            elif total <= self.max_bytes:
                self._warned = False
        return deleted

    def _delete(self, v: Victim, reason: str, why: str) -> bool:
        """Delete and count ``v``; False when it is a segment another worker is compacting
        (claims.py): its Parquet file, once written, goes by the same rules."""
        if v.kind == "segment":
            try:
                with claims.claim(v.paths[0]) as mine:
                    if not mine:
                        log.info("retention: %s is being compacted; its Parquet file is looked at "
                                 "next pass", v.paths[0].name)
                        return False
                    for p in v.paths:
                        p.unlink(missing_ok=True)
            except FileNotFoundError:
                return False  # compacted and removed since the scan: its Parquet file is in charge
        else:
            for p in v.paths:
                p.unlink(missing_ok=True)
        self.deleted_files[reason].inc()
        self.deleted_bytes.inc(v.bytes)
        self.deleted_events.inc(v.events)
        log.info("retention: deleted %s %s (%d events, %d bytes): %s", v.kind, v.paths[0].name,
                 v.events, v.bytes, why)
        return True
