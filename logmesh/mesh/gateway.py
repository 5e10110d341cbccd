"""The HTTP gateway: ``METHOD /path`` -> the services whose urls hold ``METHOD/path``.

JSON or form bodies (and query strings) become ``params``; the correlation
key goes into ``params.key`` as the book's gateway does (and at the top level
for logmesh services); each request gets a ``trace.id`` so one request can be
followed across services in the logs. Round-robin over the nodes that serve
a route; 404 when none does, 502 when none is reachable or its reply cannot
be read (a book service's raw ``¶`` splits it), 504 on timeout.

The gateway is the mesh's front door: its routes are public by design (what a
route may do is the services' business). With a token it authenticates to the
distributor and the services, and ``GET /distributes`` (the mesh's topology)
needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from ..lifecycle import Serving
from ..metrics import Metrics
from ..protocol import Node
from ..security import OPEN_MODE, ServerSecurity, bearer_token, token_matches
from ..security_http import BODY_TIMEOUT, GuardedSite, HttpCounters, runner_kwargs
from .client import BadReply, NotConnected, ReconnectingClient, RequestTimeout
from .metrics_http import CountedPart
from .registry import RegistryLink

log = logging.getLogger("logmesh.gateway")

TRACE_FIELD = "trace.id"  # extra top-level packet field; book services ignore it


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


@web.middleware
async def _internal_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A bug answers 500 without details; the traceback stays in our log."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"errorcode": exc.status, "errormessage": exc.reason}, exc.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("gateway: %s %s failed", request.method, request.path)
        return _json({"errorcode": 500, "errormessage": "internal error"}, 500)


# (key, help) of the gateway's counters: logmesh_gateway_<key>_total.
GATEWAY_COUNTERS = (
    ("requests", "Gateway requests."),
    ("no_route", "Gateway requests no service serves (answered 404)."),
    ("unreachable", "Gateway requests with no reachable service (answered 502)."),
    ("timeouts", "Gateway requests the service did not answer in time (answered 504)."),
    ("bad_replies", "Gateway requests whose reply could not be read (answered 502)."),
)


class BodyError(ValueError):
    """A request body the gateway will not forward; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _body_params(body: bytes, content_type: str) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        text = body.decode("utf-8", "replace")
        if content_type == "application/x-www-form-urlencoded" and "=" in text:
            return dict(parse_qsl(text, keep_blank_values=True))
        raise BodyError(400, f"body is neither JSON nor a form (name=value&...): {exc}") from None
    if not isinstance(data, dict):
        raise BodyError(400, "body must be a JSON object")
    return data


