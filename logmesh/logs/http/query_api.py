"""The query API's handlers (docs/api.md): /api/v1/search, histogram, top, fields, tail,
events/{seq}, mesh, routes (and routes/series), stats and openapi.json; it registers
export (http/export.py) and saved-searches (http/saved_searches.py) too.

Each handler reads and checks its parameters (http/params.py: a bad one is a 400 whose
message says what to send instead), then runs the engine in a thread pool so DuckDB
never blocks the event loop that also takes ingest.

Search, histogram, top, tail and routes also take ``POST`` with the same parameters as a
JSON object in the body: a query up to MAX_QUERY_CHARS (http/params.py) does not fit
the request line (aiohttp stops at 8,190 bytes). They stay reads: the body is never
stored, and the handler itself requires a read token (``read_token_refused``),
whatever the method-based auth middleware let through.

Every engine call goes through :meth:`QueryAPI.call`: a slot of the admission
(http/slots.py, the query limits) first, within the query's deadline, then one of
QUERY_THREADS threads (heavy queries: their own, niced). The live tail is
http/tail.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ... import metrics as prom
from ...metrics import Exposition, Metrics, number
from ...protocol import Node
from ...security import Access, bearer_token, token_matches
from ...security_http import json_error, json_response
from ..query import red
from ..query.engine import NONE, OTHER, Engine, QueryError, QueryTimeout, lower_priority
from ..query.execution import cut_event
from ..query.field_check import FieldCheck
from ..query.timerange import now_ms
from ..store.catalogue import quarantined
from ..store.duck import duckdb
from .export import Export
from .openapi import OPENAPI, query_names
from .params import (
    DEADLINE,
    HEAVY,
    MAX_QUERY_BODY_BYTES,
    PARAMS,
    BadRequest,
    PayloadTooLarge,
    check_names,
    describe,
    int_param,
    interval_param,
    order_param,
    parameters,
    query_param,
    range_param,
    read_post_params,
)
from .saved_searches import SavedSearchAPI
from .slots import CLIENT_QUERIES, CLIENT_THREADS, Busy, QuerySlots
from .tail import LiveTail

log = logging.getLogger("logmesh.logs.api")

MAX_SEARCH_LIMIT = 10_000
MAX_TOP_LIMIT = 1_000
MAX_CONTEXT = 1_000
# Services per /mesh and /stats answer, the busiest (``services_left_off``: how many more): a
# flood of distinct service names (a request id logged as the name) made them whole, 200,000
# names a 13.7 MB /mesh answer in 4.8 s and `logmesh stats` 200,000 lines (found from outside)
MAX_SERVICES = 1_000
QUERY_THREADS = 4
RETRY_AFTER_SECONDS = 1
# Heavy queries (http/slots.py) run at a lower CPU priority (nice) than ingest and normal
# queries, as do DuckDB's own worker threads (Engine(worker_nice=...)): on a busy machine they
# wait for CPU instead of ingest and the others. (Normal queries at nice 5 too lost more to
# other processes than they gained: bench/query_starvation.py.)
HEAVY_NICE = 10


class QueryAPI:
    """Routes /api/v1/* queries of one logs process onto its engine.

    It is handed what it reads, by logs/server.py: the engine, the service's
    ``access`` (tokens), and callables for the writer's counters, the loss
    ledger's summary, the mesh's nodes (known once the registry answers) and the health of
    its instances (logs/health_monitor.py's table).
    """

    def __init__(self, engine: Engine, *, access: Access,
                 writer_stats: Callable[[], Mapping[str, int]],
                 ledger_summary: Callable[[], list[dict]],
                 mesh_nodes: Callable[[], list[Node]],
                 mesh_instances: Callable[[], list[dict]] = list,
                 sinks: Callable[[], list[dict]] = list,
                 query_timeout: float | None = None, max_rows: int = MAX_SEARCH_LIMIT,
                 client_threads: int = CLIENT_THREADS, client_queries: int = CLIENT_QUERIES,
                 clock: Callable[[], float] = time.time, metrics: Metrics | None = None,
                 worker: str = "0") -> None:
        """``metrics``: the registry its counters go to (the server's); ``worker``: their label."""
        self.engine = engine
        self.field_check = FieldCheck(engine)  # warnings about fields no event has
        self.access = access
        self.writer_stats = writer_stats
        self.ledger_summary = ledger_summary
        self.mesh_nodes = mesh_nodes
        self.mesh_instances = mesh_instances  # health per instance (logs/health.py), now
        self.sinks = sinks  # each forwarding sink's lag and counts (sinks/report.py)
        self.clock = clock
        # Slots (http/slots.py) hand out at most QUERY_THREADS jobs, heavy ones at most
        # QUERY_THREADS - 1: neither pool ever queues.
        self.pool = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="query")
        self.heavy_pool = ThreadPoolExecutor(max(1, QUERY_THREADS - 1), thread_name_prefix="query-heavy",
                                             initializer=lower_priority, initargs=(HEAVY_NICE,))
        self.timeout = float(query_timeout or 0) or None  # seconds, then 503
        m = metrics or Metrics()
        self.live_tail = LiveTail(engine, self.call, clock=clock, timeout=self.timeout, metrics=m,
                                  worker=worker)
        self.bad_requests = m.counter("logmesh_api_bad_requests_total",
                                      "Query API requests answered 400.", ["worker"]).labels(worker)
        self.timeouts = m.counter("logmesh_query_timeouts_total",
                                  "Queries answered 503 past --query-timeout (waiting included).",
                                  ["worker"]).labels(worker)
        self.requests = 0
        self.max_rows = int(max_rows or MAX_SEARCH_LIMIT)  # events per page
        self.slots = QuerySlots(QUERY_THREADS, int(client_threads or CLIENT_THREADS),
                                int(client_queries or CLIENT_QUERIES), metrics=m, worker=worker)

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        for path, handler in (("/api/v1/search", self.search), ("/api/v1/histogram", self.histogram),
                              ("/api/v1/top", self.top), ("/api/v1/tail", self.live_tail.handle),
                              ("/api/v1/routes", self.routes), ("/api/v1/routes/series", self.route_series)):
            r.add_get(path, self.wrap(handler, path))
            r.add_post(path, self.wrap(handler, path, post=True))
        r.add_get("/api/v1/fields", self.wrap(self.fields, "/api/v1/fields"))
        r.add_get("/api/v1/events/{seq}", self.wrap(self.event, "/api/v1/events/{seq}"))
        r.add_get("/api/v1/mesh", self.wrap(self.mesh, "/api/v1/mesh"))
        r.add_get("/api/v1/stats", self.wrap(self.stats, "/api/v1/stats"))
        r.add_get("/api/v1/openapi.json", self.openapi)
        # the web UI's saved searches (GET reads; POST and DELETE need a write token) and export
        saved = SavedSearchAPI(self.engine.data_dir, self.clock)
        r.add_get("/api/v1/saved-searches", self.wrap(saved.list, "/api/v1/saved-searches"))
        r.add_post("/api/v1/saved-searches", self.wrap(saved.save, "/api/v1/saved-searches", method="post"))
        r.add_delete("/api/v1/saved-searches/{id}", self.wrap(saved.delete, "/api/v1/saved-searches/{id}",
                                                              method="delete"))
        r.add_get("/api/v1/export", self.wrap(Export(self, self.clock).handle, "/api/v1/export"))

    def wrap(self, handler: Callable[[web.Request], Any], path: str, *, post: bool = False,
             method: str = "get") -> Callable[[web.Request], Any]:
        """``handler`` with the API's answers to errors; ``path`` (as openapi.py names it) and
        ``method`` say which parameters it takes (a POST of a read route: the GET's, in its body)."""
        accepted = query_names(path, method)

        async def run(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            try:
                if post:
                    refused = self.read_token_refused(request)
                    if refused is not None:
                        return refused
                    request[PARAMS] = await read_post_params(request)
                check_names(request, path, accepted)
                return await handler(request)
            except BadRequest as exc:
                self.bad_requests.inc()
                return json_error(exc.message, 400, **exc.extra)
            except QueryError as exc:
                self.bad_requests.inc()
                return json_error(str(exc), 400)
            except PayloadTooLarge:
                return json_error(f"the body is over {MAX_QUERY_BODY_BYTES} bytes: send only the "
                                      "parameters, as a JSON object", 413)
            except Busy as exc:
                resp = json_error(exc.message, exc.status)
                resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return resp
            except QueryTimeout:
                self.timeouts.inc()
                resp = json_error(f"the query took longer than {self.timeout:g}s (--query-timeout, "
                                      "counted from its arrival) and was stopped: narrow the time "
                                      "range or the query", 503)
                resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return resp
            except duckdb.Error:
                log.exception("query failed: %s %s", request.method, request.path_qs[:500])
                # The engine's message can quote SQL and paths: it stays in our log (#9).
                return json_error("the query failed inside the engine; the details are in "
                                      "the logs service's own log", 500)
        run.reads_only = post  # type: ignore[attr-defined]  # for an auth middleware: a POST that only reads
        return run

    def read_token_refused(self, request: web.Request) -> web.Response | None:
        """A POST on a read route needs a read token, whatever the method-based middleware let
        through (it lets a write token pass for POST): a shipper's token must not read logs."""
        access = self.access
        if not access.read:
            return None
        token = bearer_token(request.headers.get("Authorization"))
        if access.may_read(token):
            return None
        if token is not None:
            return json_error("this token may not read; use a read token (--read-token or "
                                  "--token): POST here only carries a long query", 403)
        resp = json_error("authentication required (no token was sent): send 'Authorization: "
                              "Bearer <token>' with a read token (--token or --read-token)", 401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="logmesh"'
        return resp

    def client_of(self, request: web.Request) -> str:
        """Who a query counts against: the read token it carries when the service checks
        tokens (a client cannot make up more of those), else the peer's address."""
        access = self.access
        if access.read:
            token = bearer_token(request.headers.get("Authorization"))
            if token is not None and token_matches(token, access.read):
                return "token " + hashlib.sha256(token.encode()).hexdigest()[:16]
        return f"address {request.remote}"

    async def call(self, request: web.Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in the query pool once a slot is free (QuerySlots), within the
        request's deadline; retried once in the same slot if retention removed a file."""
        deadline = request.get(DEADLINE)
        if deadline is None and self.timeout:
            deadline = request[DEADLINE] = time.monotonic() + self.timeout
        client, heavy = self.client_of(request), bool(request.get(HEAVY))
        self.slots.enter(client)
        try:
            await self.slots.acquire(client, heavy, deadline)
            return await self._submit(client, heavy, deadline, fn, *args, **kwargs)
        finally:
            self.slots.leave(client)

    async def _submit(self, client: str, heavy: bool, deadline: float | None,
                      fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        engine = self.engine

        def job() -> Any:
            try:
                return engine.with_deadline(deadline, fn, *args, load_new=not heavy, **kwargs)
            except duckdb.IOException:
                engine.refresh()
                return engine.with_deadline(deadline, fn, *args, load_new=not heavy, **kwargs)

        loop = asyncio.get_running_loop()

        def done(_: Any) -> None:  # the slot is free once the thread is, not when we stop waiting
            try:
                loop.call_soon_threadsafe(self.slots.release, client, heavy)
            except RuntimeError:  # the loop is closed: shutting down
                pass

        try:
            if heavy:  # its thread is niced: new lines are loaded here, at the normal priority
                # (a normal thread is idle: the slots give heavy queries all threads but one),
                # waited for until the deadline at most (then the job answers 503 at once)
                pre = loop.run_in_executor(self.pool, engine.refresh, 0.05)
                pre.add_done_callback(lambda f: f.cancelled() or f.exception())
                try:
                    await asyncio.wait_for(asyncio.shield(pre), None if deadline is None
                                           else max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    pass
            cf = (self.heavy_pool if heavy else self.pool).submit(job)
        except BaseException as exc:  # no job started: the slot goes back now
            self.slots.release(client, heavy)
            if isinstance(exc, RuntimeError):  # a pool is shut down
                raise Busy("the logs service is shutting down", 503) from None
            raise
        cf.add_done_callback(done)
        return await asyncio.wrap_future(cf)

    # -- handlers -----------------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        node = query_param(request)
        start, end = range_param(request, self.clock)
        limit = int_param(request, "limit", 100, 1, self.max_rows)
        order = order_param(request)
        cursor = parameters(request).get("cursor") or None
        brief = int_param(request, "brief", 0, 0, 1) == 1
        now = now_ms(self.clock)
        (events, nxt), warnings = await self.call(
            request, self.checked, node, start, end, None, self.engine.search, node, start, end,
            limit=limit, order=order, cursor=cursor, now=now)
        if brief:  # the list's rows: texts cut (execution.cut_event); a row opens whole
            events = list(map(cut_event, events))
        return json_response({"events": events, "next_cursor": nxt,
                              "took_ms": round((time.perf_counter() - t0) * 1000, 1),
                              "query": describe(node), "warnings": warnings})

    async def histogram(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        node = query_param(request)
        start, end = range_param(request, self.clock)
        interval = interval_param(request)
        by = parameters(request).get("by") or None
        result, warnings = await self.call(request, self.checked, node, start, end, by,
                                           self.engine.histogram, node, start, end, interval=interval,
                                           by=by, now=now_ms(self.clock))
        result["warnings"] = warnings
        if by is not None:  # named here so a client never hard-codes them
            result["sentinels"] = {"none": NONE, "other": OTHER}
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def top(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        field_name = parameters(request).get("field")
        if not field_name:
            raise BadRequest("field is required: the field whose values to count, e.g. field=url.path")
        node = query_param(request)
        start, end = range_param(request, self.clock)
        limit = int_param(request, "limit", 10, 1, MAX_TOP_LIMIT)
        result, warnings = await self.call(request, self.checked, node, start, end, field_name,
                                           self.engine.top, node, start, end, field_name, limit=limit,
                                           now=now_ms(self.clock))
        result["warnings"] = warnings
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    def checked(self, node: Any, start: int, end: int, field_name: str | None,
                fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
        """``fn``'s answer, and the warnings about the fields ``node`` (and ``field_name``, a
        top's field or a histogram's by) names that no event in the range has (one thread)."""
        return fn(*args, **kwargs), self.field_check.warnings(node, start, end, also=(field_name,))

    async def routes(self, request: web.Request) -> web.Response:
        """RED per route and per service (query/red.py)."""
        t0 = time.perf_counter()
        node = query_param(request)
        start, end = range_param(request, self.clock)
        limit = int_param(request, "limit", 100, 1, red.MAX_ROUTES)
        result = await self.call(request, red.routes, self.engine, node, start, end, limit=limit,
                                 now=now_ms(self.clock))
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def route_series(self, request: web.Request) -> web.Response:
        """Per route and time bucket: requests, errors, p95 (query/red.py)."""
        t0 = time.perf_counter()
        node = query_param(request)
        start, end = range_param(request, self.clock)
        limit = int_param(request, "limit", 100, 1, red.MAX_ROUTES)
        interval = interval_param(request)
        result = await self.call(request, red.series, self.engine, node, start, end, interval=interval,
                                 limit=limit, now=now_ms(self.clock))
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def fields(self, request: web.Request) -> web.Response:
        node = query_param(request)  # the labels/params keys of the events it matches
        start, end = range_param(request, self.clock)
        return json_response({"fields": await self.call(request, self.engine.fields, start, end,
                                                        node, now_ms(self.clock))})

    async def event(self, request: web.Request) -> web.Response:
        raw = request.match_info["seq"]
        try:
            seq = int(raw)
        except ValueError:
            raise BadRequest(f"seq must be an event's seq (a whole number), got {raw[:40]!r}") from None
        if not 0 <= seq < 2**63:
            raise BadRequest(f"seq must be from 0 to {2**63 - 1}")
        context = int_param(request, "context", 10, 0, MAX_CONTEXT)
        brief = int_param(request, "brief", 0, 0, 1) == 1
        result = await self.call(request, self.engine.event, seq, context, brief=brief)
        if result is None:
            return json_error(f"no event with seq {seq} (never stored, or removed by retention)", 404)
        return json_response(result)

    async def mesh(self, request: web.Request) -> web.Response:
        start, end = range_param(request, self.clock)
        counts = await self.call(request, self.engine.service_counts, start, end)
        seconds = max((end - start) / 1000, 0.001)
        nodes = []
        for node in self.mesh_nodes():
            c = counts.get(node.name, {})
            nodes.append({"name": node.name, "host": node.host, "port": node.port,
                          "urls": list(node.urls),
                          "requests": c.get("requests", 0),
                          "rate_per_s": round(c.get("requests", 0) / seconds, 3),
                          "errors": c.get("errors", 0)})
        busiest = sorted(counts.items(), key=lambda kv: (-kv[1]["events"], kv[0]))[:MAX_SERVICES]
        services = {name: {**c, "rate_per_s": round(c["requests"] / seconds, 3)}
                    for name, c in sorted(busiest)}
        return json_response({"nodes": nodes, "services": services,
                              "services_left_off": len(counts) - len(services),
                              "instances": self.mesh_instances(), "sinks": self.sinks(),
                              "from": start, "to": end})

    async def stats(self, request: web.Request) -> web.Response:
        result = await self.call(request, self.engine.stats)
        services = result["services"]  # the busiest first
        result["services"] = dict(list(services.items())[:MAX_SERVICES])
        result["services_left_off"] = len(services) - len(result["services"])
        result["shippers"] = self.ledger_summary()
        result["sinks"] = self.sinks()
        files, size = quarantined(self.engine.data_dir)
        ws = self.writer_stats()
        result["quarantine"] = {"files": files, "bytes": size, "damaged_lines": ws["damaged_lines"],
                                "damaged_parquet_files": self.engine.counters["damaged_files"],
                                "damaged_parquet_events": self.engine.counters["damaged_rows"]}
        return json_response(result)

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(OPENAPI)

    @property
    def tails(self) -> int:
        """Open tail streams."""
        return self.live_tail.open

    @property
    def counters(self) -> dict[str, int]:
        """The counts (``bad_requests`` and ``timeouts`` read from the metrics)."""
        return {"requests": self.requests, "bad_requests": number(prom.value(self.bad_requests)),
                "tails_total": self.live_tail.total, "timeouts": number(prom.value(self.timeouts))}

    def add_metrics(self, ex: Exposition, labels: dict[str, str]) -> None:
        """The gauges computed now (the counters are in the registry it was given)."""
        self.slots.add_metrics(ex, labels)

    async def close(self) -> None:
        """End live tails, so the HTTP server's shutdown does not wait on them."""
        self.live_tail.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.heavy_pool.shutdown(wait=False, cancel_futures=True)
