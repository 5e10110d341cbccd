"""The query API's handlers (docs/api.md): /api/v1/search, histogram, top, fields, tail,
events/{seq}, mesh, stats and openapi.json.

Each handler reads and checks its parameters (a bad one is a 400 whose message
says what to send instead), then runs the engine in a thread pool so DuckDB
never blocks the event loop that also takes ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
from aiohttp import web

from . import kql
from .engine import Engine, QueryError, QueryTimeout
from .openapi import OPENAPI
from .timerange import TimeRangeError, now_ms, parse_duration, parse_range

if TYPE_CHECKING:
    from ..server import LogsServer

log = logging.getLogger("logmesh.logs.api")

MAX_QUERY_CHARS = 10_000  # longer q is refused (400)
MAX_SEARCH_LIMIT = 10_000
MAX_TOP_LIMIT = 1_000
MAX_CONTEXT = 1_000
MAX_TAIL_LAST = 1_000
TAIL_POLL_SECONDS = 0.2  # a tail looks for new events this often (an event shows within ~0.3 s)
TAIL_KEEPALIVE_SECONDS = 15.0  # an SSE comment this often, so proxies keep the stream open
QUERY_THREADS = 4


class BadRequest(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


def error_response(message: str, status: int = 400, **extra: Any) -> web.Response:
    return json_response({"ok": False, "error": message, "status": status, **extra}, status)


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
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
    text = request.query.get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    try:
        return kql.parse(text)
    except kql.KQLSyntaxError as exc:
        raise BadRequest(f"bad query: {exc.message}", position=exc.position) from None


def _range(request: web.Request, clock: Callable[[], float]) -> tuple[int, int]:
    try:
        return parse_range(request.query.get("from") or None, request.query.get("to") or None,
                           clock=clock)
    except TimeRangeError as exc:
        raise BadRequest(str(exc)) from None


def _order(request: web.Request) -> str:
    order = request.query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise BadRequest(f"order must be desc (newest first) or asc, got {order[:40]!r}")
    return order


def _describe(node: kql.Node) -> dict:
    return {"kql": "" if isinstance(node, kql.MatchAll) else node.to_kql(), "sentence": node.sentence()}


class QueryAPI:
    """Routes /api/v1/* queries of one logs process onto its engine."""

    def __init__(self, server: LogsServer, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.engine = engine
        self.clock = clock
        self.pool = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="query")
        self.closing = asyncio.Event()
        self.tails = 0
        self.counters = {"requests": 0, "bad_requests": 0, "tails_total": 0, "timeouts": 0}
        cfg = server.config
        self.timeout = float(getattr(cfg, "query_timeout", 0) or 0) or None  # seconds, then 503
        self.max_rows = int(getattr(cfg, "max_rows", 0) or MAX_SEARCH_LIMIT)  # events per page

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v1/search", self.wrap(self.search))
        r.add_get("/api/v1/histogram", self.wrap(self.histogram))
        r.add_get("/api/v1/top", self.wrap(self.top))
        r.add_get("/api/v1/fields", self.wrap(self.fields))
        r.add_get("/api/v1/tail", self.wrap(self.tail))
        r.add_get("/api/v1/events/{seq}", self.wrap(self.event))
        r.add_get("/api/v1/mesh", self.wrap(self.mesh))
        r.add_get("/api/v1/stats", self.wrap(self.stats))
        r.add_get("/api/v1/openapi.json", self.openapi)

    def wrap(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.StreamResponse:
            self.counters["requests"] += 1
            try:
                return await handler(request)
            except BadRequest as exc:
                self.counters["bad_requests"] += 1
                return error_response(exc.message, 400, **exc.extra)
            except QueryError as exc:
                self.counters["bad_requests"] += 1
                return error_response(str(exc), 400)
            except QueryTimeout:
                self.counters["timeouts"] += 1
                resp = error_response(f"the query took longer than {self.timeout:g}s and was stopped: "
                                      "narrow the time range or the query", 503)
                resp.headers["Retry-After"] = "1"
                return resp
            except duckdb.Error:
                log.exception("query failed: %s %s", request.method, request.path_qs[:500])
                # The engine's message can quote SQL and paths: it stays in our log (#9).
                return error_response("the query failed inside the engine; the details are in "
                                      "the logs service's own log", 500)
        return run

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in the query pool; retried once if retention removed a file meanwhile."""
        loop = asyncio.get_running_loop()
        run = self.engine.with_deadline
        try:
            return await loop.run_in_executor(self.pool, lambda: run(self.timeout, fn, *args, **kwargs))
        except duckdb.IOException:
            await loop.run_in_executor(self.pool, lambda: self.engine.refresh())
            return await loop.run_in_executor(self.pool, lambda: run(self.timeout, fn, *args, **kwargs))

    # -- handlers -----------------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        node = _query(request)
        start, end = _range(request, self.clock)
        limit = _int(request, "limit", 100, 1, self.max_rows)
        order = _order(request)
        cursor = request.query.get("cursor") or None
        now = now_ms(self.clock)
        events, nxt = await self.call(self.engine.search, node, start, end, limit=limit,
                                      order=order, cursor=cursor, now=now)
        return json_response({"events": events, "next_cursor": nxt,
                              "took_ms": round((time.perf_counter() - t0) * 1000, 1),
                              "query": _describe(node)})

    async def histogram(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        node = _query(request)
        start, end = _range(request, self.clock)
        interval = None
        raw = request.query.get("interval")
        if raw:
            try:
                interval = parse_duration(raw)
            except TimeRangeError as exc:
                raise BadRequest(str(exc)) from None
        by = request.query.get("by") or None
        result = await self.call(self.engine.histogram, node, start, end, interval=interval, by=by,
                                 now=now_ms(self.clock))
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def top(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        field_name = request.query.get("field")
        if not field_name:
            raise BadRequest("field is required: the field whose values to count, e.g. field=url.path")
        node = _query(request)
        start, end = _range(request, self.clock)
        limit = _int(request, "limit", 10, 1, MAX_TOP_LIMIT)
        result = await self.call(self.engine.top, node, start, end, field_name, limit=limit,
                                 now=now_ms(self.clock))
        result["took_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return json_response(result)

    async def fields(self, request: web.Request) -> web.Response:
        start, end = _range(request, self.clock)
        return json_response({"fields": await self.call(self.engine.fields, start, end)})

    async def event(self, request: web.Request) -> web.Response:
        raw = request.match_info["seq"]
        try:
            seq = int(raw)
        except ValueError:
            raise BadRequest(f"seq must be an event's seq (a whole number), got {raw[:40]!r}") from None
        if not 0 <= seq < 2**63:
            raise BadRequest(f"seq must be from 0 to {2**63 - 1}")
        context = _int(request, "context", 10, 0, MAX_CONTEXT)
        result = await self.call(self.engine.event, seq, context)
        if result is None:
            return error_response(f"no event with seq {seq} (never stored, or removed by retention)", 404)
        return json_response(result)

    async def mesh(self, request: web.Request) -> web.Response:
        start, end = _range(request, self.clock)
        counts = await self.call(self.engine.service_counts, start, end)
        seconds = max((end - start) / 1000, 0.001)
        registry = self.server.registry
        nodes = []
        for node in (registry.nodes if registry is not None else []):
            name = str(node.get("name", ""))
            c = counts.get(name, {})
            urls = node.get("urls")
            nodes.append({"name": name, "host": node.get("host"), "port": node.get("port"),
                          "urls": urls if isinstance(urls, list) else [],
                          "requests": c.get("requests", 0),
                          "rate_per_s": round(c.get("requests", 0) / seconds, 3),
                          "errors": c.get("errors", 0)})
        services = {name: {**c, "rate_per_s": round(c["requests"] / seconds, 3)}
                    for name, c in sorted(counts.items())}
        return json_response({"nodes": nodes, "services": services, "from": start, "to": end})

    async def stats(self, request: web.Request) -> web.Response:
        result = await self.call(self.engine.stats)
        result["shippers"] = self.server.ledger.summary()
        return json_response(result)

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(OPENAPI)

    async def tail(self, request: web.Request) -> web.StreamResponse:
        node = _query(request)
        last = _int(request, "last", 0, 0, MAX_TAIL_LAST)
        timeout = _int(request, "timeout", 0, 0, 86_400)
        snap = await self.call(self.engine.refresh)
        gen = snap.gen
        first: list[dict] = []
        if last:
            now = now_ms(self.clock)
            first, _ = await self.call(self.engine.search, node, 0, now + 86_400_000, limit=last,
                                       order="desc", now=now)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        self.tails += 1
        self.counters["tails_total"] += 1
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
                try:
                    events, gen = await self.call(self.engine.tail, node, gen, now=now_ms(self.clock))
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
            self.tails -= 1
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

    async def close(self) -> None:
        self.closing.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
