"""The HTTP side of :mod:`logmesh.security`: a connection-capped site, bearer tokens,
JSON errors that never leak internals. Kept apart so clients (the shipper, the
``logging`` handler) do not import aiohttp's server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .guard import (
    ACCEPT_BATCH,
    LISTEN_BACKLOG,
    RateLimitedLog,
    Refused,
    deep_listen,
    raise_nofile_limit,
)
from .metrics import Metrics, number, value
from .security import DEFAULT_HTTP_IDLE_TIMEOUT, Access, Limits, bearer_token

BODY_TIMEOUT = 60.0  # seconds a request body may take to arrive (slow bodies get 408)
# ... and the rate it must keep up, as Apache's mod_reqtimeout (body=20,MinRate=500): BODY_GRACE
# seconds, then one more per BODY_MIN_RATE bytes received. A body dribbled a byte a second held
# its slot a minute, and a port full of them answered nobody else (found from outside).
BODY_GRACE = 10.0
BODY_MIN_RATE = 500  # bytes a second

# -- HTTP -------------------------------------------------------------------------


class HttpCounters:
    """A :class:`GuardedSite`'s counts, prometheus-client counters in ``metrics`` (the
    server's; a registry of their own if None) with ``labels`` on every sample: connections
    refused past ``--max-connections``, closed to make room, requests the HTTP parser refused
    (aiohttp's on the logs service, httptools' on the gateway).

    Made with the server, not with its site (made at start), so ``/metrics`` lists them
    from the first scrape.
    """

    def __init__(self, metrics: Metrics | None = None, labels: dict[str, str] | None = None) -> None:
        m = metrics or Metrics()
        labels = labels or {}

        def counter(name: str, help_text: str) -> Any:
            c = m.counter(name, help_text, list(labels))
            return c.labels(*labels.values()) if labels else c

        self.refused = counter("logmesh_http_refused_connections_total",
                               "HTTP connections closed past --max-connections.")
        self.evicted = counter("logmesh_http_evicted_connections_total", "HTTP connections closed "
                               "to make room (never sent a request, or idle keep-alive).")
        self.bad_requests = counter("logmesh_http_bad_requests_total", "HTTP requests the "
                                    "server could not parse (answered 400, logged rate-limited).")
        self.client_disconnects = counter(
            "logmesh_http_client_disconnects_total", "HTTP requests whose client went away "
            "before the request was read or answered (e.g. in the middle of its body).")

    @property
    def stats(self) -> dict[str, int]:
        """The counts, read from the metrics."""
        return {"refused_connections": int(number(value(self.refused))),
                "evicted": int(number(value(self.evicted))),
                "bad_requests": int(number(value(self.bad_requests)))}


class BadRequestLog:
    """Stands in for aiohttp's server logger on our connections: aiohttp logs each malformed
    request with a full traceback (11 lines a request, no limit); here one line each, rate
    limited, and counted in ``bad_requests`` (a counter)."""

    def __init__(self, logger: logging.Logger, bad_requests: Any,
                 client_disconnects: Any = None) -> None:
        self.logger, self.bad_requests = logger, bad_requests
        self.client_disconnects = client_disconnects
        self.warn = RateLimitedLog(logger)

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.bad_requests.inc()
            self.warn.warning(msg + ": %s", *args, _describe(exc_info))
        elif isinstance(exc_info, ConnectionError) and self.client_disconnects is not None:
            # A client that went away mid-body (the handler's read raised ConnectionResetError):
            # not a fault of the server, so no traceback (about 20 lines each), one line.
            self.client_disconnects.inc()
            self.warn.warning(msg + ": the client went away before the request was read (%s)",
                              *args, f"{type(exc_info).__name__}: {exc_info}"[:200])
        else:  # not the client's fault: keep the traceback, but not a flood of them
            self.warn.warning(msg, *args, exc_info=exc_info or True)

    def debug(self, msg: str, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):  # e.g. TLS or garbage on the HTTP port
            self.bad_requests.inc()
            self.logger.debug(msg + ": %s", *args, _describe(exc_info))
        else:
            self.logger.debug(msg, *args, exc_info=exc_info, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)


def _peer(handler: Any) -> str:
    peer = handler.peername
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a peer"


def _describe(exc: HttpProcessingError) -> str:
    """One line: aiohttp's messages point at the bad byte over several lines."""
    return f"{type(exc).__name__}: {' '.join(str(exc.message).split())}"[:200]


