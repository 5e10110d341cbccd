"""A TCP client that keeps its connection: the book's ``tcpClient``, made reliable.

It reconnects with capped exponential backoff (the book retries every 3 s),
queues packets while disconnected (bounded, oldest dropped and counted) and
matches replies to requests by ``key`` with a timeout.

With a ``token`` its first packet on every connection is the hello
(:func:`logmesh.hello.hello_packet`); with ``ssl`` (an ``SSLContext`` that
verifies the server, :func:`logmesh.security.client_context`) it speaks TLS.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..hello import hello_packet
from ..protocol import BadFrame, encode, reply_key
from .connection import FramedConnection

log = logging.getLogger("logmesh.mesh.client")

DEFAULT_QUEUE_BYTES = 8 * 1024 * 1024
# a reply's key as its first member, in the first bytes of a frame dropped for its size
_FIRST_KEY = re.compile(rb'\A\s*\{\s*"key"\s*:\s*(-?\d+|"[^"\\]*")')
SWEEP_SECONDS = 0.1  # how often requests past their deadline are failed (at most a quarter of
# the shortest timeout asked): one timer for all of them, not a timer per request (uvloop's
# call_later and cancel were ~3 µs of the gateway's request path)


def _key_of(head: bytes) -> Any:
    """The key a frame's first bytes name as its first member (a reply's, the book's and
    logmesh's), or None."""
    m = _FIRST_KEY.match(head)
    return orjson.loads(m.group(1)) if m is not None else None


OnReply = Callable[[tuple[dict, bytes] | None, Exception | None], None]


class RequestTimeout(Exception):
    """No reply with our key arrived in time."""


class UnendedReply(RequestTimeout):
    """The reply to our key began but no ``¶`` ended it in time (a service that forgot its
    delimiter, or hung mid-reply): ``nbytes`` of it came, and were dropped."""

    def __init__(self, message: str, nbytes: int) -> None:
        super().__init__(message)
        self.nbytes = nbytes


class NotConnected(Exception):
    """The peer is down and the request cannot wait for it."""


class BadReply(Exception):
    """The reply to our key came, but split by a raw ``¶``: it cannot be trusted whole."""


class ReconnectingClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str = "client",
        on_packet: Callable[[dict], None] | None = None,
        on_connect: Callable[[ReconnectingClient], Awaitable[None] | None] | None = None,
        on_disconnect: Callable[[ReconnectingClient], None] | None = None,
        backoff_min: float = 0.2,
        backoff_max: float = 3.0,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        ssl: Any = None,
        token: str | None = None,
    ) -> None:
        self.host, self.port, self.name = host, port, name
        self.address = f"{host}:{port}"  # as the gateway's access log names it
        self.on_packet = on_packet
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.max_queue_bytes = max_queue_bytes
        self.ssl = ssl
        self.token = token
        self.last_error: str | None = None  # why the last connection attempt failed
        self.refusal: dict | None = None  # the server's error packet, when it refused our token
        self.conn: FramedConnection | None = None
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self.dropped = 0
        self.unmatched_replies = 0
        # When a request last timed out with nothing heard from the peer since (loop time), or
        # None: a frozen peer whose connection stays open; the gateway passes it over.
        self.stalled_at: float | None = None
        # key -> (the reply's callback, its deadline on the loop's clock, its timeout)
        self._pending: dict[Any, tuple[OnReply, float, float]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_every = SWEEP_SECONDS
        self._keys = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"client-{self.name}")

    def abort(self) -> None:
        """Stop reconnecting and drop the connection, without waiting."""
        self._stopping = True
        if self.conn is not None:
            self.conn.close()
        if self._task is not None:
            self._task.cancel()  # _run will not get to fail the pending requests: do it here
        self._fail_pending(NotConnected(f"{self.name} closed"))

    async def close(self) -> None:
        self.abort()
        if self._task is not None:
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff_min
        while not self._stopping:
            try:
                _, conn = await loop.create_connection(
                    lambda: FramedConnection(self._on_packet, name=self.name,
                                             on_torn=self._on_torn, on_oversized=self._on_oversized),
                    self.host, self.port, ssl=self.ssl,
                )
            except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
                self.last_error = str(exc)
                if isinstance(exc, ssl_module.SSLError):
                    log.warning("%s: TLS with %s:%s failed (%s); retrying in %.1fs",
                                self.name, self.host, self.port, exc, delay)
                log.debug("%s: cannot reach %s:%s (%s); retrying in %.1fs",
                          self.name, self.host, self.port, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_min
            if self.token:
                conn.write(encode(hello_packet(self.token)))  # first, before anything queued
            self.conn = conn
            self.stalled_at = None
            self.connected.set()
            self._flush_queue()
            if self.on_connect is not None:
                try:
                    result = self.on_connect(self)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("%s: on_connect failed", self.name)
            await conn.closed
            self.connected.clear()
            self.conn = None
            self._fail_pending(NotConnected(f"connection to {self.host}:{self.port} lost"))
            if self.on_disconnect is not None:
                self.on_disconnect(self)
            if not self._stopping:  # a refused token will not get better soon: try rarely
                await asyncio.sleep(self.backoff_max if self.refusal is not None else self.backoff_min)

    # -- sending --------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self.conn is not None and self.conn.is_open

    def send(self, packet: Any) -> bool:
        """Send now, or queue until connected. False when the queue had to drop."""
        return self.write(encode(packet))

    def write(self, data: bytes) -> bool:
        if self.conn is not None and self.conn.is_open:
            self.conn.write(data)
            return True
        self._queue.append(data)
        self._queued_bytes += len(data)
        ok = True
        while self._queued_bytes > self.max_queue_bytes and self._queue:
            self._queued_bytes -= len(self._queue.popleft())
            self.dropped += 1
            ok = False
        return ok

    def _flush_queue(self) -> None:
        if self._queue and self.conn is not None:
            self.conn.write(b"".join(self._queue))
            self._queue.clear()
            self._queued_bytes = 0

    async def request(self, uri: str, method: str, params: Any = None, *,
                      timeout: float = 10.0, extra: dict | None = None) -> dict:
        """Send a request and wait for the reply that carries its key.

        The key goes where the book's gateway puts it (``params.key``) and at
        the top level, so book and logmesh services both answer it.
        """
        return (await self.exchange(uri, method, params, timeout=timeout, extra=extra))[0]

    async def exchange(self, uri: str, method: str, params: Any = None, *,
                       timeout: float = 10.0, extra: dict | None = None) -> tuple[dict, bytes]:
        """:meth:`request`, answering the reply and its frame's bytes (the gateway sends them
        on as they are)."""
        fut: asyncio.Future[tuple[dict, bytes]] = asyncio.get_running_loop().create_future()

        def settle(reply: tuple[dict, bytes] | None, exc: Exception | None) -> None:
            if not fut.done():
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(reply)  # type: ignore[arg-type]

        key = self.call(uri, method, params, settle, timeout=timeout, extra=extra)
        try:
            return await fut
        finally:
            self._pending.pop(key, None)

    def call(self, uri: str, method: str, params: Any, on_reply: OnReply, *,
             timeout: float = 10.0, extra: dict | None = None, own: bool = False) -> int:
        """Send a request; ``on_reply((reply, its frame's bytes), None)`` or ``on_reply(None,
        exc)`` (RequestTimeout, NotConnected, BadReply) is called once, from the loop, never
        from inside this call. No task, future or timer per request (the gateway's hot path):
        the reply's callback is called from the connection's read, a sweep fails what is past
        its deadline. Answers the request's key; NotConnected is raised when not connected.
        ``own``: ``params`` is a dict made for this request alone (the gateway's, from the body):
        the key is set in it instead of in a copy."""
        conn = self.conn
        if conn is None or not conn.is_open:
            raise NotConnected(f"{self.name}: not connected to {self.host}:{self.port}")
        key = next(self._keys)
        if params is None:
            params = {}
        if own:
            params["key"] = key
        elif isinstance(params, dict):
            params = {**params, "key": key}
        packet = ({"uri": uri, "method": method, "key": key, "params": params, **extra} if extra
                  else {"uri": uri, "method": method, "key": key, "params": params})
        data = encode(packet)  # first: a packet that cannot be encoded raises, nothing waits
        loop = conn.loop  # not asyncio.get_running_loop(): a getpid() syscall on CPython 3.11
        self._pending[key] = (on_reply, loop.time() + timeout, timeout)
        if self._sweep is None or timeout < 4 * self._sweep_every:
            self._arm(loop, timeout)
        conn.write(data)
        return key

    def _arm(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        every = min(SWEEP_SECONDS, timeout / 4)
        if self._sweep is not None:
            if every >= self._sweep_every:
                return
            self._sweep.cancel()
        self._sweep_every = every
        self._sweep = loop.call_later(every, self._expire)

    def _expire(self) -> None:
        """Fail the requests past their deadline; again later while any is waiting."""
        self._sweep = None
        if not self._pending:
            self._sweep_every = SWEEP_SECONDS
            return
        now = asyncio.get_running_loop().time()
        late = [(key, timeout) for key, (_, deadline, timeout) in self._pending.items()
                if deadline <= now]
        if late:
            self.stalled_at = now
        for key, timeout in late:
            self._settle(key, None, self._timed_out(key, timeout))
        self._sweep = asyncio.get_running_loop().call_later(self._sweep_every, self._expire)

    def _timed_out(self, key: Any, timeout: float) -> RequestTimeout:
        """Why the request of ``key`` failed at its deadline: no reply, or one begun (its
        first member names the key) that no ``¶`` ended. That one's bytes are dropped: the
        peer's next reply starts a frame of its own instead of being glued to them and lost
        (a second timeout, found from outside); a late end of it is a bad frame, counted."""
        conn = self.conn
        if conn is not None:
            splitter = conn.decoder.splitter
            nbytes, head = splitter.held()
            if nbytes and _key_of(head) == key:
                splitter.drop_held()
                conn.torn.reset()
                log.warning("%s: %s sent %s bytes of its reply to key %r and never ended it with "
                            "¶ within %gs; dropped them: %r...", self.name, self.address,
                            f"{nbytes:,}", key, timeout, head[:80].decode("utf-8", "replace"))
                return UnendedReply(f"{self.address} sent {nbytes:,} bytes of its reply but "
                                    f"never ended it with ¶ (U+00B6) within {timeout:g}s", nbytes)
        return RequestTimeout(f"no reply from {self.host}:{self.port} within {timeout}s")

    # -- receiving ------------------------------------------------------------
    def _on_packet(self, conn: FramedConnection, raw: bytes, packet: dict) -> None:
        self.stalled_at = None  # it speaks: a late reply too
        key = packet.get("key")
        if key is not None and not isinstance(key, (dict, list)) and key in self._pending:
            self._settle(key, (packet, raw), None)
            return
        if packet.get("errorcode") == 401 and key in (0, None):
            self.refusal = packet  # our token was refused; the server closes the connection
            log.error("%s: %s:%s refused us: %s", self.name, self.host, self.port,
                      packet.get("errormessage"))
            return
        if self.on_packet is not None:
            self.on_packet(packet)
        else:
            self.unmatched_replies += 1  # unknown or no key: counted and dropped (book defect 6)

    def _on_torn(self, conn: FramedConnection, packet: dict) -> None:
        """A reply split by a raw ``¶`` (a book service's ``JSON.stringify``): fail its request
        now rather than at its timeout. Not delivered: a ``¶¶`` in it came back as one ``¶``."""
        key = packet.get("key")
        if key is not None and not isinstance(key, (dict, list)) and key in self._pending:
            self._settle(key, None, BadReply(f"{self.host}:{self.port} sent a reply holding a "
                                             "raw ¶ (U+00B6), which split it into bad frames"))
        else:
            self.unmatched_replies += 1

    def _on_oversized(self, conn: FramedConnection, bad: BadFrame) -> None:
        """A reply over the packet limit, dropped unread: fail its request now (502 at the
        gateway) rather than at its timeout (a 504 that also marked the instance stalled), when
        its first bytes name its key, as a reply's first member (the book's and logmesh's)."""
        key = _key_of(bad.head)
        if key is not None and key in self._pending:
            self._settle(key, None, BadReply(
                f"{self.host}:{self.port} sent a reply of {bad.nbytes:,} bytes, over the limit of "
                f"{conn.decoder.splitter.max_frame_bytes:,} a packet"))
        else:
            self.unmatched_replies += 1

    def _settle(self, key: Any, reply: tuple[dict, bytes] | None, exc: Exception | None) -> None:
        """The request of ``key`` is done: its callback, once (a bug in it is logged, not raised
        into the connection's read)."""
        on_reply = self._pending.pop(key)[0]
        try:
            on_reply(reply, exc)
        except Exception:
            log.exception("%s: a reply's callback failed", self.name)

    def _fail_pending(self, exc: Exception) -> None:
        for key in list(self._pending):
            if key in self._pending:
                self._settle(key, None, exc)


__all__ = ["ReconnectingClient", "RequestTimeout", "UnendedReply", "NotConnected", "BadReply",
           "reply_key"]
