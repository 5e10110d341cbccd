"""The query API's handlers (docs/api.md): /api/v1/search, histogram, top, fields, tail,
events/{seq}, mesh, stats and openapi.json.

Each handler reads and checks its parameters (a bad one is a 400 whose message
says what to send instead), then runs the engine in a thread pool so DuckDB
never blocks the event loop that also takes ingest.

Search, histogram, top and tail also take ``POST`` with the same parameters as a
JSON object in the body: a query up to MAX_QUERY_CHARS does not fit the request
line (aiohttp stops at 8,190 bytes). They stay reads: the body is never stored,
and the handler itself requires a read token (``read_token_refused``), whatever
the method-based auth middleware let through.

Query limits (docs/security.md, "Query limits"), against one client starving the
others (issue 15 #7: 8 heavy queries took normal searches from 81 ms to 19 s):

* a query's deadline (``--query-timeout``) runs from its arrival, so waiting for
  one of the QUERY_THREADS threads counts; a query still waiting at its deadline
  answers 503 with Retry-After, and one running is interrupted (DuckDB
  ``interrupt()``), which frees its thread;
* a query whose cost (kql.cost) is past MAX_QUERY_TERMS or MAX_SCAN_TERMS is
  refused up front (400, saying which and why);
* a client (its read token when the service has tokens, else its address) runs
  at most CLIENT_THREADS queries at once; the rest wait their turn, and past
  CLIENT_QUERIES running or waiting it is answered 429 with Retry-After;
* heavy queries (more than HEAVY_SCAN_TERMS scan terms) hold at most all threads
  but one, so a normal query never waits for heavy ones to end; they run in their
  own threads at a lower CPU priority (HEAVY_NICE), after a refresh of the live
  segments done for them at the normal priority.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
from aiohttp import web

from ... import metrics as prom
from ...metrics import Exposition, Metrics, number
from ...protocol import Node
from ...security import Access, bearer_token, token_matches
from ...security_http import json_error, json_response
from ..query import kql
from ..query.engine import NONE, OTHER, Engine, QueryError, QueryTimeout, lower_priority
from ..query.timerange import TimeRangeError, now_ms, parse_duration, parse_range
from ..store.segment import quarantined
from .openapi import OPENAPI

log = logging.getLogger("logmesh.logs.api")

MAX_QUERY_CHARS = 10_000  # longer q is refused (400)
MAX_QUERY_BODY_BYTES = 64 * 1024  # a POST's JSON parameters: q (<= 40 KB of UTF-8) and the rest
MAX_SEARCH_LIMIT = 10_000
MAX_TOP_LIMIT = 1_000
MAX_CONTEXT = 1_000
MAX_TAIL_LAST = 1_000
TAIL_POLL_SECONDS = 0.2  # a tail looks for new events this often (an event shows within ~0.3 s)
TAIL_KEEPALIVE_SECONDS = 15.0  # an SSE comment this often, so proxies keep the stream open
QUERY_THREADS = 4
# Query limits (module docstring). The two per-client numbers are QueryAPI's client_threads and
# client_queries.
CLIENT_THREADS = 2  # queries of one client running at once; the web UI sends 3-4 together
CLIENT_QUERIES = 8  # queries of one client running or waiting; past it 429
MAX_QUERY_TERMS = 1_000  # kql.cost().terms past this: 400
MAX_SCAN_TERMS = 64  # kql.cost().scans past this: 400 (64 scans over 1M events ~ 4 s of a core)
HEAVY_SCAN_TERMS = 8  # more scans than this: a heavy query (at most QUERY_THREADS - 1 of them run)
RETRY_AFTER_SECONDS = 1
# Heavy queries run at a lower CPU priority (nice) than ingest and normal queries, as do
# DuckDB's own worker threads (Engine(worker_nice=...)): on a busy machine they wait for CPU
# instead of ingest and the others. (Normal queries at nice 5 too lost more to other
# processes than they gained: bench/query_starvation.py.)
HEAVY_NICE = 10


class BadRequest(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


# Per request: the parameters (from the URL or a POST's JSON body), whether the query is heavy
# (kql.cost), and its deadline (time.monotonic(); set by its first engine call).
PARAMS = web.RequestKey("logmesh.params", dict)
HEAVY = web.RequestKey("logmesh.heavy", bool)
DEADLINE = web.RequestKey("logmesh.deadline", float)


def _params(request: web.Request) -> Mapping[str, str]:
    return request.get(PARAMS, request.query)


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = _params(request).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from {lo} to {hi}, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be from {lo} to {hi}, got {value}")
    return value


def _query(request: web.Request) -> kql.Node:
    """``q`` parsed, and refused up front when it would cost too much to run (see kql.Cost)."""
    text = _params(request).get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    try:
        node = kql.parse(text)
    except kql.KQLSyntaxError as exc:
        raise BadRequest(f"bad query: {exc.message}", position=exc.position) from None
    cost = kql.cost(node)
    if cost.terms > MAX_QUERY_TERMS:
        raise BadRequest(f"the query has {cost.terms} terms; at most {MAX_QUERY_TERMS}: "
                         "split it into several queries", terms=cost.terms)
    if cost.scans > MAX_SCAN_TERMS:
        raise BadRequest(
            f"the query has {cost.scans} terms that search inside every event's text or JSON "
            f"(words, phrases, *leading wildcards, params./labels. keys); at most {MAX_SCAN_TERMS}, "
            "as each is read for every event in the range: use exact field:value terms "
            "(e.g. service.name:goods, url.path:/goods*) or split the query", scans=cost.scans)
    request[HEAVY] = cost.scans > HEAVY_SCAN_TERMS
    return node


def _range(request: web.Request, clock: Callable[[], float]) -> tuple[int, int]:
    params = _params(request)
    try:
        return parse_range(params.get("from") or None, params.get("to") or None, clock=clock)
    except TimeRangeError as exc:
        raise BadRequest(str(exc)) from None


def _order(request: web.Request) -> str:
    order = _params(request).get("order") or "desc"
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be desc (newest first) or asc, got {order[:40]!r}")
    return order


async def _read_post_params(request: web.Request) -> dict[str, str]:
    """A POST's JSON object of parameters, as the strings a query string would carry.

    The URL's own parameters are read too; the body's win. Numbers become their text,
    null and absent are the same; nested values are refused.
    """
    if request.content_length is not None and request.content_length > MAX_QUERY_BODY_BYTES:
        raise PayloadTooLarge()
    body = bytearray()
    while chunk := await request.content.read(65536):
        body += chunk
        if len(body) > MAX_QUERY_BODY_BYTES:
            raise PayloadTooLarge()
    params = dict(request.query)
    if not body.strip():
        return params
    try:
        obj = orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body must be a JSON object of parameters, e.g. "
                         f'{{"q": "service.name:goods", "from": "now-1h"}}: {exc}') from None
    if not isinstance(obj, dict):
        raise BadRequest('the body must be a JSON object of parameters, e.g. {"q": "error"}')
    for name, value in obj.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRequest(f"{name[:40]!r} must be a string or a number, got {type(value).__name__}")
        params[name] = value if isinstance(value, str) else str(value)
    return params


class PayloadTooLarge(Exception):
    pass


def _describe(node: kql.Node) -> dict:
    return {"kql": "" if isinstance(node, kql.MatchAll) else node.to_kql(), "sentence": node.sentence()}


class Busy(Exception):
    """No thread for this query: 429 (its client is at its limit) or 503 (its deadline passed
    while it waited)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(eq=False)
