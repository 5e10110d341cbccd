"""The service base class: the book's ``tcpServer`` in Python.

A service names itself, listens on a port, registers with the distributor
and answers request packets by route (``"POST/goods"``). Every request is
first handed to ``on_request`` -- the log-shipping hook -- before its handler
runs, as the chapter's ``writeLog`` does.

A request without a key (a JSON array body through the book's gateway, whose
``params.key`` ``JSON.stringify`` drops) is counted and not answered: a reply
with ``key: null`` kills the book's gateway, and nobody waits for it anyway.
Its handler does not run either: a write nobody can learn of would only be
repeated when the caller retries. A request split by a raw ``¶`` is answered
400 at once (``FramedConnection.on_torn``) instead of never.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from ..guard import LISTEN_BACKLOG, ConnectionGuard
from ..lifecycle import Serving
from ..metrics import Metrics
from ..protocol import Node, encode, reply_key
from ..security import OPEN_MODE, ServerSecurity
from ..terminal import shown
from .connection import FramedConnection
from .metrics_http import CountedPart
from .registry import RegistryLink

log = logging.getLogger("logmesh.mesh.service")

Handler = Callable[[Any, dict], Any | Awaitable[Any]]
RequestHook = Callable[[bytes, dict, "FramedConnection"], None]


# (stats key, metric, help) of a service's counters, labelled ``service``.
SERVICE_COUNTERS = (
    ("requests", "logmesh_service_requests_total", "Request packets received."),
    ("errors", "logmesh_service_errors_total", "Requests answered with an error."),
    ("unknown_routes", "logmesh_service_unknown_routes_total", "Requests for a route not served."),
    ("keyless", "logmesh_service_keyless_requests_total",
     "Requests with no key (params.key or key): not answered, not handled."),
    ("framing_errors", "logmesh_service_framing_errors_total",
     "Requests split by a raw ¶ in their JSON, answered with error 400."),
)


class HandlerError(Exception):
    """Raise from a handler to answer with an error code and message."""

    def __init__(self, message: str, errorcode: int = 1) -> None:
        super().__init__(message)
        self.errorcode = errorcode


class Later:
    """A handler's result that comes later, from a callback (a store's group commit): the
    service answers in ``settle``'s own call, with no Future, done-callback, loop handle or
    closure per request (the Future's ``set_result`` answered a turn later, through
    ``call_soon``). Awaitable, for callers outside a service (the tests)."""

    __slots__ = ("_service", "_request", "_outcome", "_waiter")

    def __init__(self) -> None:
        self._service: Service | None = None
        self._request: tuple | None = None
        self._outcome: tuple[Any, BaseException | None] | None = None
        self._waiter: asyncio.Future | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Give the result (or ``error``, answered as a handler's failure); once."""
        if self._outcome is not None:
            return
        self._outcome = (result, error)
        if self._service is not None:
            self._service._answer_later(self, *self._request)  # type: ignore[misc]
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(result)

    def done(self) -> bool:
        return self._outcome is not None

    def _bind(self, service: Service, request: tuple) -> None:
        self._service, self._request = service, request
        if self._outcome is not None:  # settled before the service took it
            service._answer_later(self, *request)

    def __await__(self) -> Any:
        if self._outcome is None:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            return (yield from self._waiter.__await__())
        result, error = self._outcome
        if error is not None:
            raise error
        return result


def settle_group(group: Iterable[tuple[Later, Any]], error: BaseException | None = None) -> None:
    """Settle a group of :class:`Later` s (a store's commit) with their results, or every one
    with ``error``, and send their replies before returning: one send per connection for the
    group. ``FramedConnection.write`` sends at the end of the loop's turn, and a commit runs
    from ``call_soon``, so its replies waited for the next turn, after the loop had read and
    handled what came meanwhile (the next group's INSERTs): a turn of latency per write."""
    conns: dict[Any, None] = {}
    for later, result in group:
        if error is not None:
            later.settle(error=error)
        else:
            later.settle(result)
        request = later._request
        if request is not None:
            conns[request[0]] = None
    for conn in conns:
        conn.flush()


def print_request(raw: bytes, packet: dict, conn: FramedConnection) -> None:
    """The book's behaviour with no logs service known: print the packet (opt-in,
    ``logmesh service --no-ship --print-requests``: a write per request costs a busy service
    more than its handler). Valid JSON carries C1 controls and bidi overrides unescaped in
    its strings: they are shown as signs of themselves (:func:`logmesh.terminal.shown`), as
    in every other line logmesh prints, so a request cannot forge the reader's screen."""
    print(shown(raw.decode("utf-8", "replace")), flush=True)