def oldest_victim(conns: dict[Any, float], now: float, grace: float, *,
                  gone: Callable[[Any], bool], silent: Callable[[Any], bool],
                  idle: Callable[[Any], bool]) -> Any:
    """For a full HTTP port: the oldest connection of ``conns`` (protocol -> when accepted,
    oldest first) that never sent a request (``silent``), else the oldest ``idle`` keep-alive
    one, else None. Those ``gone``, and handshakes never made within ``grace`` seconds, met
    on the way are forgotten (closed ones are forgotten when they close, by the sites).

    It stops at the first silent one, and a flood's are the oldest: one eviction is a few
    steps, not a pass over every connection. Two passes over the 1,024 of a full port were
    177 us of CPU a newcomer, most of the logs worker's work in a reconnecting idle flood
    (tests/security/test_idle_flood.py), whose loop then held a shipper's ack for seconds
    at load ~20."""
    dead, kept, victim = [], None, None
    for conn, accepted in conns.items():
        if gone(conn) or (conn.transport is None and now - accepted >= grace):
            dead.append(conn)
        elif conn.transport is None:  # a TLS handshake under way: not closable yet
            continue
        elif silent(conn):
            victim = conn
            break
        elif kept is None and idle(conn):
            kept = conn
    for conn in dead:
        del conns[conn]
    return victim if victim is not None else kept


class GuardedSite(web.TCPSite):
    """A ``TCPSite`` that caps connections (aiohttp has none), bounds the TLS handshake by
    the header timeout and logs bad requests in one line (:class:`BadRequestLog`).

    Connections count from the moment asyncio accepts them (``server._connections``
    moves only in ``connection_made``, after a whole burst was accepted). A full
    port closes a connection that is not inside a request for the newcomer (one
    that never sent a complete request head first); only a port full of requests
    in progress refuses it. ``counters``: where it counts (:class:`HttpCounters`).
    """

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 limits: Limits | None = None, counters: HttpCounters | None = None,
                 **kwargs: Any) -> None:
        super().__init__(runner, host, port, backlog=LISTEN_BACKLOG, **kwargs)
        self.limits = limits or Limits()
        self.counters = counters or HttpCounters()
        self.log = BadRequestLog(logging.getLogger("logmesh.http"), self.counters.bad_requests,
                                 self.counters.client_disconnects)
        self._handlers: dict[Any, float] = {}  # every connection's handler: when accepted

    @property
    def stats(self) -> dict[str, int]:
        return self.counters.stats

    @property
    def refused(self) -> int:
        return self.stats["refused_connections"]

    def _make_room(self) -> bool:
        """Forget closed handlers; if still full, close the oldest connection that never sent
        a complete request head, else the oldest idle keep-alive one (its client reconnects);
        False when every connection is inside a request."""
        now = time.monotonic()
        grace = self.limits.header_timeout + 1  # a TLS handshake that never finished
        victim = oldest_victim(
            self._handlers, now, grace, gone=lambda h: h._manager is None,
            silent=lambda h: h._request_count == 0,
            idle=lambda h: h._waiter is not None and not h._waiter.done())
        if len(self._handlers) < self.limits.max_connections:
            return True
        if victim is None:
            return False
        self.counters.evicted.inc()
        self.log.warn.warning("HTTP: closing %s (%s for %.1fs) to make room: the port is full "
                              "(--max-connections %d)", _peer(victim),
                              "idle" if victim._request_count else "no request",
                              now - self._handlers.pop(victim), self.limits.max_connections)
        victim.force_close()
        return True

    async def start(self) -> None:
        raise_nofile_limit()
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        limit = self.limits.max_connections
        # aiohttp (3.14) has no public hook for a closed connection: its RequestHandler tells
        # only Server.connection_lost, wrapped here. tests/security/test_guarded_site.py fails
        # if an upgrade renames it, changes its signature or stops calling it.
        lost = server.connection_lost

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._handlers.pop(handler, None)  # forgotten now: _make_room never passes over it
            lost(handler, exc)

        server.connection_lost = connection_lost  # type: ignore[method-assign]

        def factory() -> asyncio.BaseProtocol:
            if len(self._handlers) >= limit and not self._make_room():
                self.counters.refused.inc()
                self.log.warn.warning("HTTP: %d connections open, all with a request "
                                      "(--max-connections); closing a new one", limit)
                return Refused()
            handler = server()
            handler.logger = self.log
            self._handlers[handler] = time.monotonic()
            return handler

        self._server = await loop.create_server(
            factory, self._host, self._port, ssl=self._ssl_context, backlog=ACCEPT_BATCH,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self.limits.header_timeout if self._ssl_context else None)
        deep_listen(self._server)  # self._backlog (LISTEN_BACKLOG) for the kernel's queue
        self._bound_port = self._server.sockets[0].getsockname()[1]

    @property
    def bound_port(self) -> int:
        return self.port


