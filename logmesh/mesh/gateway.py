"""The HTTP gateway: ``METHOD /path`` -> the services whose urls hold ``METHOD/path``.

JSON or form bodies (and query strings) become ``params``; the correlation
key goes into ``params.key`` as the book's gateway does (and at the top level
for logmesh services); each request gets a ``trace.id`` (``X-Request-Id``, on
every answer) so one request can be followed across services in the logs.
Round-robin over the nodes that serve a route; one whose request timed out
and that has said nothing since (frozen) is passed over while another
answers, and tried again every ``stall_retry`` seconds.

What the HTTP status says (README.md has the table):
a service's reply is answered with the status its ``errorcode`` maps to (0 ->
200, 400-599 -> that status, any other code -> 500; ``status_from_errorcode=False``
keeps the chapter's 200 for every reply), its body the reply as it came. The
gateway's own answers: 404 when no service ever served the route, 503 when
services served it but no instance is up (none listed, or none connected),
502 when the reply cannot be read (a book service's raw ``¶`` splits it, or it is over
the packet limit) or the connection was lost before it came, 504 when it did not come in time.

Each exchange is one access-log record (when a shipper is attached): status,
the answer's ``errorcode``, duration, the upstream that answered or failed to
(its name and host:port: in the log, never in the answer to the client), and
the trace id; ``log.level`` follows the outcome.

The gateway is the mesh's front door: its routes are public by design (what a
route may do is the services' business). With a token it authenticates to the
distributor and the services, and ``GET /distributes`` (the mesh's topology)
needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .. import access_log
from ..lifecycle import Serving
from ..metrics import Metrics
from ..protocol import Node
from ..security import OPEN_MODE, ServerSecurity, bearer_token, token_matches
from ..security_http import BODY_TIMEOUT, HttpCounters
from .client import BadReply, NotConnected, ReconnectingClient, RequestTimeout, UnendedReply
from .http_protocol import AUTHORIZATION_TWICE, HttpRequest, Respond, Response
from .http_server import HttpSite
from .metrics_http import CountedPart
from .registry import RegistryLink

log = logging.getLogger("logmesh.gateway")

TRACE_FIELD = "trace.id"  # extra top-level packet field; book services ignore it


def new_trace_id() -> str:
    """32 hex digits, as uuid4().hex gave, without its getrandom syscall per request (a
    trace id needs to be unique, not unguessable); ``to_bytes().hex()`` is ~0.5 µs less than
    formatting the int with ``032x``, the same digits."""
    return random.getrandbits(128).to_bytes(16, "big").hex()


@dataclass(slots=True)
class Answer:
    """An HTTP answer: always JSON, ``upstream`` the service that gave its body."""

    status: int
    body: bytes
    upstream: str | None = None


# An answer's own header lines, rendered in one format (http_protocol.Response.headers).
_HEAD = b"content-type: application/json\r\nx-request-id: %s\r\n"
_HEAD_UPSTREAM = b"content-type: application/json\r\nx-request-id: %s\r\nx-upstream: %s\r\n"


def _json(data: Any, status: int = 200) -> Answer:
    return Answer(status, orjson.dumps(data))


# (key, help) of the gateway's counters: logmesh_gateway_<key>_total.
GATEWAY_COUNTERS = (
    ("requests", "Gateway requests."),
    ("no_route", "Gateway requests for a route no service ever served (answered 404)."),
    ("no_instance", "Gateway requests for a route served before, with no instance up now "
                    "(answered 503)."),
    ("unreachable", "Gateway requests whose service's connection was lost before it "
                    "answered (answered 502)."),
    ("timeouts", "Gateway requests the service did not answer in time (answered 504)."),
    ("bad_replies", "Gateway requests whose reply could not be read (answered 502)."),
)


def status_for(errorcode: Any) -> int:
    """The HTTP status a reply's ``errorcode`` stands for: 0 (or none) 200, 400-599 itself,
    anything else 500 (the book's services answer 1 for their errors)."""
    if isinstance(errorcode, float) and errorcode.is_integer():
        errorcode = int(errorcode)
    if errorcode is None or errorcode is False or (type(errorcode) is int and errorcode == 0):
        return 200
    if type(errorcode) is int and 400 <= errorcode <= 599:
        return errorcode
    return 500


def _label_value(value: Any) -> Any:
    """An errorcode as a stored label: a number or string as it is, anything else as short text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:100]


@dataclass(slots=True)
class Exchange:
    """One HTTP request on its way: what it came to (for its access log, its answer's headers
    and the metrics) and where it is (the instances tried), so that a service's reply callback
    can answer it: no task or coroutine per request."""

    gateway: Gateway
    request: HttpRequest
    respond: Respond
    trace_id: str
    t0: float
    errorcode: Any = None  # the answer's errorcode: the service's reply's, or the gateway's own
    outcome: int | None = None  # the status the outcome stands for (under always-200 too)
    upstream: str | None = None  # the service that answered, or failed to
    address: str | None = None  # its host:port
    route: str = ""
    addrs: list[tuple[str, int]] | None = None  # the route's instances
    start: int = 0  # the round-robin's first of them
    tried: int = 0  # how many of them were tried
    params: dict | None = None
    unended: int = 0  # bytes of a reply its service began and never ended (a 504)

    def replied(self, reply: tuple[dict, bytes] | None, exc: Exception | None) -> None:
        """The client's callback: the service's reply, or why there is none."""
        self.gateway._replied(self, reply, exc)


class BodyError(ValueError):
    """A request body the gateway will not forward; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


def _body_params(body: bytes, headers: dict[str, str]) -> dict:
    """A body's params: JSON first, whatever its content type says; a form only when it is
    not JSON and says it is one (the content type is looked at only then)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        text = body.decode("utf-8", "replace")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded" and "=" in text:
            return dict(parse_qsl(text, keep_blank_values=True))
        raise BodyError(400, f"body is neither JSON nor a form (name=value&...): {exc}") from None
    if not isinstance(data, dict):
        raise BodyError(400, "body must be a JSON object")
    return data


class Gateway(CountedPart, Serving):
    # Every exchange leaves an access-log record (a tuple, tracked by the collector) alive in
    # the shipper until its batch is acknowledged: ~1,000-2,000 of them, freed a batch at a
    # time. At CPython's 700 a young collection came every ~480 requests, walked them and
    # moved them on to older generations, whose collections walked them again; at 10,000 the
    # batches come and go below the threshold (bench/gateway_path.py: 126 collections in
    # 60,000 GETs at 700, ~1 µs of GC a request, none at 10,000; the total CPU a request
    # within the shared machine's noise: docs/benchmarks.md, "eighth part").
    young_collection_threshold = 10_000

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *,
                 distributor: tuple[str, int] = ("127.0.0.1", 9000), timeout: float = 10.0,
                 name: str = "gateway", security: ServerSecurity = OPEN_MODE,
                 max_body_bytes: int = 1024 * 1024, status_from_errorcode: bool = True,
                 reuse_port: bool = False, metrics_dir: Path | None = None) -> None:
        """``status_from_errorcode``: answer a reply with the status its errorcode maps to
        (False: 200 for every reply, as the chapter's gateway does). ``reuse_port``: one of
        several workers sharing the port (SO_REUSEPORT, ``--workers``), whose metrics are
        shared through the files in ``metrics_dir`` (any worker's /metrics shows them all)."""
        security.check_exposure("gateway", host)
        self.host, self.port, self.timeout = host, port, timeout
        self.reuse_port = reuse_port
        self.status_from_errorcode = status_from_errorcode
        self.token = token = security.token
        self.tls = security.tls
        self.limits = security.limits
        self.max_body_bytes = max_body_bytes
        self.client_ssl = self.tls.client_context()
        self.routes: dict[str, list[tuple[str, int]]] = {}
        # Every route the distributor ever listed since start -> the service that served it
        # last: such a route with no instance is a 503, not a 404.
        self.served: dict[str, str] = {}
        self.clients: dict[tuple[str, int], ReconnectingClient] = {}
        self._rr: dict[str, itertools.count] = {}
        self.stall_retry = max(30.0, 3 * timeout)  # seconds between tries of a stalled instance
        self.registry = RegistryLink(*distributor, name=name, node_port=lambda: self.port,
                                     urls=lambda: [], token=token, ssl=self.client_ssl)
        self.registry.listeners.append(self._on_nodes)
        self.names: dict[tuple[str, int], str] = {}
        self.shipper: Any = None  # a Shipper for the gateway's access log (see attach_shipper)
        self.metrics: Any = None  # a MetricsEndpoint, when --metrics-port is given
        self.site: HttpSite | None = None
        # Counted in prometheus-client metrics (docs/metrics.md), shown on --metrics-port.
        self.prom = Metrics(metrics_dir)
        self.http_counters = HttpCounters(self.prom)
        # counted on every request: plain numbers, read into /metrics at scrape time
        self._counters = {key: self.prom.request_counter(f"logmesh_gateway_{key}_total", help_text)
                          for key, help_text in GATEWAY_COUNTERS}
        self.request_seconds = self.prom.request_histogram(
            "logmesh_request_duration_seconds", "HTTP requests by route and status: seconds "
            "until the answer.", ["route", "status"])
        self.upstream_errors = self.prom.counter(
            "logmesh_gateway_upstream_errors_total", "Gateway answers charged to a service, by "
            "the service and the status of the outcome: its reply's errorcode, 502, 504.",
            ["upstream", "status"])
        self._timers: dict[tuple[str, str, int], Any] = {}  # (method, path, status) -> histogram
        self._upstream_bytes: dict[str, bytes] = {}  # a service's name as its x-upstream value

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
                self.served[url] = node.name
        for addr in wanted - self.clients.keys():
            client = ReconnectingClient(*addr, name=f"gateway->{addr[0]}:{addr[1]}",
                                        token=self.token, ssl=self.client_ssl)
            client.start()
            self.clients[addr] = client
        for addr in self.clients.keys() - wanted:
            self.clients.pop(addr).abort()
        self.routes = routes
        self.names = names

    def _timer(self, request: HttpRequest, status: int) -> Any:
        """The latency histogram of a (method, path, status) not timed before (_finish looks
        in ``_timers`` first): a route once served stays known; any path may come as "other"."""
        method, path = request.method, request.path
        known = (method == "GET" and path == "/distributes") or f"{method}{path}" in self.served
        timer = self.request_seconds.labels(f"{method} {path}" if known else "other", str(status))
        if known:
            self._timers[(method, path, status)] = timer
        return timer

    def attach_shipper(self, shipper: Any) -> None:
        """Ship one access-log record per HTTP exchange (status, latency, upstream)."""
        self.shipper = shipper
        self.registry.listeners.append(shipper.on_nodes)

    # -- HTTP -----------------------------------------------------------------
    def serve_http(self, request: HttpRequest, respond: Respond) -> None:
        """The handler :class:`HttpSite` calls for each request: answered now (the gateway's
        own answers) or from the service's reply callback. Every answer is JSON with
        ``X-Request-Id``."""
        trace_id = request.headers.get("x-request-id") or new_trace_id()
        ex = Exchange(self, request, respond, trace_id, time.perf_counter())
        try:
            answer = self._route(request, ex)
        except Exception:  # a bug: 500 without details, the traceback in our log
            log.exception("gateway: %s %s failed", request.method, request.path)
            answer = self._error(ex, 500, "internal error")
        if answer is not None:
            self._finish(ex, answer.status, answer.body, answer.upstream)

    def _finish(self, ex: Exchange, status: int, body: bytes, upstream: str | None = None) -> None:
        """Time the exchange, ship its access log by its final status, answer it (JSON; the
        service that gave the body in X-Upstream)."""
        request = ex.request
        seconds = time.perf_counter() - ex.t0
        try:
            timer = self._timers.get((request.method, request.path, status)) or self._timer(request, status)
            timer.observe(seconds)
            self._account(request, status, ex, seconds)
        except Exception:  # a bug in the bookkeeping must not cost the client its answer
            log.exception("gateway: accounting %s %s failed", request.method, request.path)
        trace = ex.trace_id.encode("latin-1")
        if upstream is None:
            head = _HEAD % trace
        else:
            head = _HEAD_UPSTREAM % (trace, self._upstream_bytes.get(upstream)
                                     or self._upstream_bytes.setdefault(upstream, upstream.encode()))
        ex.respond(Response(status, body, head))

    def _account(self, request: HttpRequest, status: int, ex: Exchange, seconds: float) -> None:
        """Charge an error to its upstream, and ship the access log of the exchange."""
        outcome = ex.outcome if ex.outcome is not None else status
        if ex.upstream is not None and outcome >= 400:
            self.upstream_errors.labels(ex.upstream, str(outcome)).inc()
        if self.shipper is None:
            return
        # ms to the µs, half up: round(ms, 3)'s value but at a float's exact tie, in a third
        # of its time (round with digits is a correctly rounded decimal conversion, ~0.4 µs)
        took_us = int(seconds * 1_000_000 + 0.5)
        level = "error" if outcome >= 500 else "warning" if outcome >= 400 else "info"
        code, upstream = ex.errorcode, ex.upstream
        if upstream is not None and code.__class__ is int and not ex.unended:
            # a service's reply, as nearly every exchange ends: one tuple (access_log.py)
            self.shipper.ship_row((request.method, request.path, status, ex.trace_id, level,
                                   took_us, code, upstream, ex.address))
            return
        extra: dict[str, Any] = {
            "http.request.method": request.method, "url.path": request.path,
            "http.response.status_code": status, "trace.id": ex.trace_id,
            "log.level": level, "event.duration_ms": took_us / 1000}
        if code is not None:
            extra["errorcode"] = _label_value(code)
        if upstream is not None:
            extra["upstream"], extra["upstream.address"] = upstream, ex.address
        if ex.unended:  # rare: its batch takes ingest's general path (shipped.AccessFields)
            extra["upstream.unended_bytes"] = ex.unended
        self.shipper.ship_record(access_log.message(request.method, request.path, status, took_us),
                                 extra)

    @staticmethod
    def _error(ex: Exchange, status: int, message: str) -> Answer:
        """One of the gateway's own answers (the book's JSON error shape)."""
        ex.errorcode = ex.outcome = status
        return _json({"errorcode": status, "errormessage": message}, status)

    def _route(self, request: HttpRequest, ex: Exchange) -> Answer | None:
        """The gateway's own answer, or None: the request went to a service, whose reply's
        callback answers it."""
        self._counters["requests"].inc()
        method, path = request.method, request.path
        if method == "GET" and path == "/distributes":
            if AUTHORIZATION_TWICE in request.headers:
                return self._error(ex, 400, "the Authorization header was given twice with "
                                   "different values: send it once")
            if self.token and not token_matches(bearer_token(request.headers.get("authorization")),
                                                (self.token.encode(),)):
                return self._error(ex, 401, "GET /distributes needs "
                                   "'Authorization: Bearer <the mesh token>'")
            return _json(self.registry.nodes)
        route = f"{method}{path}"
        addrs = self.routes.get(route) or []
        clients = self.clients
        for addr in addrs:
            client = clients.get(addr)
            if client is not None and client.is_connected:
                break
        else:
            return self._no_instance(ex, method, path)
        try:
            ex.params = self._params(request)
        except ValueError as exc:
            return self._error(ex, exc.status if isinstance(exc, BodyError) else 400, str(exc))
        counter = self._rr.get(route)  # (setdefault would make a count a request to drop it)
        if counter is None:
            counter = self._rr[route] = itertools.count()
        ex.route, ex.addrs, ex.start = route, addrs, next(counter)
        return self._forward(ex)

    def _forward(self, ex: Exchange) -> Answer | None:
        """Send the request to the route's next instance that is connected (None: sent), or the
        answer when none is left."""
        addrs, request = ex.addrs, ex.request
        assert addrs is not None
        method, path = request.method, request.path
        while ex.tried < len(addrs):
            client_addr = addrs[(ex.start + ex.tried) % len(addrs)]
            ex.tried += 1
            client = self.clients.get(client_addr)
            if client is None or not client.is_connected:
                continue
            if client.stalled_at is not None and self._pass_over(client, addrs):
                continue
            ex.upstream = self.names.get(client_addr) or self.served.get(ex.route, "?")
            ex.address = client.address
            try:  # the params are this request's own (_params): the key goes into them
                client.call(path, method, ex.params, ex.replied, timeout=self.timeout,
                            extra={TRACE_FIELD: ex.trace_id}, own=True)
            except NotConnected:
                continue
            except orjson.JSONEncodeError as exc:  # orjson reads 1024 levels, writes 254
                return self._error(ex, 400, f"{method} {path}: the body nests too deep to "
                                   f"forward (at most 254 levels of objects and arrays): {exc}")
            return None
        if ex.upstream is None:  # every connection went between the check and the loop
            return self._no_instance(ex, method, path)
        self._counters["unreachable"].inc()
        return self._error(ex, 502, f"{method} {path}: the connection to {ex.upstream} was "
                           "lost before it answered")

    def _pass_over(self, client: ReconnectingClient, addrs: list[tuple[str, int]]) -> bool:
        """Whether to skip a stalled instance (a request to it timed out, nothing heard from it
        since: frozen, its connection open): yes while another instance of the route is
        connected and not stalled, except one request every ``stall_retry`` seconds, which
        tries it again (as nginx's max_fails/fail_timeout). Any packet from it, a late reply
        included, or a new connection ends the stall."""
        clients = self.clients
        if not any((other := clients.get(addr)) is not None and other is not client
                   and other.is_connected and other.stalled_at is None for addr in addrs):
            return False  # none better: it may answer yet
        now = asyncio.get_running_loop().time()
        if now - (client.stalled_at or now) < self.stall_retry:
            return True
        client.stalled_at = now  # this request tries it; the next ones pass it over again
        return False

    def _replied(self, ex: Exchange, reply: tuple[dict, bytes] | None,
                 exc: Exception | None) -> None:
        if reply is not None:  # the service's reply: its bytes as they came (decoded once, never
            # encoded again), its status from its errorcode (or 200, the book's)
            packet, raw = reply
            ex.errorcode = code = packet.get("errorcode")
            ex.outcome = outcome = 200 if code.__class__ is int and code == 0 else status_for(code)
            self._finish(ex, outcome if self.status_from_errorcode else 200, raw, ex.upstream or "")
            return
        method, path = ex.request.method, ex.request.path
        answer: Answer | None
        try:
            if isinstance(exc, NotConnected):  # lost while waiting: the next instance, if any
                answer = self._forward(ex)
            elif isinstance(exc, UnendedReply):  # a 504 still, as nginx's "upstream timed out
                # while reading response": the mesh view's slow rule counts it
                self._counters["timeouts"].inc()
                ex.unended = exc.nbytes
                answer = self._error(ex, 504, f"{method} {path} timed out: {ex.upstream} "
                                     f"({ex.address}) sent {exc.nbytes:,} bytes of its reply but "
                                     f"never ended it with ¶ within {self.timeout:g}s")
            elif isinstance(exc, RequestTimeout):
                self._counters["timeouts"].inc()
                answer = self._error(ex, 504, f"{method} {path} timed out: {ex.upstream} did "
                                     f"not answer within {self.timeout:g}s")
            elif isinstance(exc, BadReply):
                self._counters["bad_replies"].inc()
                answer = self._error(ex, 502, str(exc))
            else:
                raise exc or RuntimeError("no reply and no error")
        except Exception:  # a bug: 500 without details, the traceback in our log
            log.exception("gateway: %s %s failed", method, path)
            answer = self._error(ex, 500, "internal error")
        if answer is not None:
            self._finish(ex, answer.status, answer.body, answer.upstream)

    def _no_instance(self, ex: Exchange, method: str, path: str) -> Answer:
        service = self.served.get(f"{method}{path}")
        if service is None:
            self._counters["no_route"].inc()
            return self._error(ex, 404, f"no service serves {method} {path}")
        self._counters["no_instance"].inc()
        return self._error(ex, 503, f"{method} {path}: no instance of {service} is up")

    def _params(self, request: HttpRequest) -> dict:
        """The query string and the body (JSON, or a form) as the request's ``params``.

        A body is judged by what it holds, not only its content type: curl's
        ``-d '{"name":"pen"}'`` says form-urlencoded, and a text that is
        neither JSON nor a form is refused instead of becoming a field name.
        """
        if request.problem is not None:  # too big or too slow: not read (HttpSite)
            raise BodyError(*request.problem)
        body = request.body if request.method in _BODY_METHODS else b""
        if not request.query:
            return _body_params(body, request.headers) if body and body.strip() else {}
        params: dict[str, Any] = {}
        for name, value in parse_qsl(request.query.decode("latin-1"), keep_blank_values=True):
            params.setdefault(name, value)  # the first of a repeated name, as aiohttp's
        if body and body.strip():
            params.update(_body_params(body, request.headers))
        return params

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        self.site = HttpSite(self.serve_http, self.host, self.port, limits=self.limits,
                             counters=self.http_counters, ssl_context=self.tls.server_context(),
                             reuse_port=self.reuse_port, max_body=self.max_body_bytes,
                             body_timeout=BODY_TIMEOUT)
        await self.site.start()
        self.port = self.site.port
        log.info("gateway listening on %s://%s:%d", "https" if self.tls.serves else "http",
                 self.host, self.port)
        if self.shipper is not None:
            self.shipper.start()
        if self.metrics is not None:
            await self.metrics.start()
        self.registry.start()

    async def stop(self) -> None:
        if self.site is not None:  # first: the requests in progress are answered and logged
            await self.site.stop()
        await self.registry.close()
        if self.shipper is not None:
            await self.shipper.close()
        if self.metrics is not None:
            await self.metrics.stop()
        for client in list(self.clients.values()):
            await client.close()
        self.prom.close()

