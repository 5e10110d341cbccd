"""The engine of one logs process and its compaction thread (retention too on worker 0:
logs/server.py wires which segments each compacts); plus the engine's gauges for /metrics.

Built by logs/server.py from what it hands in (the data directory and options, the
sinks' ``hold``, its metrics registry, where the engine, compaction and retention
count); the server hands the engine to the HTTP handlers (logs/http/).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ...metrics import Exposition, Metrics
from ..store import layout
from ..store.catalogue import SegmentInfo
from ..store.compact import Compactor
from ..store.retention import Retention
from .engine import Engine


class QueryService:
    def __init__(self, data_dir: Path, *, worker_nice: int, compact: bool,
                 retention_ms: int | None, max_disk_bytes: int | None,
                 hold: Callable[[SegmentInfo], bool] | None = None,
                 metrics: Metrics | None = None, worker: str = "0",
                 block_rows: int = layout.PARQUET_ROW_GROUP_ROWS) -> None:
        """``compact``: run the compaction thread (one per worker, for its own segments), which
        writes row groups (= index blocks) of ``block_rows`` rows;
        ``hold(segment)``: keep a sealed segment's NDJSON while it is True (sinks/cursor.py);
        ``metrics``: the registry the parts count in, labelled ``worker``."""
        self.engine = Engine(data_dir, worker_nice=worker_nice, metrics=metrics, worker=worker)
        self.retention = Retention(data_dir, max_age_ms=retention_ms, max_bytes=max_disk_bytes,
                                   metrics=metrics, worker=worker)
        self.compactor: Compactor | None = None
        if compact:
            self.compactor = Compactor(data_dir, after_pass=self.retention.run_once,
                                       block_rows=block_rows, metrics=metrics, worker=worker)
            self.compactor.hold = hold

    def start(self, on_seal: list[Callable[[], None]]) -> None:
        """Start compacting; ``on_seal``: the writer's callbacks on sealing a segment."""
        if self.compactor is not None:
            on_seal.append(self.compactor.wake)
            self.compactor.start()

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self.compactor is not None:
            await loop.run_in_executor(None, self.compactor.stop)
        self.engine.close()

    def add_metrics(self, ex: Exposition, labels: dict[str, str]) -> None:
        """The gauges of the engine's last refresh (the counters are in the registry)."""
        snap = self.engine.snapshot
        ex.add("logmesh_live_segments", "gauge", "Segments not compacted yet, held in memory.",
               len(snap.live), labels)
        ex.add("logmesh_live_events", "gauge", "Events of those segments.",
               sum(s.rows for s in snap.live), labels)
        ex.add("logmesh_cold_segments", "gauge",
               "Sealed segments waiting for compaction, read from their files per query.",
               len(snap.cold), labels)
