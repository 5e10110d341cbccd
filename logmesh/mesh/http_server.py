"""The gateway's HTTP server: :class:`~.http_protocol.HttpProtocol` (httptools' parser, no
ASGI) on the running loop, behind the connection cap that aiohttp's server had from
:class:`~logmesh.security_http.GuardedSite`.

Why not aiohttp: its request handling and response objects were ~40% of the gateway's CPU
samples on the request path; why not uvicorn's protocol any more: its task, ASGI scope and
cycle per request were ~40% of what was left (bench/notes/mesh.md). Why not granian: its Rust
listener owns the socket, so there is no place for ``--max-connections`` and its eviction, the
counts of refused and bad requests, or our TLS context.

What the site keeps for all its connections: the cap (a full port closes a connection that
never sent a request, else an idle keep-alive one, else refuses the newcomer), one sweep a
second at most for every deadline (a request head within ``--header-timeout``, an idle
keep-alive connection, a body within ``body_timeout``: no timer per request, ~3 µs each on
uvloop) and the Date header.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from typing import Any

from ..guard import LISTEN_BACKLOG, RateLimitedLog, Refused, raise_nofile_limit
from ..security import DEFAULT_HTTP_IDLE_TIMEOUT, Limits
from ..security_http import BODY_TIMEOUT, HttpCounters, oldest_victim
from .http_protocol import Handler, HttpProtocol

log = logging.getLogger("logmesh.http")


class HttpSite:
    """``handler`` served on ``host:port``, at most ``limits.max_connections`` connections at a
    time (counted from ``connection_made``'s factory, so a burst cannot overshoot).

    ``handler(request, respond)`` is called for each request whose body has arrived (or will
    not: ``request.problem``) and answers by calling ``respond`` once, now or later."""

    def __init__(self, handler: Handler, host: str, port: int, *, limits: Limits,
                 counters: HttpCounters, ssl_context: Any = None, reuse_port: bool = False,
                 max_body: int = 1024 * 1024, body_timeout: float = BODY_TIMEOUT) -> None:
        self.handler, self.host, self.port = handler, host, port
        self.limits, self.counters = limits, counters
        self.ssl_context, self.reuse_port = ssl_context, reuse_port
        self.max_body, self.body_timeout = max_body, body_timeout
        self.keep_alive_timeout = min(limits.header_timeout, DEFAULT_HTTP_IDLE_TIMEOUT)
        self.log = RateLimitedLog(log)
        self.date_header = b""
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self.server: asyncio.AbstractServer | None = None
        self._protocols: dict[HttpProtocol, float] = {}  # -> when accepted
        self._tick: asyncio.TimerHandle | None = None

    def in_progress(self) -> int:
        """Requests whose head came and whose answer has not left."""
        return sum(len(p.slots) for p in self._protocols if not p.gone)

    def _sweep(self) -> None:
        """Every second at most: the Date header; connections whose request head is late
        (slowloris) or idle keep-alive ones too long closed; a body late answered 408."""
        self.date_header = b"date: %s\r\n" % formatdate(usegmt=True).encode()
        timeout = self.limits.header_timeout
        now = self.loop.time()
        late, idle, slow = now - timeout, now - self.keep_alive_timeout, now - self.body_timeout
        for protocol in list(self._protocols):
            transport = protocol.transport
            if transport is None or transport.is_closing():
                continue
            head, kept, body = protocol.head_since, protocol.idle_since, protocol.body_since
            if body is not None and body < slow:
                protocol.body_late(self.body_timeout)
            elif (head is not None and head < late) or (kept is not None and kept < idle):
                protocol.head_since = protocol.idle_since = None
                transport.close()
        self._tick = self.loop.call_later(
            min(1.0, timeout / 2, self.keep_alive_timeout / 2, self.body_timeout / 2), self._sweep)

    def forget(self, protocol: HttpProtocol) -> None:
        self._protocols.pop(protocol, None)

    def _make_room(self) -> bool:
        """As GuardedSite's: forget handshakes that never finished; if still full, close the
        oldest connection that never sent a request head, else the oldest idle keep-alive
        one; False when every connection is inside a request."""
        now = time.monotonic()
        grace = self.limits.header_timeout + 1
        victim = oldest_victim(self._protocols, now, grace, gone=lambda p: p.gone,
                               silent=lambda p: p.idle and p.requests == 0, idle=lambda p: p.idle)
        if len(self._protocols) < self.limits.max_connections:
            return True
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
        protocol = HttpProtocol(self)
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
        self.stopping = True
        for protocol in list(self._protocols):
            protocol.shutdown()
        deadline = time.monotonic() + grace
        while self.in_progress() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for protocol in list(self._protocols):
            if protocol.transport is not None and not protocol.transport.is_closing():
                protocol.transport.close()
        self.server = None
