"""The gateway's HTTP server: uvicorn's httptools protocol on the running loop, behind the
connection cap that aiohttp's server had from :class:`~logmesh.security_http.GuardedSite`.

Why not aiohttp here: its request handling and response objects were ~40% of the
gateway's CPU samples on the request path (bench/notes/mesh.md). Why uvicorn's protocol
and not granian: granian was cheaper still on a bare answer, but its Rust listener owns
the socket, so there is no place for ``--max-connections`` and its eviction, the counts
of refused and bad requests, or our TLS context; uvicorn's protocol is an
``asyncio.Protocol`` that a factory of ours hands out, so all of that stays.

What this adds to uvicorn's protocol: the cap (a full port closes a connection that
never sent a request, else an idle keep-alive one, else refuses the newcomer), a request
head must arrive within ``--header-timeout`` and stay within aiohttp's old sizes, bad
requests are counted and logged rate-limited, an answer's head and body go out in one
send (uvicorn writes them apart: two syscalls a request), and a Date header. The idle
keep-alive connection's timeout is kept by the site's sweep too, not by a timer that uvicorn
starts and cancels per request (~3 µs of the gateway's request path on uvloop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ..guard import LISTEN_BACKLOG, RateLimitedLog, Refused, raise_nofile_limit
from ..security import DEFAULT_HTTP_IDLE_TIMEOUT, Limits
from ..security_http import HttpCounters

log = logging.getLogger("logmesh.http")

Asgi = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]],
                Awaitable[None]]

BODY_DONE = "logmesh.body_done"  # the scope's key for [whether its body has all arrived]
MAX_LINE_BYTES = 8190  # the request line and each header, as aiohttp's server allowed
MAX_HEADERS = 128


def body_complete(scope: dict) -> bool:
    """Has the whole body of the request of ``scope`` arrived? Then reading it cannot wait,
    and the gateway reads it without a deadline (asyncio.timeout: a timer per request)."""
    done = scope.get(BODY_DONE)
    return done is not None and done[0]


class HeadTooLarge(Exception):
    """Raised inside httptools' callbacks: uvicorn answers 400 and closes."""


class _Log:
    """uvicorn's logger, rate limited: a flood of bad requests is not a flood of lines."""

    level = logging.WARNING  # uvicorn compares it with its TRACE level

    def __init__(self, logger: logging.Logger) -> None:
        self.rated = RateLimitedLog(logger)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.rated.warning(msg, *args, **kwargs)

    error = warning

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            self.rated.warning(msg, *args, **kwargs)