class Gateway(CountedPart, Serving):
    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *,
                 distributor: tuple[str, int] = ("127.0.0.1", 9000), timeout: float = 10.0,
                 name: str = "gateway", security: ServerSecurity = OPEN_MODE,
                 max_body_bytes: int = 1024 * 1024) -> None:
        security.check_exposure("gateway", host)
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token = security.token
        self.tls = security.tls
        self.limits = security.limits
        self.max_body_bytes = max_body_bytes
        self.client_ssl = self.tls.client_context()
        self.routes: dict[str, list[tuple[str, int]]] = {}
        self.clients: dict[tuple[str, int], ReconnectingClient] = {}
        self._rr: dict[str, itertools.count] = {}
        self.registry = RegistryLink(*distributor, name=name, node_port=lambda: self.port,
                                     urls=lambda: [], token=token, ssl=self.client_ssl)
        self.registry.listeners.append(self._on_nodes)
        self.names: dict[tuple[str, int], str] = {}
        self.shipper: Any = None  # a Shipper for the gateway's access log (see attach_shipper)
        self.metrics: Any = None  # a MetricsEndpoint, when --metrics-port is given
        self.runner: web.AppRunner | None = None
        # Counted in prometheus-client metrics (docs/metrics.md), shown on --metrics-port.
        self.prom = Metrics()
        self._counters = {key: self.prom.counter(f"logmesh_gateway_{key}_total", help_text)
                          for key, help_text in GATEWAY_COUNTERS}
        self.request_seconds = self.prom.histogram(
            "logmesh_request_duration_seconds", "HTTP requests by route and status: seconds "
            "until the answer.", ["route", "status"])
        self._timers: dict[tuple[str, int], Any] = {}

    # -- nodes ----------------------------------------------------------------
    def _on_nodes(self, nodes: list[Node]) -> None:
        routes: dict[str, list[tuple[str, int]]] = {}
        wanted: set[tuple[str, int]] = set()
        names: dict[tuple[str, int], str] = {}
        for node in nodes:
            if not node.urls or node.name in ("gateway", "gate"):
                continue
            wanted.add(node.addr)
            names[node.addr] = node.name
            for url in node.urls:
                routes.setdefault(url, []).append(node.addr)
        for addr in wanted - self.clients.keys():
            client = ReconnectingClient(*addr, name=f"gateway->{addr[0]}:{addr[1]}",
                                        token=self.token, ssl=self.client_ssl)
            client.start()
            self.clients[addr] = client
        for addr in self.clients.keys() - wanted:
            self.clients.pop(addr).abort()
        self.routes = routes
        self.names = names

    def _timed(self, request: web.Request, status: int, seconds: float) -> None:
        method, path = request.method, request.path
        known = (method == "GET" and path == "/distributes") or f"{method}{path}" in self.routes
        key = (f"{method} {path}" if known else "other", status)
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = self.request_seconds.labels(key[0], str(status))
        timer.observe(seconds)

    def attach_shipper(self, shipper: Any) -> None:
        """Ship one access-log record per HTTP exchange (status, latency, upstream)."""
        self.shipper = shipper
        self.registry.listeners.append(shipper.on_nodes)

    # -- HTTP -----------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[_internal_errors])
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """Route one request, and ship the exchange (status, latency) as an access log."""
        t0 = time.perf_counter()
        try:
            response = await self._route(request)
        except Exception:  # answered 500 by _internal_errors
            self._timed(request, 500, time.perf_counter() - t0)
            raise
        self._timed(request, response.status, time.perf_counter() - t0)
        if self.shipper is not None:
            status = response.status
            trace_id = response.headers.get("X-Request-Id")
            took_ms = round((time.perf_counter() - t0) * 1000, 3)
            self.shipper.ship_record(
                f"{request.method} {request.path} {status} {took_ms}ms",
                {"http.request.method": request.method, "url.path": request.path,
                 "http.response.status_code": status, "trace.id": trace_id,
                 "log.level": "error" if status >= 500 else "warning" if status >= 400 else "info",
                 "event.duration_ms": took_ms, "upstream": response.headers.get("X-Upstream")})
        return response

    async def _route(self, request: web.Request) -> web.Response:
        self._counters["requests"].inc()
        method, path = request.method, request.path
        if method == "GET" and path == "/distributes":
            if self.token and not token_matches(bearer_token(request.headers.get("Authorization")),
                                                (self.token.encode(),)):
                return _json({"errorcode": 401, "errormessage": "GET /distributes needs "
                              "'Authorization: Bearer <the mesh token>'"}, 401)
            return _json(self.registry.nodes)
        addrs = self.routes.get(f"{method}{path}")
        if not addrs:
            self._counters["no_route"].inc()
            return _json({"errorcode": 404, "errormessage": f"no service serves {method} {path}"}, 404)
        try:
            params = await self._params(request)
        except ValueError as exc:
            status = exc.status if isinstance(exc, BodyError) else 400
            return _json({"errorcode": status, "errormessage": str(exc)}, status)
        trace_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        counter = self._rr.setdefault(f"{method}{path}", itertools.count())
        start = next(counter)
        for i in range(len(addrs)):
            client_addr = addrs[(start + i) % len(addrs)]
            client = self.clients.get(client_addr)
            if client is None or not client.is_connected:
                continue
            try:
                reply = await client.request(path, method, params, timeout=self.timeout,
                                             extra={TRACE_FIELD: trace_id})
            except RequestTimeout:
                self._counters["timeouts"].inc()
                return _json({"errorcode": 504, "errormessage": f"{method} {path} timed out"}, 504)
            except BadReply as exc:
                self._counters["bad_replies"].inc()
                return _json({"errorcode": 502, "errormessage": str(exc)}, 502)
            except NotConnected:
                continue
            return web.Response(body=orjson.dumps(reply), content_type="application/json",
                                headers={"X-Request-Id": trace_id,
                                         "X-Upstream": self.names.get(client_addr, "")})
        self._counters["unreachable"].inc()
        return _json({"errorcode": 502, "errormessage": f"no reachable service for {method} {path}"}, 502)

    async def _params(self, request: web.Request) -> dict:
        """The query string and the body (JSON, or a form) as the request's ``params``.

        A body is judged by what it holds, not only its content type: curl's
        ``-d '{"name":"pen"}'`` says form-urlencoded, and a text that is
        neither JSON nor a form is refused instead of becoming a field name.
        """
        params: dict[str, Any] = dict(request.query)
        if request.method in ("POST", "PUT", "PATCH") and request.can_read_body:
            declared = request.content_length
            if declared is not None and declared > request.client_max_size:
                raise BodyError(413, f"the body is {declared} bytes; at most "
                                     f"{request.client_max_size} are accepted (--max-body-size)")
            try:
                async with asyncio.timeout(BODY_TIMEOUT):  # a slow body must not hold the request
                    body = await request.read()
            except TimeoutError:
                raise BodyError(408, f"the body took more than {BODY_TIMEOUT:.0f}s to arrive") from None
            if body.strip():
                params.update(_body_params(body, request.content_type))
        return params

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        self.runner = web.AppRunner(self.app(), access_log=None, **runner_kwargs(self.limits))
        await self.runner.setup()
        site = GuardedSite(self.runner, self.host, self.port, limits=self.limits,
                           counters=HttpCounters(self.prom), ssl_context=self.tls.server_context())
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("gateway listening on %s://%s:%d", "https" if self.tls.serves else "http",
                 self.host, self.port)
        if self.shipper is not None:
            self.shipper.start()
        if self.metrics is not None:
            await self.metrics.start()
        self.registry.start()

    async def stop(self) -> None:
        await self.registry.close()
        if self.shipper is not None:
            await self.shipper.close()
        if self.metrics is not None:
            await self.metrics.stop()
        for client in list(self.clients.values()):
            await client.close()
        if self.runner is not None:
            await self.runner.cleanup()