class _Waiter:
    client: str
    heavy: bool
    future: asyncio.Future


@dataclass
class QuerySlots:
    """Which query runs next on the ``threads`` query threads (event-loop side only).

    First come, first served, except that a waiter is passed over while its client
    already runs ``per_client`` queries, or while it is heavy and heavy queries hold
    ``threads - 1`` threads. A slot is taken before a query is handed to the pool, so
    the pool never queues: all waiting happens here, where the deadline can end it.
    """

    threads: int
    per_client: int
    max_per_client: int  # running + waiting
    free: int = 0
    heavy_running: int = 0
    running: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    queue: list[_Waiter] = field(default_factory=list)
    metrics: Metrics | None = None  # where its counters live (a registry of its own if None)
    worker: str = "0"

    def __post_init__(self) -> None:
        self.free = self.threads
        self.heavy_max = max(1, self.threads - 1)
        m = self.metrics or Metrics()
        refused = m.counter("logmesh_query_refused_total",
                            "Queries refused with 429 or 503 before they ran, by reason.",
                            ["worker", "reason"])
        self.refused_client = refused.labels(self.worker, "client")
        self.refused_waiting = refused.labels(self.worker, "waiting")
        self.wait_seconds = m.counter("logmesh_query_wait_seconds_total",
                                      "Time queries waited for a query thread.",
                                      ["worker"]).labels(self.worker)

    @property
    def counters(self) -> dict[str, float]:
        """The counts, read from the metrics."""
        return {"refused_client": number(prom.value(self.refused_client)),
                "refused_waiting": number(prom.value(self.refused_waiting)),
                "wait_seconds": prom.value(self.wait_seconds)}

    def add_metrics(self, ex: Exposition, labels: dict[str, str]) -> None:
        """The gauges of now (published, not counted)."""
        ex.add("logmesh_queries_running", "gauge", "Queries on a query thread now.",
               self.threads - self.free, labels)
        ex.add("logmesh_queries_waiting", "gauge", "Queries waiting for a query thread.",
               len(self.queue), labels)

    def _may_run(self, client: str, heavy: bool) -> bool:
        return (self.free > 0 and self.running.get(client, 0) < self.per_client
                and (not heavy or self.heavy_running < self.heavy_max))

    def _take(self, client: str, heavy: bool) -> None:
        self.free -= 1
        self.running[client] = self.running.get(client, 0) + 1
        self.heavy_running += heavy

    def release(self, client: str, heavy: bool) -> None:
        self.free += 1
        self.heavy_running -= heavy
        n = self.running[client] - 1
        if n:
            self.running[client] = n
        else:
            del self.running[client]
        self._grant()

    def _grant(self) -> None:
        for w in list(self.queue):
            if self.free <= 0:
                break
            if w.future.done():  # gave up (deadline, cancelled)
                self.queue.remove(w)
            elif self._may_run(w.client, w.heavy):
                self.queue.remove(w)
                self._take(w.client, w.heavy)
                w.future.set_result(None)

    def enter(self, client: str) -> None:
        """Count a query of ``client`` in flight, or refuse it (429) past its limit."""
        n = self.in_flight.get(client, 0)
        if n >= self.max_per_client:
            self.refused_client.inc()
            raise Busy(f"this client already has {n} queries running or waiting, the most one "
                       "client may have: wait for their answers, then send more", 429)
        self.in_flight[client] = n + 1

    def leave(self, client: str) -> None:
        n = self.in_flight[client] - 1
        if n:
            self.in_flight[client] = n
        else:
            del self.in_flight[client]

    async def acquire(self, client: str, heavy: bool, deadline: float | None) -> None:
        """Wait for a thread until ``deadline`` (then Busy 503); the caller must ``release``."""
        w = _Waiter(client, heavy, asyncio.get_running_loop().create_future())
        self.queue.append(w)
        self._grant()  # first come, first served among those that may run now
        if w.future.done():
            return
        t0 = time.monotonic()
        try:
            if deadline is None:
                await asyncio.shield(w.future)
            else:
                await asyncio.wait_for(asyncio.shield(w.future), max(0.0, deadline - t0))
        except (TimeoutError, asyncio.CancelledError) as exc:
            if w.future.done() and not w.future.cancelled():  # granted just now: give it back
                self.release(client, heavy)
            else:
                w.future.cancel()
                if w in self.queue:
                    self.queue.remove(w)
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.refused_waiting.inc()
            raise Busy(f"every query thread stayed busy for {time.monotonic() - t0:.1f}s, this "
                       "query's whole time limit (--query-timeout): retry in a moment, or narrow "
                       "the query or the time range", 503) from None
        finally:
            self.wait_seconds.inc(time.monotonic() - t0)