class CoalescingTransport:
    """A transport whose writes in one turn of the loop go out in one send at its end."""

    __slots__ = ("transport", "_out", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._out: list[bytes] = []
        self._loop = loop

    def write(self, data: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self.flush)
        self._out.append(data)

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:  # asked several times a request: not through __getattr__
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol with the head's deadline and sizes, counted bad requests and
    coalesced writes; ``site`` keeps the connection count."""

    def __init__(self, site: HttpSite) -> None:
        super().__init__(site.config, site.state, {}, _loop=site.loop)
        self.site = site
        self.logger = site.log  # type: ignore[assignment]
        self.requests = 0  # request heads completed on this connection
        self.gone = False
        # When the request head now awaited began (None: none awaited): the site's sweep closes
        # the connection past the header timeout. A sweep, not a timer per request.
        self.head_since: float | None = None
        self.idle_since: float | None = None  # answered, no new request begun: keep-alive
        self._headers = 0
        self._body_done = [False]

    @property
    def idle(self) -> bool:
        """Not inside a request: none began, or the last one was answered."""
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self.head_since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.head_since = None
        self.site.forget(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.idle_since = None
        self._headers = 0
        if self.requests:  # a keep-alive connection's next request: its head has a deadline too
            self.head_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_LINE_BYTES:
            raise HeadTooLarge("request line too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if self._headers > MAX_HEADERS or len(name) + len(value) > MAX_LINE_BYTES:
            raise HeadTooLarge("too many or too long headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_since = None
        self.requests += 1
        # A flag, not the cycle itself: the scope in the cycle and the cycle in the scope would
        # be a reference cycle per request, left to the garbage collector (+10% CPU here)
        self._body_done = self.scope[BODY_DONE] = [False]  # type: ignore[literal-required]
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_done[0] = True

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive timeout left to the site's sweep (``idle_since``)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_since = self.loop.time()

    def send_400_response(self, msg: str) -> None:
        self.site.counters.bad_requests.inc()  # uvicorn has logged it (rate limited: _Log)
        self.head_since = None
        super().send_400_response(msg)


class HttpSite:
    """An ASGI app served on ``host:port`` by :class:`GuardedHttpProtocol`, at most
    ``limits.max_connections`` connections at a time (counted from ``connection_made``'s
    factory, so a burst cannot overshoot)."""

    def __init__(self, app: Asgi, host: str, port: int, *, limits: Limits,
                 counters: HttpCounters, ssl_context: Any = None, reuse_port: bool = False) -> None:
        self.app, self.host, self.port = app, host, port
        self.limits, self.counters = limits, counters
        self.ssl_context, self.reuse_port = ssl_context, reuse_port
        self.log = _Log(log)
        # No websockets (an Upgrade is answered as plain HTTP), no proxy headers trusted, no
        # logging setup of uvicorn's own: the gateway logs through logmesh's loggers.
        self.config = uvicorn.Config(
            app, http="httptools", ws="none", interface="asgi3", lifespan="off",
            proxy_headers=False, access_log=False, log_config=None, server_header=False,
            date_header=False,
            timeout_keep_alive=min(limits.header_timeout, DEFAULT_HTTP_IDLE_TIMEOUT))  # type: ignore[arg-type]
        self.config.load()
        self.state = ServerState()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.AbstractServer | None = None
        self._protocols: dict[GuardedHttpProtocol, float] = {}  # -> when accepted
        self._tick: asyncio.TimerHandle | None = None

    def _sweep(self) -> None:
        """Every second at most: the Date header, and connections whose request head is late
        (slowloris) closed."""
        self.state.default_headers = [(b"date", formatdate(usegmt=True).encode())]
        assert self.loop is not None
        timeout = self.limits.header_timeout
        now = self.loop.time()
        late, idle = now - timeout, now - self.config.timeout_keep_alive
        for protocol in self._protocols:
            head, kept = protocol.head_since, protocol.idle_since
            if ((head is not None and head < late) or (kept is not None and kept < idle)) \
                    and protocol.transport is not None and not protocol.transport.is_closing():
                protocol.head_since = protocol.idle_since = None
                protocol.transport.close()
        self._tick = self.loop.call_later(min(1.0, timeout / 2, self.config.timeout_keep_alive / 2),
                                          self._sweep)

    def forget(self, protocol: GuardedHttpProtocol) -> None:
        self._protocols.pop(protocol, None)

    def _make_room(self) -> bool:
        """As GuardedSite's: forget handshakes that never finished; if still full, close the
        oldest connection that never sent a request head, else the oldest idle keep-alive
        one; False when every connection is inside a request."""
        now = time.monotonic()
        grace = self.limits.header_timeout + 1
        self._protocols = {p: t for p, t in self._protocols.items()
                           if not p.gone and (p.transport is not None or now - t < grace)}
        if len(self._protocols) < self.limits.max_connections:
            return True
        idle = [p for p in self._protocols if p.transport is not None and p.idle]
        victim = next((p for p in idle if p.requests == 0), idle[0] if idle else None)
        if victim is None:
            return False
        self.counters.evicted.inc()
        self.log.warning("HTTP: closing %s (%s for %.1fs) to make room: the port is full "
                         "(--max-connections %d)", victim.client, "idle" if victim.requests
                         else "no request", now - self._protocols.pop(victim),
                         self.limits.max_connections)
        victim.transport.close()
        return True

    def _accept(self) -> asyncio.BaseProtocol:
        if len(self._protocols) >= self.limits.max_connections and not self._make_room():
            self.counters.refused.inc()
            self.log.warning("HTTP: %d connections open, all with a request (--max-connections); "
                             "closing a new one", self.limits.max_connections)
            return Refused()
        protocol = GuardedHttpProtocol(self)
        self._protocols[protocol] = time.monotonic()
        return protocol

    async def start(self) -> None:
        raise_nofile_limit()
        self.loop = asyncio.get_running_loop()
        self._sweep()
        self.server = await self.loop.create_server(
            self._accept, self.host, self.port, ssl=self.ssl_context, backlog=LISTEN_BACKLOG,
            reuse_port=self.reuse_port or None,
            ssl_handshake_timeout=self.limits.header_timeout if self.ssl_context else None)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop listening, close idle connections, let requests in progress be answered (up to
        ``grace`` seconds), then close what is left."""
        if self._tick is not None:
            self._tick.cancel()
        if self.server is None:
            return
        self.server.close()
        for protocol in list(self.state.connections):
            protocol.shutdown()
        deadline = time.monotonic() + grace
        while self.state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for protocol in list(self.state.connections):
            if not protocol.transport.is_closing():
                protocol.transport.close()
        self.server = None
