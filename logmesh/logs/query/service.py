"""The engine of one logs process and, on worker 0, the store's compaction/retention
thread; plus their counters for /metrics.

Built by logs/server.py from what it hands in (the data directory and options, the
sinks' ``hold``); the server hands the engine to the HTTP handlers (logs/http/).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ...metrics import Exposition
from ..store.catalogue import SegmentInfo
from ..store.compact import Compactor
from ..store.retention import Retention
from .engine import Engine


class QueryService:
    def __init__(self, data_dir: Path, *, worker_nice: int, compact: bool,
                 retention_ms: int | None, max_disk_bytes: int | None,
                 hold: Callable[[SegmentInfo], bool] | None = None) -> None:
        """``compact``: run the compaction thread (one per data directory: worker 0's);
        ``hold(segment)``: keep a sealed segment's NDJSON while it is True (sinks/cursor.py)."""
        self.engine = Engine(data_dir, worker_nice=worker_nice)
        self.retention = Retention(data_dir, max_age_ms=retention_ms, max_bytes=max_disk_bytes)
        self.compactor: Compactor | None = None
        if compact:
            self.compactor = Compactor(data_dir, after_pass=self.retention.run_once)
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
        c = self.compactor.stats if self.compactor is not None else None
        if c is not None:
            ex.add("logmesh_compacted_segments_total", "counter", "Segments compacted to Parquet.",
                   c["segments"], labels)
            ex.add("logmesh_compacted_events_total", "counter", "Events compacted to Parquet.",
                   c["events"], labels)
            ex.add("logmesh_compaction_seconds_total", "counter", "Time spent compacting.",
                   c["seconds"], labels)
            ex.add("logmesh_compaction_errors_total", "counter", "Failed compactions (retried).",
                   c["errors"], labels)
        r = self.retention.counters
        ex.add_many("logmesh_retention_deleted_files_total", "counter",
                    "Segment and Parquet files deleted by retention, by reason (age, disk).",
                    (({**labels, "reason": k[len("files_"):]}, v) for k, v in r.items()
                     if k.startswith("files_")))
        ex.add("logmesh_retention_deleted_bytes_total", "counter", "Bytes deleted by retention.",
               r["bytes"], labels)
        ex.add("logmesh_retention_deleted_events_total", "counter", "Events deleted by retention.",
               r["events"], labels)
        q = self.engine.counters
        ex.add("logmesh_queries_total", "counter", "DuckDB queries run for the API.", q["queries"], labels)
        ex.add("logmesh_query_seconds_total", "counter", "Time spent in DuckDB queries.",
               q["query_seconds"], labels)
        ex.add("logmesh_damaged_parquet_files_total", "counter",
               "Parquet files a query found unreadable, moved to quarantine/.", q["damaged_files"], labels)
        ex.add("logmesh_damaged_parquet_events_total", "counter",
               "Events of those files (lost to search; the bytes are kept).", q["damaged_rows"], labels)
        ex.add("logmesh_live_bytes_loaded_total", "counter",
               "NDJSON bytes loaded into the live table (segments not compacted yet).",
               q["live_bytes_loaded"], labels)
        snap = self.engine.snapshot
        ex.add("logmesh_live_segments", "gauge", "Segments not compacted yet, held in memory.",
               len(snap.live), labels)
        ex.add("logmesh_live_events", "gauge", "Events of those segments.",
               sum(s.rows for s in snap.live), labels)
        ex.add("logmesh_cold_segments", "gauge",
               "Sealed segments waiting for compaction, read from their files per query.",
               len(snap.cold), labels)