class QueryAPI:
    """Routes /api/v1/* queries of one logs process onto its engine.

    It is handed what it reads, by logs/server.py: the engine, the service's
    ``access`` (tokens), and callables for the writer's counters, the loss
    ledger's summary and the mesh's nodes (known once the registry answers).
    """

    def __init__(self, engine: Engine, *, access: Access,
                 writer_stats: Callable[[], Mapping[str, int]],
                 ledger_summary: Callable[[], list[dict]],
                 mesh_nodes: Callable[[], list[Node]],
                 query_timeout: float | None = None, max_rows: int = MAX_SEARCH_LIMIT,
                 client_threads: int = CLIENT_THREADS, client_queries: int = CLIENT_QUERIES,
                 clock: Callable[[], float] = time.time, metrics: Metrics | None = None,
                 worker: str = "0") -> None:
        """``metrics``: the registry its counters go to (the server's); ``worker``: their label."""
        self.engine = engine
        self.access = access
        self.writer_stats = writer_stats
        self.ledger_summary = ledger_summary
        self.mesh_nodes = mesh_nodes
        self.clock = clock
        # Slots (below) hand out at most QUERY_THREADS jobs, heavy ones at most QUERY_THREADS - 1:
        # neither pool ever queues.
        self.pool = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="query")
        self.heavy_pool = ThreadPoolExecutor(max(1, QUERY_THREADS - 1), thread_name_prefix="query-heavy",
                                             initializer=lower_priority, initargs=(HEAVY_NICE,))
        self.closing = asyncio.Event()
        m = metrics or Metrics()
        self.tail_streams = m.gauge("logmesh_tail_streams", "Open /api/v1/tail streams.",
                                    ["worker"]).labels(worker)
        self.bad_requests = m.counter("logmesh_api_bad_requests_total",
                                      "Query API requests answered 400.", ["worker"]).labels(worker)
        self.timeouts = m.counter("logmesh_query_timeouts_total",
                                  "Queries answered 503 past --query-timeout (waiting included).",
                                  ["worker"]).labels(worker)
        self.requests = 0
        self.tails_total = 0
        self.timeout = float(query_timeout or 0) or None  # seconds, then 503
        self.max_rows = int(max_rows or MAX_SEARCH_LIMIT)  # events per page
        self.slots = QuerySlots(QUERY_THREADS, int(client_threads or CLIENT_THREADS),
                                int(client_queries or CLIENT_QUERIES), metrics=m, worker=worker)

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        for path, handler in (("/api/v1/search", self.search), ("/api/v1/histogram", self.histogram),
                              ("/api/v1/top", self.top), ("/api/v1/tail", self.tail)):
            r.add_get(path, self.wrap(handler))
            r.add_post(path, self.wrap(handler, post=True))
        r.add_get("/api/v1/fields", self.wrap(self.fields))
        r.add_get("/api/v1/events/{seq}", self.wrap(self.event))
        r.add_get("/api/v1/mesh", self.wrap(self.mesh))
        r.add_get("/api/v1/stats", self.wrap(self.stats))
        r.add_get("/api/v1/openapi.json", self.openapi)

    def wrap(self, handler: Callable[[web.Request], Any], *, post: bool = False) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            try:
                if post:
                    refused = self.read_token_refused(request)
                    if refused is not None:
                        return refused
                    request[PARAMS] = await _read_post_params(request)
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
        node = _query(request)
        start, end = _range(request, self.clock)
        limit = _int(request, "limit", 100, 1, self.max_rows)
        order = _order(request)
        cursor = _params(request).get("cursor") or None
        now = now_ms(self.clock)
        events, nxt = await self.call(request, self.engine.search, node, start, end, limit=limit,
                                      order=order, cursor=cursor, now=now)
        return json_response({"events": events, "next_cursor": nxt,
                              "took_ms": round((time.perf_counter() - t0) * 1000, 1),
                              "query": _describe(node)})

    async def histogram(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        node = _query(request)
        start, end = _range(request, self.clock)
        interval = None
        raw = _params(request).get("interval")
        if raw:
            try:
                interval = parse_duration(raw)
            except TimeRangeError as exc:
                raise BadRequest(str(exc)) from None
        by = _params(request).get("by") or None
        result = await self.call(request, self.engine.histogram, node, start, end, interval=interval, by=by,
                                 now=now_ms(self.clock))
        if by is not None:  # named here so a client never hard-codes them
            result["sentinels"] = {"none": NONE, "other": OTHER}
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def top(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        field_name = _params(request).get("field")
        if not field_name:
            raise BadRequest("field is required: the field whose values to count, e.g. field=url.path")
        node = _query(request)
        start, end = _range(request, self.clock)
        limit = _int(request, "limit", 10, 1, MAX_TOP_LIMIT)
        result = await self.call(request, self.engine.top, node, start, end, field_name, limit=limit,
                                 now=now_ms(self.clock))
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def fields(self, request: web.Request) -> web.Response:
        start, end = _range(request, self.clock)
        return json_response({"fields": await self.call(request, self.engine.fields, start, end)})

    async def event(self, request: web.Request) -> web.Response:
        raw = request.match_info["seq"]
        try:
            seq = int(raw)
        except ValueError:
            raise BadRequest(f"seq must be an event's seq (a whole number), got {raw[:40]!r}") from None
        if not 0 <= seq < 2**63:
            raise BadRequest(f"seq must be from 0 to {2**63 - 1}")
        context = _int(request, "context", 10, 0, MAX_CONTEXT)
        result = await self.call(request, self.engine.event, seq, context)
        if result is None:
            return json_error(f"no event with seq {seq} (never stored, or removed by retention)", 404)
        return json_response(result)

    async def mesh(self, request: web.Request) -> web.Response:
        start, end = _range(request, self.clock)
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
        services = {name: {**c, "rate_per_s": round(c["requests"] / seconds, 3)}
                    for name, c in sorted(counts.items())}
        return json_response({"nodes": nodes, "services": services, "from": start, "to": end})

    async def stats(self, request: web.Request) -> web.Response:
        result = await self.call(request, self.engine.stats)
        result["shippers"] = self.ledger_summary()
        files, size = quarantined(self.engine.data_dir)
        ws = self.writer_stats()
        result["quarantine"] = {"files": files, "bytes": size, "damaged_lines": ws["damaged_lines"],
                                "damaged_parquet_files": self.engine.counters["damaged_files"],
                                "damaged_parquet_events": self.engine.counters["damaged_rows"]}
        return json_response(result)

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(OPENAPI)

    async def tail(self, request: web.Request) -> web.StreamResponse:
        node = _query(request)
        last = _int(request, "last", 0, 0, MAX_TAIL_LAST)
        timeout = _int(request, "timeout", 0, 0, 86_400)
        snap = await self.call(request, self.engine.refresh)
        gen = snap.gen
        first: list[dict] = []
        if last:
            now = now_ms(self.clock)
            first, _ = await self.call(request, self.engine.search, node, 0, now + 86_400_000, limit=last,
                                       order="desc", now=now)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        self.tail_streams.inc()
        self.tails_total += 1
        deadline = time.monotonic() + timeout if timeout else None
        try:
            await resp.write(b"retry: 1000\n\n")
            await self._send(resp, first[::-1])
            quiet = time.monotonic()
            while not self.closing.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    await asyncio.wait_for(self.closing.wait(), TAIL_POLL_SECONDS)
                    break
                except TimeoutError:
                    pass
                if self.timeout:  # each poll is a query of its own, with its own deadline
                    request[DEADLINE] = time.monotonic() + self.timeout
                try:
                    events, gen = await self.call(request, self.engine.tail, node, gen, now=now_ms(self.clock))
                except Busy:  # no thread for this poll: the next one catches up (by generation)
                    continue
                except (QueryError, QueryTimeout, duckdb.Error) as exc:  # the stream is open: say so in it
                    log.warning("tail stopped: %s", exc)
                    await resp.write(b"event: error\ndata: " + orjson.dumps({"error": str(exc)}) + b"\n\n")
                    break
                if events:
                    await self._send(resp, events)
                    quiet = time.monotonic()
                elif time.monotonic() - quiet > TAIL_KEEPALIVE_SECONDS:
                    await resp.write(b": keepalive\n\n")
                    quiet = time.monotonic()
        except ConnectionError:  # the client went away
            pass
        finally:
            self.tail_streams.dec()
        return resp

    @staticmethod
    async def _send(resp: web.StreamResponse, events: list[dict]) -> None:
        if not events:
            return
        out = bytearray()
        for ev in events:
            out += b"id: %d\ndata: " % ev.get("seq", 0)
            out += orjson.dumps(ev)
            out += b"\n\n"
        await resp.write(bytes(out))

    @property
    def tails(self) -> int:
        """Open tail streams."""
        return int(prom.value(self.tail_streams))

    @property
    def counters(self) -> dict[str, int]:
        """The counts (``bad_requests`` and ``timeouts`` read from the metrics)."""
        return {"requests": self.requests, "bad_requests": number(prom.value(self.bad_requests)),
                "tails_total": self.tails_total, "timeouts": number(prom.value(self.timeouts))}

    def add_metrics(self, ex: Exposition, labels: dict[str, str]) -> None:
        """The gauges computed now (the counters are in the registry it was given)."""
        self.slots.add_metrics(ex, labels)

    async def close(self) -> None:
        """End live tails, so the HTTP server's shutdown does not wait on them."""
        self.closing.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.heavy_pool.shutdown(wait=False, cancel_futures=True)
