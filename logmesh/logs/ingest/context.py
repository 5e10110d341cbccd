"""What every ingest connection of one worker shares: the store's writer, the connection
guard, the counters, and the connections paused while the store is behind (resumed after
each flush). The book port (tcp.py) and the socket ports (sockets.py, forward.py) use one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ...guard import ConnectionGuard, RateLimitedLog
from ...metrics import Metrics, number, value
from ..store.segment import SegmentWriter
from .common import Routes
from .ledger import ShipperLedger
from .turns import Turns

log = logging.getLogger("logmesh.logs.ingest")

# Stop reading a connection while the store holds this much unwritten data;
# the store's flusher resumes every paused connection after each write.
PAUSE_BUFFER_BYTES = 16 * 1024 * 1024

# Seconds an acked batch may wait for its fsync: the other batches that arrive meanwhile share
# the group (one write, one fsync). The ack still follows the fsync.
GROUP_WINDOW = 0.005
# A connection that sent an acked batch this recently is expected in each group (two of the
# shippers' 50 ms ticks, shipping/shipper.py's linger): see IngestContext.group_window.
GROUP_EXPECTS_SECONDS = 0.1




class IngestContext:
    """What every ingest connection of one worker shares."""

    def __init__(self, writer: SegmentWriter, *, max_frame_bytes: int = 1024 * 1024,
                 routes: Routes | None = None, ledger: ShipperLedger | None = None,
                 book_lines: Callable[[tuple[str, int], list], None] | None = None,
                 guard: ConnectionGuard | None = None, metrics: Metrics | None = None,
                 worker: str = "0") -> None:
        self.writer = writer
        self.guard = guard or ConnectionGuard("logs ingest")
        self.warn = RateLimitedLog(log)
        self.max_frame_bytes = max_frame_bytes
        self.routes = routes or Routes()
        self.ledger = ledger or ShipperLedger()
        self.book_lines = book_lines  # the chapter's log.txt / --echo output, when enabled
        self.paused: set[Any] = set()  # connection.IngestConnection, paused while behind
        self.turns = Turns(self.paused)  # the ingest reads one turn of the event loop handles (turns.py)
        # The counts live in metrics (docs/metrics.md), counted per read or batch, never per
        # event; ``stats`` reads them back.
        self.metrics = m = metrics or Metrics()
        w = (worker,)
        self.events = m.counter("logmesh_received_events_total",
                                "Events accepted for storage (TCP and HTTP).", ["worker"]).labels(*w)
        self.bytes = m.counter("logmesh_received_bytes_total",
                               "Bytes read from ingest connections.", ["worker"]).labels(*w)
        self.duplicates = m.counter("logmesh_duplicate_events_total",
                                    "Resent events dropped by event.id.", ["worker"]).labels(*w)
        self.connections = m.gauge("logmesh_ingest_connections", "Open ingest connections.",
                                   ["worker"]).labels(*w)
        self._by_reason = {
            "bad_frames": (m.counter("logmesh_bad_frames_total",
                                     "Frames dropped as unusable, by reason.", ["worker", "reason"]), {}),
            "rejected": (m.counter("logmesh_rejected_events_total",
                                   "Events of acked batches refused before the ack, by reason "
                                   "(named in the reply).", ["worker", "reason"]), {}),
            "replaced": (m.counter("logmesh_replaced_events_total",
                                   "Events stored with their bad bytes replaced by U+FFFD, by reason.",
                                   ["worker", "reason"]), {}),
        }
        self.worker = worker
        self.connections_total = 0
        self.batches = 0
        self.held_bytes = 0  # of the batches waiting for the ledger's look (tcp.py HELD_BYTES)
        # The connections whose acked batches wait in the store's open group, and when each
        # connection sent its last acked batch: see group_window.
        self._group: set[Any] = set()
        self._recent: dict[Any, float] = {}
        writer.on_flush.append(self._resume_all)
        writer.on_handover.append(self._resume_all)
        writer.on_handover.append(self._group.clear)

    def group_window(self, conn: Any, now: float | None = None) -> float:
        """Seconds an acked batch of ``conn`` may wait for others to join its fsync (``within``
        of SegmentWriter.durable): GROUP_WINDOW, or 0 once every connection that sent an acked
        batch in the last GROUP_EXPECTS_SECONDS has sent to this group. The shippers of a host
        send on the same ticks of the wall clock (shipping/shipper.py), so a mesh's group is
        whole when its last batch arrives: the window's timer and the loop's wake-up for it
        (0.3-0.8 ms of CPU a turn on the benches' VM, docs/benchmarks.md "eleventh part") are
        not waited for. A batch that comes later than the window, or a shipper gone quiet,
        costs what it did (the window); a group is never closed early on a part of the
        connections, so it is never split where the window alone would have kept it whole."""
        if getattr(self.writer, "fsync_mode", None) != "batch":
            return 0.0
        now = time.monotonic() if now is None else now
        recent, group = self._recent, self._group
        recent[conn] = now
        group.add(conn)
        if len(group) < len(recent):
            for other, sent in list(recent.items()):
                if other not in group:
                    if now - sent <= GROUP_EXPECTS_SECONDS:
                        return GROUP_WINDOW
                    del recent[other]  # quiet: expected no more
        return 0.0

    def _reason(self, kind: str, reason: str) -> Any:
        family, children = self._by_reason[kind]
        child = children.get(reason)
        if child is None:
            child = children[reason] = family.labels(self.worker, reason)
        return child

    @property
    def stats(self) -> dict[str, Any]:
        """The counts as numbers, read from the metrics (for tests and reports)."""
        return {"events": number(value(self.events)), "bytes": number(value(self.bytes)),
                "connections": number(value(self.connections)),
                "connections_total": self.connections_total,
                "duplicates": number(value(self.duplicates)), "batches": self.batches,
                **{kind: {r: number(value(c)) for r, c in children.items()}
                   for kind, (_, children) in self._by_reason.items()}}

    def add_metrics(self, ex: Any, labels: dict[str, str]) -> None:
        """Show these counters in ``ex`` (a logmesh.metrics.Exposition): they are in the
        registry they were made in, so that is what is shown."""
        ex.include(self.metrics)

    def count_bad(self, reason: str) -> None:
        self._reason("bad_frames", reason).inc()

    def count_replaced(self, reason: str) -> None:
        """An event stored with its bad bytes replaced (``REPLACED_LABEL`` says which reason)."""
        self._reason("replaced", reason).inc()

    def count_rejected(self, reason: str) -> None:
        """An event of an acked batch refused by name in its reply (bad frames are not answered)."""
        self._reason("rejected", reason).inc()

    def _resume_all(self) -> None:
        if self.paused and self.writer.buffered_bytes < PAUSE_BUFFER_BYTES // 2:
            for proto in self.paused:
                if proto.turn_data is not None:  # a read kept for the next turn: turns.py
                    continue  # resumes it once that is handled (read now, it grew past a turn)
                proto.paused = False
                if proto.partial_since:
                    proto.partial_since = time.monotonic()  # paused time is not the peer's fault
                if proto.transport is not None and not proto.transport.is_closing():
                    proto.transport.resume_reading()
            self.paused.clear()