def runner_kwargs(limits: Limits) -> dict:
    """aiohttp's request handler options from our limits: its keep-alive timer also
    closes a connection whose request head does not arrive in time (slowloris)."""
    return {"keepalive_timeout": min(limits.header_timeout, DEFAULT_HTTP_IDLE_TIMEOUT),
            "max_line_size": 8190, "max_field_size": 8190, "max_headers": 128}


def json_response(obj: Any, status: int = 200) -> web.Response:
    """JSON with orjson: several times faster than ``web.json_response`` on search pages."""
    return web.Response(body=orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


def json_error(message: str, status: int = 400, **extra: Any) -> web.Response:
    """The one error shape of every HTTP answer logmesh makes: ``{"ok": false, "error",
    "status"}``, plus what a caller can act on (``retry_after``, ``position``, ...)."""
    return json_response({"ok": False, "error": message, "status": status, **extra}, status)


def error_middleware(logger: logging.Logger) -> Any:
    """Errors as JSON; unexpected exceptions become a 500 that says nothing of the internals
    (the traceback goes to ``logger`` under an id the client is given). A declared body
    over the app's ``client_max_size`` is answered 413 at once: waiting for a body that
    will be refused anyway held the connection until the body timeout."""

    @web.middleware
    async def errors(request: web.Request, handler: Callable) -> web.StreamResponse:
        declared = request.content_length
        if declared is not None and declared > request.client_max_size:
            resp = json_error(f"the body is {declared} bytes; at most {request.client_max_size} "
                              "are accepted (--max-body-size)", 413)
            resp.force_close()
            return resp
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.content_type == "application/json":
                return _as_response(exc)
            text = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
            resp = json_error(text, exc.status)
            for name in ("Allow", "WWW-Authenticate", "Retry-After"):
                if name in exc.headers:
                    resp.headers[name] = exc.headers[name]
            return resp
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            error_id = os.urandom(6).hex()
            logger.exception("HTTP %s %s failed (error id %s)", request.method, request.path,
                             error_id)
            return json_error(f"internal error (id {error_id}); the details are in the service's "
                              "log", 500)
        return resp

    return errors


def _as_response(exc: web.HTTPException) -> web.Response:
    return web.Response(status=exc.status, body=exc.body, headers=exc.headers)


def bearer_middleware(access: Access, *, open_paths: Callable[[str], bool],
                      bad_requests: Any = None) -> Any:
    """``Authorization: Bearer``: reads need a read token, anything else a write token.

    ``Authorization`` given twice with different values is refused (400, counted in
    ``bad_requests``), as Elasticsearch refuses a single-valued header given twice: which
    one a proxy or a client meant cannot be told, and reading the first let a request
    pass here that a proxy in front judged by the second. The same value repeated is one."""

    @web.middleware
    async def bearer(request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.method == "OPTIONS" or open_paths(request.path):
            return await handler(request)
        given = request.headers.getall("Authorization", ())
        if len(given) > 1 and len(set(given)) > 1:
            if bad_requests is not None:
                bad_requests.inc()
            return json_error(f"the Authorization header was given {len(given)} times with "
                              "different values: send it once", 400)
        token = bearer_token(given[0] if given else None)
        route_handler = request.match_info.route.handler
        # A read is GET/HEAD, or a route that says it only reads (a search sent by POST
        # because its query is longer than a request line).
        reading = request.method in ("GET", "HEAD") or getattr(route_handler, "reads_only", False)
        if (access.may_read if reading else access.may_write)(token):
            return await handler(request)
        # A shipper's probe (Elasticsearch's `_license`, templates) answers constants: the
        # shipper holds only the write token, and either side's token opens it.
        if getattr(route_handler, "shipper_probe", False) and (
                access.may_read(token) or access.may_write(token)):
            return await handler(request)
        side = "read" if reading else "write"
        if token is not None and (access.may_write if reading else access.may_read)(token):
            return json_error(f"this token may not {side}; use a {side} token "
                              f"(--{side}-token or --token)", 403)
        why = "no token was sent" if token is None else "the token is wrong"
        resp = json_error(f"authentication required ({why}): send 'Authorization: Bearer "
                          f"<token>' with a {side} token (--token or --{side}-token)", 401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="logmesh"'
        return resp

    return bearer
