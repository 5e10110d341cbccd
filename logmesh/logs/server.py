"""The ``logs`` service: one worker process of the log-management service.

It registers with the distributor as ``logs`` (port 9040, urls
``["POST/logs"]``), takes book log packets on TCP, NDJSON on HTTP, and
appends everything to its own segment stream. ``--workers N`` runs N of
these on the same ports (SO_REUSEPORT), each with its own stream.

Security (docs/security.md): a write token guards TCP ingest (the hello) and
``POST`` on the HTTP API, a read token every other ``/api/`` route and
``/metrics`` (``Authorization: Bearer``); ``--token`` grants both. ``/healthz``,
the UI's page and assets and the OpenAPI description stay open. Every error
is JSON; an unexpected exception answers a bare 500 and is logged here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ..guard import ACCEPT_BATCH, LISTEN_BACKLOG, ConnectionGuard, deep_listen
from ..lifecycle import Serving, freeze_startup_heap
from ..mesh.registry import RegistryLink
from ..metrics import CONTENT_TYPE, Exposition, Metrics, number, value
from ..protocol import Node
from ..security import ServerSecurity
from ..security_http import (
    BODY_TIMEOUT,
    GuardedSite,
    HttpCounters,
    bearer_middleware,
    error_middleware,
    json_error,
    runner_kwargs,
)
from .gateway_counts import GatewayCounts
from .health import NORM_WINDOW_MS, SLOW_WINDOW_MS
from .health_monitor import HealthMonitor
from .http.query_api import HEAVY_NICE, QueryAPI
from .ingest.balance import BalancedServer
from .ingest.common import Routes, too_large_error
from .ingest.connection import DRAIN_QUIET_SECONDS, DRAIN_SECONDS, drain
from .ingest.context import IngestContext
from .ingest.counting import ProtocolCounters
from .ingest.es_ids import BulkIds
from .ingest.field_limits import Folded
from .ingest.http_ndjson import event_lines, parse_body
from .ingest.http_routes import HttpSources, es_root, read_whole
from .ingest.ledger import ShipperLedger
from .ingest.sockets import SocketListeners, SocketPorts
from .ingest.tcp import LogIngestProtocol
from .malloc_tuning import keep_freed_heap
from .query.service import QueryService
from .sinks import load_sink
from .sinks.booklog import BookLog
from .sinks.cursor import unsent_by
from .sinks.report import sink_rows
from .store import catalogue, layout
from .store.catalogue import owned_by
from .store.pacing import CompactionPacing
from .store.segment import SegmentWriter, StoreUnavailable
from .store.streams import claim_worker
from .web.routes import add_routes as add_web_routes

log = logging.getLogger("logmesh.logs")

STORE_RETRY_AFTER_SECONDS = 5  # Retry-After of a 507: the disk is full or failing
# --workers N: under the data directory, the workers' metric files (logmesh/metrics.py), so
# any worker's /metrics shows them all; counters are written as they count, and each worker
# publishes its gauges computed from state (health, queue lengths, ...) this often.
PUBLISH_SECONDS = 1.0


@dataclass
class LogsConfig:
    host: str = "127.0.0.1"
    port: int = 9040
    http_port: int = 9041
    data_dir: Path = Path("data")
    distributor: tuple[str, int] | None = ("127.0.0.1", 9000)
    worker_id: int | None = None  # None: the lowest free stream of the data directory
    workers: int = 1
    fsync: str = "batch"
    fsync_interval: float = layout.DEFAULT_FSYNC_INTERVAL
    rotate: str = "hour"
    max_segment_bytes: int = layout.DEFAULT_MAX_SEGMENT_BYTES
    max_frame_bytes: int = 1024 * 1024
    max_body_bytes: int = 16 * 1024 * 1024
    text_log: Path | None = None
    echo: bool = False
    # Tokens (``token`` grants read and write and is the mesh's token for the distributor),
    # TLS on the TCP and HTTP ports, connection limits: logmesh/security.py, docs/security.md.
    security: ServerSecurity = field(default_factory=ServerSecurity)
    # Query limits, for the query engine (logmesh/logs/query/): a query runs at most
    # query_timeout seconds (then 503) and returns at most max_rows events per page.
    query_timeout: float = 10.0
    max_rows: int = 10_000
    retention_ms: int | None = None  # --retention: delete files whose newest event is older
    max_disk_bytes: int | None = None  # --max-disk: delete the oldest files past this size
    compact: bool = True  # each worker compacts its sealed segments to Parquet (store/compact.py)
    block_rows: int = layout.PARQUET_ROW_GROUP_ROWS  # --block-rows: rows per row group and index block
    # The optional socket ports (ingest/sockets.py): None is off, 0 picks a free port.
    syslog_port: int | None = None
    forward_port: int | None = None
    jsonl_port: int | None = None
    balance: bool = True  # --workers N: hand new connections to the least loaded worker
    extra: dict = field(default_factory=dict)  # options of later features (query, sinks)


# A worker's stream held by another process at start: wait this long (a worker whose
# supervisor was killed is still stopping), then refuse (store/streams.py StreamInUse).
STREAM_WAIT = 10.0

# Routes anyone may call even with tokens set: health, the UI's shell, the API's description.
OPEN_PATHS = ("/healthz", "/", "/api/v1/openapi.json")


def open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


class LogsServer(Serving):
    def __init__(self, config: LogsConfig) -> None:
        config.security.check_exposure("logs service", config.host)
        self.config = config
        self.access = access = config.security.access
        self.tls = config.security.tls
        self.limits = config.security.limits
        reuse = config.workers > 1
        self.reuse_port = reuse
        # No --worker-id: take the lowest free stream, so instances can share a data directory.
        config.worker_id, lock_fd = claim_worker(config.data_dir, config.worker_id,
                                                 wait=STREAM_WAIT)
        self.prom = Metrics(config.data_dir / layout.METRICS_DIR if config.workers > 1 else None)
        worker = str(config.worker_id)
        self.guard = ConnectionGuard("logs ingest", self.limits, access.write, metrics=self.prom,
                                     labels={"worker": worker})
        self.http_counters = HttpCounters(self.prom, {"worker": worker})  # the site's, made at start
        self.writer = SegmentWriter(config.data_dir, config.worker_id, fsync=config.fsync,
                                    fsync_interval=config.fsync_interval, rotate=config.rotate,
                                    max_segment_bytes=config.max_segment_bytes, lock_fd=lock_fd,
                                    metrics=self.prom)
        self.routes = Routes()
        self.ledger = ShipperLedger()
        self.booklog = BookLog(config.text_log, echo=config.echo, rotate=config.rotate) if (
            config.text_log or config.echo) else None
        self.ingest = IngestContext(self.writer, max_frame_bytes=config.max_frame_bytes,
                                    routes=self.routes, ledger=self.ledger,
                                    book_lines=self.booklog.write if self.booklog else None,
                                    guard=self.guard, metrics=self.prom, worker=worker)
        self.bulk_ids = BulkIds(config.data_dir)  # the bulk `_id` of every worker (opened at start)
        self.http_sources = HttpSources(self.writer, received=self.ingest.events, metrics=self.prom,
                                        worker=worker, bulk_ids=self.bulk_ids)  # OTLP, ES bulk, Loki
        self.socket_ports = SocketPorts(config.syslog_port, config.forward_port, config.jsonl_port)
        self.socket_ports.check_exposure(config.host, config.security.insecure)
        self.protocol_counters = ProtocolCounters(self.prom, worker, rejected=self.http_sources.count)
        self.http_sources.stored = self.protocol_counters.events  # by protocol, as the sockets'
        self.listeners: SocketListeners | None = None
        self.http_requests = 0
        self.discarded = self.prom.counter("logmesh_discarded_events_total",
                                           "Events rejected at HTTP ingest.", ["worker"]).labels(worker)
        self.request_seconds = self.prom.histogram(
            "logmesh_request_duration_seconds", "HTTP requests by route and status: seconds "
            "until the answer (a tail: until it ends).", ["route", "status"])
        self._timers: dict[tuple[str, int], object] = {}
        self._publisher: asyncio.Task | None = None
        # Forwarding sinks (extra["sinks"]: name -> config), each over this worker's segments only.
        self.sinks = [load_sink(name)(sink_cfg, config.data_dir, config.worker_id,
                                      head_seq=lambda: self.writer.written_seq,
                                      durable_seq=lambda: self.writer.durable_seq,
                                      metrics=self.prom)
                      for name, sink_cfg in config.extra.get("sinks", {}).items()]
        self.tcp_server: asyncio.AbstractServer | BalancedServer | None = None
        self.runner: web.AppRunner | None = None
        self.site: GuardedSite | None = None
        self.registry: RegistryLink | None = None
        # The query side, given what it reads: the engine below ingest's CPU priority
        # (http/query_api.py), a compactor per worker for its own segments (store/catalogue.py:
        # owned_by; retention after worker 0's passes alone), which keeps NDJSON until every sink
        # sent it; and where they count.
        self.query = QueryService(
            config.data_dir, worker_nice=HEAVY_NICE, compact=config.compact,
            block_rows=config.block_rows, retention_ms=config.retention_ms, max_disk_bytes=config.max_disk_bytes,
            hold=unsent_by(config.data_dir, [s.kind for s in self.sinks]) if self.sinks else None,
            metrics=self.prom, worker=worker)
        if self.query.compactor is not None:  # a sealed segment's damaged lines count as recovery's
            self.query.compactor.on_damaged = self.writer.damaged_lines.inc
            self.query.compactor.owns = owned_by(config.worker_id, config.workers)
            # its one due segment waits while this worker's ingest is busy (store/pacing.py)
            self.query.compactor.defer = CompactionPacing(
                lambda: self.writer.appended_count, lambda: self.writer.last_sealed,
                self.query.compactor.grace)
            if config.worker_id:
                self.query.compactor.after_pass = None  # retention: worker 0's, once for the store
        # Health per instance (logs/health.py): every worker judges; worker 0 asks the store for
        # the gateway's timeouts and, in a mesh, stores the changes of state.
        first = config.worker_id == 0
        counts = None  # the gateway's answers counted as stored (logs/gateway_counts.py)
        if first and config.workers == 1:  # a worker's writer sees only its own events
            counts = GatewayCounts(SLOW_WINDOW_MS, NORM_WINDOW_MS)
            self.writer.observer = counts.add
        self.instance_health = HealthMonitor(counts=counts,
            heard=self.ledger.health, nodes=self.mesh_nodes, left=self.mesh_left,
            worker=config.worker_id,
            writer=self.writer if first and config.distributor is not None else None,
            engine=self.query.engine if first else None,
            shared=config.data_dir / layout.HEALTH_DIR if config.workers > 1 else None)
        self.api = QueryAPI(self.query.engine, access=access, writer_stats=lambda: self.writer.stats,
                            ledger_summary=self.ledger.summary, mesh_nodes=self.mesh_nodes,
                            mesh_instances=self.instance_health.instances, sinks=self.sink_rows,
                            query_timeout=config.query_timeout, max_rows=config.max_rows,
                            metrics=self.prom, worker=worker)
        self.app = self.make_app()

    def sink_rows(self) -> list[dict]:
        """Every worker's sinks: lag and counts (sinks/report.py), this worker's as of now."""
        if not self.sinks:
            return []
        self.publish()
        return sink_rows(self.prom)

    def mesh_nodes(self) -> list[Node]:
        """The nodes the distributor last announced (none before it answers)."""
        return self.registry.parsed if self.registry is not None else []

    def mesh_left(self) -> set[tuple[str, int]]:
        """The (host, port) of the nodes the distributor's last list says stopped cleanly."""
        return self.registry.left if self.registry is not None else set()

    # -- HTTP -----------------------------------------------------------------
    def make_app(self) -> web.Application:
        bearer = bearer_middleware(self.access, open_paths=open_path,
                                   bad_requests=self.http_counters.bad_requests)
        app = web.Application(client_max_size=self.config.max_body_bytes, middlewares=[
            self.timed, error_middleware(log), bearer, es_root])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/api/v1/logs", self.post_logs)
        self.http_sources.add_routes(app)
        self.api.add_routes(app)  # search, histogram, top, tail, ... (http/query_api.py)
        add_web_routes(app)  # the UI at / and /static/ (logs/web/routes.py)
        return app

    @web.middleware
    async def timed(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """``logmesh_request_duration_seconds{route,status}``: one observation per request."""
        t0 = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = f"{request.method} {resource.canonical}" if resource is not None else "other"
            timer = self._timers.get((route, status))
            if timer is None:
                timer = self._timers[(route, status)] = self.request_seconds.labels(route, str(status))
            timer.observe(time.perf_counter() - t0)  # type: ignore[attr-defined]

    @property
    def http_stats(self) -> dict[str, int]:
        return {"requests": self.http_requests, "rejected_lines": number(value(self.discarded))}

    def health(self) -> tuple[list[str], list[str]]:
        """(problems, warnings): a problem means events cannot be stored now or a part died.

        A sink that cannot reach its cluster is a warning: the events are
        safe on local disk and go out when it answers again.
        """
        problems, warnings = [], []
        writer = self.writer
        if writer.failure is not None:
            problems.append(writer.failure)
        if writer.stopped:
            problems.append("the store's flusher stopped")
        compactor = self.query.compactor
        if compactor is not None:
            if compactor.started and not compactor.alive:
                problems.append("the compaction thread stopped")
            elif compactor.failure is not None:
                warnings.append(compactor.failure)
        for sink in self.sinks:
            if sink.stopped:
                problems.append(f"sink {sink.name} stopped")
            elif sink.status.startswith("retrying"):
                warnings.append(f"sink {sink.name}: {sink.status}")
        return problems, warnings

    async def healthz(self, request: web.Request) -> web.Response:
        problems, warnings = self.health()
        body = {"ok": not problems, "worker": self.config.worker_id,
                "durable_seq": self.writer.durable_seq, "problems": problems, "warnings": warnings}
        return web.json_response(body, status=503 if problems else 200)

    def _store_unavailable(self, reason: str) -> web.Response:
        """507 at once while the disk refuses writes: nothing of the request was stored."""
        resp = json_error(f"not stored, retry later: {reason}", 507, accepted=0)
        resp.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
        return resp

    async def post_logs(self, request: web.Request) -> web.Response:
        self.http_requests += 1
        try:
            async with asyncio.timeout(BODY_TIMEOUT):  # a slow body must not hold the slot
                body = await read_whole(request)
        except TimeoutError:
            return json_error(f"the body took more than {BODY_TIMEOUT:.0f}s to arrive", 408)
        lines, errors = parse_body(body)
        if errors:
            self.discarded.inc(len(errors))
            self.http_sources.count("ndjson", Counter(e["reason"] for e in errors))
        if not lines:
            return json_error(errors[0]["error"] if errors else "empty body: send NDJSON or a JSON array",
                              400, accepted=0, rejected=len(errors), errors=errors[:20])
        if self.writer.failure is not None:
            return self._store_unavailable(self.writer.failure)
        last, refused = self.writer.append_fitting(lines)
        if refused:  # lines longer than the store takes (layout.MAX_LINE_BYTES): none appended
            self.discarded.inc(len(refused))
            self.http_sources.count("ndjson", {"too_large": len(refused)})
            numbers = event_lines(body, errors, [i for i, _ in refused])
            errors = sorted(errors + [too_large_error(no, size) for no, (_, size) in zip(numbers, refused,
                                                                                          strict=True)],
                            key=lambda e: e["line"])
            skip = {i for i, _ in refused}
            lines = [ev for i, ev in enumerate(lines) if i not in skip]
            if not lines:
                return json_error(errors[0]["error"], 413, accepted=0, rejected=len(errors),
                                  errors=errors[:20])
        try:  # answered once stored: a 200 means it is on disk
            await self.writer.durable(last, on_failure="withdraw", first=lines[0].seq)
        except StoreUnavailable as exc:
            return self._store_unavailable(str(exc))
        self.ingest.events.inc(len(lines))
        return web.json_response({"accepted": len(lines), "rejected": len(errors), "errors": errors[:20]})

    def published(self) -> Exposition:
        """This worker's gauges computed from state now (its counts are in its metrics)."""
        ex = Exposition()
        w = {"worker": str(self.config.worker_id)}
        ex.add("logmesh_store_writable", "gauge", "1 while the store can write, 0 while it fails.",
               0 if self.writer.failure else 1, w)
        problems, _ = self.health()
        ex.add("logmesh_healthy", "gauge", "1 when /healthz answers 200.", 0 if problems else 1, w)
        ex.add("logmesh_folded_events_total", "counter", "Events whose labels past the limits were "
               "folded into logmesh.folded (ingest/field_limits.py).", Folded.events, w)
        ex.add("logmesh_folded_fields_total", "counter", "Labels folded into logmesh.folded.",
               Folded.fields, w)
        for sink in self.sinks:
            sink.add_metrics(ex, w)
        self.query.add_metrics(ex, w)
        self.api.add_metrics(ex, w)
        return ex

    def publish(self) -> None:
        self.prom.publish(self.published())

    async def _publish_every(self, seconds: float) -> None:
        """--workers N: a sibling's scrape reads this worker's files, not this worker."""
        while True:
            await asyncio.sleep(seconds)
            try:
                self.publish()
            except Exception:
                log.exception("publishing metrics failed")

    def exposition(self) -> Exposition:
        """What /metrics shows: every worker's metrics, and the data directory's numbers."""
        self.publish()
        ex = Exposition()
        ex.include(self.prom)
        q_files, q_bytes = catalogue.quarantined(self.config.data_dir)
        ex.add("logmesh_quarantine_files", "gauge", "Files in the data directory's quarantine/.", q_files)
        ex.add("logmesh_quarantine_bytes", "gauge", "Bytes in the data directory's quarantine/.", q_bytes)
        disk = catalogue.usage(self.config.data_dir)  # the files the store reads, not their indexes
        ex.add("logmesh_segments", "gauge", "Segment and Parquet files in the data directory.", disk.files)
        ex.add("logmesh_disk_bytes", "gauge", "Bytes of segments and Parquet files.", disk.data_bytes)
        return ex

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exposition().render().encode(),
                            headers={"Content-Type": CONTENT_TYPE})

    # -- lifecycle ------------------------------------------------------------
    async def serve_tcp(self, make: Any, port: int,
                        server_ssl: Any) -> asyncio.AbstractServer | BalancedServer:
        """One TCP ingest port behind the guard; with --workers N, shared by the workers and,
        unless --no-balance, its connections evened out across them (ingest/balance.py)."""
        cfg = self.config
        factory = self.guard.factory(make)
        timeout = self.limits.header_timeout if server_ssl else None
        if self.reuse_port and cfg.balance:
            server = BalancedServer(factory, cfg.host, port, data_dir=cfg.data_dir,
                                    worker=cfg.worker_id or 0, workers=cfg.workers,
                                    load=lambda: len(self.guard.conns), backlog=LISTEN_BACKLOG,
                                    ssl_context=server_ssl, ssl_handshake_timeout=timeout)
            await server.start()
            return server
        server = await asyncio.get_running_loop().create_server(
            factory, cfg.host, port, reuse_port=self.reuse_port or None, ssl=server_ssl,
            backlog=ACCEPT_BATCH, ssl_handshake_timeout=timeout)
        deep_listen(server)
        return server

    async def start(self) -> None:
        cfg = self.config
        self.writer.open()
        known = self.ledger.rebuild(cfg.data_dir, worker=cfg.worker_id)
        self.bulk_ids.open()  # after the writer's recovery: a claim left open is judged by the store
        if known:
            log.info("re-read %d event id(s) of %d shipper instance(s) for de-duplication",
                     known, len(self.ledger.instances))
        self.writer.start()
        if self.prom.multiprocess:  # the gauges of now: on the siblings' pages from the start
            self.publish()
            self._publisher = asyncio.ensure_future(self._publish_every(PUBLISH_SECONDS))
        self.query.start(self.writer.on_seal)  # compaction (and worker 0's retention) in a thread
        for sink in self.sinks:  # they read what the writer wrote; ingest never waits for them
            self.writer.on_flush.append(sink.notify)
            sink.start()
        server_ssl = self.tls.server_context()
        self.tcp_server = await self.serve_tcp(lambda: LogIngestProtocol(self.ingest), cfg.port,
                                               server_ssl)
        cfg.port = self.tcp_server.sockets[0].getsockname()[1]
        if self.socket_ports.any:  # syslog, Fluent forward, JSON lines (ingest/sockets.py)
            self.listeners = SocketListeners(self.ingest, self.protocol_counters, self.socket_ports,
                                             host=cfg.host, reuse_port=self.reuse_port,
                                             serve_tcp=lambda make, port: self.serve_tcp(
                                                 make, port, server_ssl))
            await self.listeners.start()
            log.info("logs worker %d: %s", cfg.worker_id, ", ".join(
                f"{name} {cfg.host}:{port}" for name, port in self.listeners.bound.items()))
        self.guard.start()
        # bodies as sent: ingest/http_routes.read_whole undoes gzip and refuses one cut short,
        # which aiohttp's own decoding let through (ingest/content_coding.py)
        self.runner = web.AppRunner(self.app, access_log=None, auto_decompress=False,
                                    **runner_kwargs(self.limits))
        await self.runner.setup()
        self.site = GuardedSite(self.runner, cfg.host, cfg.http_port, limits=self.limits,
                                counters=self.http_counters, ssl_context=server_ssl,
                                reuse_port=self.reuse_port or None)
        await self.site.start()
        cfg.http_port = self.site.port
        log.info("logs worker %d: TCP %s:%d, HTTP %s://%s:%d, data in %s", cfg.worker_id,
                 cfg.host, cfg.port, "https" if server_ssl else "http", cfg.host, cfg.http_port,
                 cfg.data_dir)
        if not self.access.write or not self.access.read:
            log.info("logs worker %d: open mode for %s (no token): fine on loopback", cfg.worker_id,
                     " and ".join(side for side, t in (("writes", self.access.write),
                                                       ("reads", self.access.read)) if not t))
        if cfg.distributor is not None:  # every worker registers: each needs the route table
            self.registry = RegistryLink(*cfg.distributor, name="logs", node_port=lambda: cfg.port,
                                         urls=lambda: ["POST/logs"], token=cfg.security.token,
                                         ssl=self.tls.client_context())
            self.registry.listeners.append(self.routes.update)
            self.registry.start()
        self.instance_health.start()

    async def serve_forever(self) -> None:
        """Serving's, with the heap of startup frozen once it has started and malloc told to
        keep the buffers ingest frees (malloc_tuning.py)."""
        keep_freed_heap()
        await self.start()
        freeze_startup_heap()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        # 1. stop accepting; 2. leave the registry; 3. flush, fsync and seal the store.
        self.guard.close()
        if self.tcp_server is not None:
            self.tcp_server.close()
        if self.listeners is not None:
            self.listeners.close()
        # 1b. the book's packets, syslog and JSON lines have no acks: read their senders to
        # their end first (not while the disk refuses writes: the store's own close needs the
        # time then)
        if self.writer.failure is None:
            drained, cut = await drain(self.guard.conns)
            if drained or cut:
                log.info("logs worker %d: %d book/syslog/JSON-lines connection(s) read to "
                         "their end, %d still sending cut (quiet %.1f s or %.0f s passed)",
                         self.config.worker_id, drained, cut, DRAIN_QUIET_SECONDS,
                         DRAIN_SECONDS)
        if self.registry is not None:
            await self.registry.close()
        await self.instance_health.close()
        await self.api.close()  # end live tails
        if self.runner is not None:
            await self.runner.cleanup()
        await self.writer.close()
        self.bulk_ids.close()
        await self.query.stop()
        for sink in self.sinks:  # 4. sinks finish the bulk in flight; the rest goes next start
            await sink.close()
        if self.booklog is not None:
            self.booklog.close()
        if self._publisher is not None:
            self._publisher.cancel()
        self.publish()  # the last numbers stay in the files for the siblings' scrapes
        self.prom.close()
        log.info("logs worker %d stopped; %d event(s) stored", self.config.worker_id,
                 self.writer.stats["events"])