class Service(CountedPart, Serving):
    """A mesh node serving ``routes``; subclass or pass handlers in."""

    def __init__(
        self,
        name: str,
        port: int,
        routes: dict[str, Handler],
        *,
        host: str = "127.0.0.1",
        distributor: tuple[str, int] | None = ("127.0.0.1", 9000),
        max_frame_bytes: int = 1024 * 1024,
        security: ServerSecurity = OPEN_MODE,
        reuse_port: bool = False,
        metrics_dir: Path | None = None,
    ) -> None:
        """``reuse_port``: one of several workers sharing the port (SO_REUSEPORT,
        ``--workers``), whose metrics are shared through the files in ``metrics_dir``."""
        security.check_exposure(f"{name} service", host)
        self.reuse_port = reuse_port
        self.name, self.host, self.port = name, host, port
        self.token = security.token
        self.tls = security.tls
        self.routes = dict(routes)
        self.distributor_addr = distributor
        self.max_frame_bytes = max_frame_bytes
        self.on_request: RequestHook | None = None  # the shipper's ship, or print_request
        self.server: asyncio.AbstractServer | None = None
        self.registry: RegistryLink | None = None
        self.node_listeners: list[Callable[[list[Node]], None]] = []
        self.connections: set[FramedConnection] = set()
        # Counted in prometheus-client metrics (docs/metrics.md), shown on --metrics-port.
        self.prom = Metrics(metrics_dir)
        self.guard = ConnectionGuard(name, security.limits, security.guard_tokens, metrics=self.prom,
                                     labels={"service": name})
        # counted on every request: plain numbers, read into /metrics at scrape time
        self._counters = {key: self.prom.request_counter(metric, help_text, ["service"]).labels(name)
                          for key, metric, help_text in SERVICE_COUNTERS}
        self.request_seconds = self.prom.request_histogram(
            "logmesh_request_duration_seconds", "Requests by route and reply errorcode (0: "
            "success): seconds from the request packet to its reply.", ["service", "route", "status"])
        self._timers: dict[tuple[str, int], Any] = {}
        self.shipper: Any = None  # set by Shipper.attach
        self.metrics: Any = None  # a MetricsEndpoint, when --metrics-port is given
        self.on_stop: list[Callable[[], None]] = []  # run last in stop() (a store's close)

    @property
    def urls(self) -> list[str]:
        return list(self.routes)

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self.guard.factory(self._make_connection), self.host, self.port,
            ssl=self.tls.server_context(), backlog=LISTEN_BACKLOG, reuse_port=self.reuse_port or None,
            ssl_handshake_timeout=self.guard.limits.header_timeout if self.tls.serves else None)
        self.port = self.server.sockets[0].getsockname()[1]  # --port 0 picks a free one
        log.info("%s listening on %s:%d", self.name, self.host, self.port)
        if self.shipper is not None:
            self.shipper.start()
        if self.metrics is not None:
            await self.metrics.start()
        if self.distributor_addr is not None:
            host, port = self.distributor_addr
            self.registry = RegistryLink(host, port, name=self.name,
                                         node_port=lambda: self.port, urls=lambda: self.urls,
                                         token=self.token, ssl=self.tls.client_context())
            self.registry.listeners = self.node_listeners  # one list: hooks added later still hear
            self.registry.start()

    async def stop(self) -> None:
        # 1. stop accepting; 2. close the registry link (its disconnect is our goodbye);
        # 3. close open connections.
        self.guard.close()
        if self.server is not None:
            self.server.close()
        if self.registry is not None:
            await self.registry.close()
        for conn in list(self.connections):
            conn.close()
        if self.shipper is not None:
            await self.shipper.close()  # send (or spool) what is still queued
        if self.metrics is not None:
            await self.metrics.stop()
        if self.server is not None:
            await self.server.wait_closed()
        for hook in self.on_stop:
            hook()
        self.prom.close()


    @property
    def nodes(self) -> list[dict]:
        """The distributor's latest list of nodes."""
        return self.registry.nodes if self.registry is not None else []

    # -- requests -------------------------------------------------------------
    def _make_connection(self) -> FramedConnection:
        conn = FramedConnection(self._on_packet, self.connections.discard,
                                max_frame_bytes=self.max_frame_bytes, name=self.name,
                                guard=self.guard, on_torn=self._on_torn)
        self.connections.add(conn)
        return conn

    def _replied(self, conn: FramedConnection, reply: dict, route: str, t0: float) -> None:
        """Send a reply and time its request (``route`` is one this service serves, or other)."""
        conn.send(reply)
        key = (route if route in self.routes else "other", reply.get("errorcode", 0))
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = self.request_seconds.labels(self.name, key[0], str(key[1]))
        timer.observe(time.perf_counter() - t0)

    def _on_packet(self, conn: FramedConnection, raw: bytes, packet: dict) -> None:
        t0 = time.perf_counter()
        self._counters["requests"].inc()
        hook = self.on_request
        if hook is not None:
            try:
                hook(raw, packet, conn)
            except Exception:  # shipping must never break serving
                log.exception("%s: log hook failed", self.name)
        key = reply_key(packet)
        route = f"{packet.get('method', '')}{packet.get('uri', '')}"
        if key is None:
            self._keyless(conn, route)
            return
        handler = self.routes.get(route)
        if handler is None:
            self._counters["unknown_routes"].inc()
            self._replied(conn, self._error(key, 404, f"unknown route {route!r}; this service "
                                                      f"serves {self.urls}"), route, t0)
            return
        params = packet.get("params")
        try:
            result = handler(params, packet)
        except Exception as exc:
            self._replied(conn, self._handler_failed(key, route, exc, packet), route, t0)
            return
        if result.__class__ is list or result.__class__ is dict:  # a plain answer: no checks
            self._send_result(conn, key, route, result, packet, t0)
        elif result.__class__ is Later:  # answered from its settle
            result._bind(self, (conn, key, route, packet, t0))
        elif isinstance(result, asyncio.Future):  # answered from its callback: no task per request
            result.add_done_callback(
                lambda fut: self._settled(conn, key, route, fut, packet, t0))
        elif inspect.isawaitable(result):
            asyncio.ensure_future(self._finish(conn, key, route, result, packet, t0))
        else:
            self._send_result(conn, key, route, result, packet, t0)

    def _keyless(self, conn: FramedConnection, route: str) -> None:
        self._counters["keyless"].inc()
        self.guard.warn.warning("%s %s:%s: %s request without a key (params.key or key) "
                                "dropped: no reply could be matched to it",
                                self.name, *conn.peer, route)

    def _on_torn(self, conn: FramedConnection, packet: dict) -> None:
        """A request whose JSON held a raw ``¶``: its caller learns why at once."""
        key = reply_key(packet)
        if key is None:
            self._keyless(conn, f"{packet.get('method', '')}{packet.get('uri', '')}")
            return
        self._counters["framing_errors"].inc()
        self._replied(conn, self._error(key, 400, "the request's JSON held a raw ¶ (U+00B6), "
                                                  "which ends a frame; send it escaped as \\u00b6"),
                      f"{packet.get('method', '')}{packet.get('uri', '')}", time.perf_counter())

    def _settled(self, conn: FramedConnection, key: Any, route: str, fut: asyncio.Future,
                 packet: dict, t0: float) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            failure = exc if isinstance(exc, Exception) else RuntimeError("the handler was cancelled")
            self._replied(conn, self._handler_failed(key, route, failure, packet), route, t0)
            return
        self._send_result(conn, key, route, fut.result(), packet, t0)

    def _answer_later(self, later: Later, conn: FramedConnection, key: Any, route: str,
                      packet: dict, t0: float) -> None:
        """Answer a :class:`Later`; a failure here is logged, as a Future's callback's would be,
        and never reaches the code that settled it (a store answering a whole group)."""
        result, error = later._outcome  # type: ignore[misc]
        try:
            if error is not None:
                failure = error if isinstance(error, Exception) else RuntimeError(str(error))
                self._replied(conn, self._handler_failed(key, route, failure, packet), route, t0)
            else:
                self._send_result(conn, key, route, result, packet, t0)
        except Exception:
            log.exception("%s: answering %s failed", self.name, route)

    async def _finish(self, conn: FramedConnection, key: Any, route: str, pending: Awaitable,
                      packet: dict, t0: float) -> None:
        try:
            result = await pending
        except Exception as exc:
            self._replied(conn, self._handler_failed(key, route, exc, packet), route, t0)
            return
        self._send_result(conn, key, route, result, packet, t0)

    def _send_result(self, conn: FramedConnection, key: Any, route: str, result: Any,
                     packet: dict, t0: float) -> None:
        """A handler's result as its reply (``route`` is one this service serves): encoded, sent
        and timed here, with no reply dict passed on through ``_replied`` and ``send``."""
        try:
            data = encode({"key": key, "errorcode": 0, "errormessage": "success", "results": result})
        except TypeError as exc:  # orjson.JSONEncodeError: the result is not JSON
            self._replied(conn, self._handler_failed(key, route, exc, packet), route, t0)
            return
        conn.write(data)
        timer = self._timers.get((route, 0))
        if timer is None:
            timer = self._timers[(route, 0)] = self.request_seconds.labels(self.name, route, "0")
        timer.observe(time.perf_counter() - t0)

    def _handler_failed(self, key: Any, route: str, exc: Exception, packet: dict) -> dict:
        self._counters["errors"].inc()
        if isinstance(exc, HandlerError):
            reply = self._error(key, exc.errorcode, str(exc))
        else:
            log.exception("%s: handler for %s failed", self.name, route, exc_info=exc)
            reply = self._error(key, 500, "internal error")  # details stay in our own log
        if self.shipper is not None:  # the error goes to the logs too, tied to its request
            extra = {"log.level": "error", "http.request.method": packet.get("method"),
                     "url.path": packet.get("uri"), "trace.id": packet.get("trace.id"),
                     "http.response.status_code": reply["errorcode"]}
            if not isinstance(exc, HandlerError):
                extra["error.stack_trace"] = "".join(traceback.format_exception(exc))
            self.shipper.ship_record(f"{route} failed: {exc}", extra)
        return reply

    @staticmethod
    def _error(key: Any, code: int, message: str) -> dict:
        return {"key": key, "errorcode": code, "errormessage": message}
