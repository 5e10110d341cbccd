"""When compaction waits: while ingest is busy and its backlog is one segment.

Compaction costs about what ingest does per event (~3.5 CPU s per million against ~2.2,
docs/benchmarks.md) and runs on the same cores as the services a logs node serves. In a
mesh under load the first sealed segment was compacted in the middle of the traffic: the
logs service spent 19-43 µs per request in those seconds against 9-12 without
(docs/benchmarks.md, "Shipping's cost, the logs service's side"). Log stores merge in the
background for that reason and let a small backlog wait (VictoriaLogs' and ClickHouse's
parts, Loki's compactor on its own schedule); here a worker's compactor leaves its due
segment while the worker's writer takes at least :data:`BUSY_EVENTS_PER_SECOND`, and only:

* while that segment is the only one due and the last one the writer sealed (another sealed
  after it: the backlog is no longer small, and compaction goes on at once as before; at
  issue 18's 300k events/s a segment seals well within the 5 s grace of the one before, so
  nothing waits there), and
* for at most :data:`WAIT_SECONDS` after it became due (then it is compacted whatever the
  traffic: a mesh busy for longer pays compaction as before).

It moves compaction's CPU out of the busy seconds; it does not lower it. Nothing of
durability changes: a segment waiting here is sealed, fsynced and read by queries as any
other NDJSON segment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from . import layout
from .catalogue import SegmentInfo

BUSY_EVENTS_PER_SECOND = 1_000  # a writer taking this many a second is serving traffic
WAIT_SECONDS = 30.0  # the longest a due segment waits for the traffic to end
MIN_SAMPLE_SECONDS = 0.5  # a rate over less than this is not judged: the last one holds


class CompactionPacing:
    """The compactor's ``defer``: True while the due segments may wait (see above).

    ``appended``: how many events the writer has taken so far (``SegmentWriter.appended_count``),
    ``newest``: the segment it sealed last (``last_sealed``), both read from the compactor's
    thread; ``grace``: the compactor's, after which a sealed segment is due.
    """

    def __init__(self, appended: Callable[[], int], newest: Callable[[], Path | None],
                 grace: float, *,
                 busy_rate: float = BUSY_EVENTS_PER_SECOND, wait: float = WAIT_SECONDS,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.appended = appended
        self.newest = newest
        self.grace = grace
        self.busy_rate = busy_rate
        self.wait = wait
        self.clock = clock
        self.monotonic = monotonic
        self._seen = (monotonic(), appended())  # (when, count) the rate is measured from
        self.rate = 0.0  # events a second over the last sample
        self.waited = 0  # passes that left a due segment for later (not metrics; a test reads it)

    def __call__(self, due: list[SegmentInfo]) -> bool:
        busy = self._busy()
        if len(due) != 1 or not busy:
            return False
        newest = self.newest()
        if newest is None or newest.name != due[0].path.name:
            return False  # another segment sealed after it: compacted with the next ones
        try:  # sealed when its index was written: the compactor counts its grace from there
            sealed = due[0].path.with_name(layout.index_name(due[0].path.name)).stat().st_mtime
        except OSError:
            return False
        if self.clock() - sealed - self.grace >= self.wait:
            return False
        self.waited += 1
        return True

    def _busy(self) -> bool:
        """The writer's rate since the last sample (at least MIN_SAMPLE_SECONDS ago)."""
        now, count = self.monotonic(), self.appended()
        then, before = self._seen
        if now - then >= MIN_SAMPLE_SECONDS:
            self.rate = (count - before) / (now - then)
            self._seen = (now, count)
        return self.rate >= self.busy_rate
