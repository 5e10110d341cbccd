"""The query side of one logs process: engine + API routes, and on worker 0 the
compaction/retention thread; plus their counters for /metrics.

Kept apart from server.py so the server only calls ``add_routes``, ``start``,
``close_streams``, ``stop`` and ``add_metrics``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from ...metrics import Exposition
from ..store.compact import Compactor
from ..store.retention import Retention
from .api import HEAVY_NICE, QueryAPI
from .engine import Engine

if TYPE_CHECKING:
    from ..server import LogsServer


class QueryService:
    def __init__(self, server: LogsServer) -> None:
        cfg = server.config
        self.server = server
        self.engine = Engine(cfg.data_dir, worker_nice=HEAVY_NICE)  # below ingest (api.py)
        self.api = QueryAPI(server, self.engine)
        self.retention = Retention(cfg.data_dir, max_age_ms=cfg.retention_ms, max_bytes=cfg.max_disk_bytes)
        self.compactor: Compactor | None = None
        if cfg.worker_id == 0 and cfg.compact:  # one compactor per data directory: worker 0's
            self.compactor = Compactor(cfg.data_dir, after_pass=self.retention.run_once)

    def add_routes(self, app: web.Application) -> None:
        self.api.add_routes(app)

    def start(self) -> None:
        if self.compactor is not None:
            self.server.writer.on_seal.append(self.compactor.wake)
            self.compactor.start()

    async def close_streams(self) -> None:
        """End live tails, so the HTTP server's shutdown does not wait on them."""
        await self.api.close()

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
        ex.add("logmesh_tail_streams", "gauge", "Open /api/v1/tail streams.", self.api.tails, labels)
        ex.add("logmesh_api_bad_requests_total", "counter", "Query API requests answered 400.",
               self.api.counters["bad_requests"], labels)
        slots = self.api.slots
        ex.add("logmesh_query_timeouts_total", "counter",
               "Queries answered 503 past --query-timeout (waiting included).",
               self.api.counters["timeouts"], labels)
        ex.add_many("logmesh_query_refused_total", "counter",
                    "Queries refused with 429 or 503 before they ran, by reason.",
                    (({**labels, "reason": r}, slots.counters[f"refused_{r}"])
                     for r in ("client", "waiting")))
        ex.add("logmesh_query_wait_seconds_total", "counter",
               "Time queries waited for a query thread.", slots.counters["wait_seconds"], labels)
        ex.add("logmesh_queries_running", "gauge", "Queries on a query thread now.",
               slots.threads - slots.free, labels)
        ex.add("logmesh_queries_waiting", "gauge", "Queries waiting for a query thread.",
               len(slots.queue), labels)
