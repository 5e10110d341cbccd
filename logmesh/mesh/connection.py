"""One framed TCP connection, server or client side.

The protocol object stays thin (uvicorn style): ``data_received`` feeds the
codec and hands each packet on; bad frames are counted values, never fatal.

A raw ``¶`` inside a JSON string (the book's ``JSON.stringify`` leaves it raw)
splits one packet into pieces that are each a bad frame. Such a packet would
get no answer, so its caller waits until it times out or forever (the book's
gateway has no timeout). :class:`TornFrames` joins consecutive bad pieces
back with the ``¶`` the splitter took out; when they make one JSON object
again, ``on_torn`` is told, so a service answers the key with an error at once
and a client fails the request waiting for it. The packet is reported, never
served: the splitter drops empty frames, so a string holding ``¶¶`` would come
back with one ``¶`` missing.

Server-side connections carry their listener's :class:`~logmesh.guard.ConnectionGuard`:
with a token, the first packet must be a hello (``/auth``) carrying it, checked
once; a wrong or missing token gets one error packet and the connection is
closed. Without a token a hello is accepted silently and never answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from orjson import JSONDecodeError
from orjson import loads as _loads

from ..guard import ConnectionGuard, Guarded
from ..hello import HELLO_MAX_BYTES, Verdict, hello_token, is_hello, judge, refused
from ..protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    DELIMITER,
    BadFrame,
    FrameDecoder,
    encode,
    parse_frame,
    reply_key,
)

log = logging.getLogger("logmesh.mesh")

PacketHandler = Callable[["FramedConnection", bytes, dict], None]
TornHandler = Callable[["FramedConnection", dict], None]

# Stop reading from a peer whose replies we cannot send: the peer resumes us by reading.
WRITE_HIGH_WATER = 4 * 1024 * 1024
# Writes queued in one turn of the loop go out in one send; this many bytes go out at once.
COALESCE_BYTES = 256 * 1024


class TornFrames:
    """Joins the pieces of a packet split by raw ``¶`` s; sans-IO, one per connection.

    A packet's first piece starts with ``{``; its last ends with ``}``; only then
    is the join parsed. A packet of more than ``MAX_PIECES`` pieces or
    ``max_bytes`` is not joined, so a peer sending junk costs a few parses per
    frame at most.
    """

    MAX_PIECES = 16

    __slots__ = ("max_bytes", "_pieces", "_size")

    def __init__(self, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pieces: list[bytes] = []
        self._size = 0

    def bad(self, raw: bytes) -> dict | None:
        """Take a frame that did not parse; the packet it completes, if any."""
        if self._pieces and raw.rstrip().endswith(b"}"):
            packet = parse_frame(DELIMITER.join([*self._pieces, raw]))
            if isinstance(packet, dict):
                self.reset()
                return packet
        if raw.lstrip().startswith(b"{"):
            self.reset()  # a new packet starts (or junk: the next piece will tell)
        elif not self._pieces:
            return None  # a middle or last piece of nothing we hold
        self._pieces.append(raw)
        self._size += len(raw) + len(DELIMITER)
        if len(self._pieces) >= self.MAX_PIECES or self._size > self.max_bytes:
            self.reset()
        return None

    def reset(self) -> None:
        """A good frame (or too much junk): nothing held belongs to what comes next."""
        self._pieces.clear()
        self._size = 0


class FramedConnection(Guarded, asyncio.Protocol):
    """A ``¶``-framed JSON connection; callbacks receive each decoded packet.

    ``guard`` (server side): the listener's limits and tokens; ``on_ready`` runs
    once the peer may talk (at once in open mode, after a good hello otherwise);
    ``on_torn`` gets each packet that arrived split by raw ``¶`` s (:class:`TornFrames`);
    ``on_oversized`` each frame dropped for its size (its :class:`BadFrame`, with its head).
    """

    def __init__(
        self,
        on_packet: PacketHandler,
        on_close: Callable[[FramedConnection], None] | None = None,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        name: str = "conn",
        guard: ConnectionGuard | None = None,
        on_ready: Callable[[FramedConnection], None] | None = None,
        on_torn: TornHandler | None = None,
        on_oversized: Callable[[FramedConnection, BadFrame], None] | None = None,
    ) -> None:
        self.on_packet = on_packet
        self.on_close = on_close
        self.on_torn = on_torn
        self.on_oversized = on_oversized
        self.decoder = FrameDecoder(max_frame_bytes)
        self.torn = TornFrames(max_frame_bytes)
        self.torn_packets = 0
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        # the loop, kept: asyncio.get_running_loop() is a getpid() syscall on CPython 3.11, and
        # write() schedules its flush once a turn (strace: one getpid per gateway request)
        self.loop = loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self.bad_frames = 0
        self.state: dict[str, Any] = {}  # owner's per-connection data (e.g. a registration)
        self.guard = guard
        self.on_ready = on_ready
        self.authed = guard is None or not guard.requires_auth
        self._first = guard is not None  # the first packet may be a hello, handled here
        self._out: list[bytes] = []  # written in this turn of the loop, sent by flush()
        self._out_bytes = 0
        self._flush_due = False

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.guard is not None:
            self.guard.opened(self)
        if self.authed and self.on_ready is not None:
            self.on_ready(self)

    def data_received(self, data: bytes) -> None:
        # FrameDecoder.feed, unrolled: a frame that does not parse is kept for self.torn
        decoder, torn = self.decoder, self.torn
        frames = decoder.splitter.feed(data)
        for raw in frames:
            if raw.__class__ is BadFrame:
                item = raw
            else:  # parse_frame, its common case inline: two Python calls a packet less
                try:
                    item = _loads(raw)
                except JSONDecodeError:
                    item = parse_frame(raw)  # says why (or reads a lone surrogate as U+FFFD)
                else:
                    if item.__class__ is not dict:
                        item = parse_frame(raw)
            if isinstance(item, BadFrame):
                decoder.errors[item.reason] = decoder.errors.get(item.reason, 0) + 1
                self.bad_frames += 1
                if not self.authed:
                    self._refuse(refused(None, missing=True))
                    return
                # a server's lines are rate-limited: a flood of bad input is not a flood of lines
                warn = (self.guard.warn if self.guard is not None else log).warning
                warn("%s %s:%s: dropped bad frame (%s, %d bytes) %s",
                     self.name, *self.peer, item.reason, item.nbytes, item.detail[:120])
                if isinstance(raw, bytes):
                    self._piece(raw, warn)
                else:
                    self.torn.reset()  # skipped bytes: what comes next is no continuation
                    if self.on_oversized is not None and item.reason == "too_large":
                        self.on_oversized(self, item)
                continue
            if torn._pieces:  # a good frame: no piece held before it continues
                torn.reset()
            packet = item
            if self._first:
                self._first = False
                if not self._handshake(packet):
                    return
                if is_hello(packet):
                    continue  # a hello is the connection's business, never the owner's
            try:
                self.on_packet(self, raw, packet)
            except Exception:  # a handler bug must not take the connection down
                log.exception("%s: error handling packet from %s:%s", self.name, *self.peer)
        guard = self.guard
        if guard is not None:
            held = self.decoder.splitter.buffered
            if not self.authed and held > HELLO_MAX_BYTES:
                self._refuse(refused(None, missing=True))  # an unidentified peer may not make us hold more
                return
            guard.track(self, held, bool(frames))

    def _piece(self, raw: bytes, warn: Callable[..., None]) -> None:
        packet = self.torn.bad(raw)
        if packet is None:
            return
        self.torn_packets += 1
        warn("%s %s:%s: those pieces were one packet split by a raw ¶ (key %r)",
             self.name, *self.peer, reply_key(packet))
        if self.on_torn is not None:
            try:
                self.on_torn(self, packet)
            except Exception:
                log.exception("%s: error handling a torn packet from %s:%s", self.name, *self.peer)

    # -- authentication --------------------------------------------------------
    def token_in(self, packet: dict) -> str | None:
        """The token a first packet carries: a hello's (subclasses may accept more)."""
        return hello_token(packet)

    def _handshake(self, packet: dict) -> bool:
        """Check the first packet (logmesh/hello.py); False when the connection was refused."""
        if self.authed:
            return True  # open mode: a hello from a client with a token needs no check
        assert self.guard is not None
        verdict = judge(packet, self.guard.check, self.token_in)
        if not verdict.ok:
            self._refuse(verdict)
            return False
        self.authed = True
        if self.on_ready is not None:
            self.on_ready(self)
        return True

    def _refuse(self, verdict: Verdict) -> None:
        if self.guard is not None:
            self.guard.auth_failed(self, verdict.missing)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(verdict.reply)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._out.clear()
        if self.guard is not None:
            self.guard.closed(self)
        self._writable.set()
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_close is not None:
            self.on_close(self)

    def pause_writing(self) -> None:
        self._writable.clear()
        if self.guard is not None and self.transport is not None:
            # A server stops reading requests it cannot answer; resume_writing resumes it.
            # (Never on the client side: both ends paused on each other would deadlock.)
            self.transport.pause_reading()
            self.paused = True

    def resume_writing(self) -> None:
        self._writable.set()
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self.paused = False

    # -- sending ------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, packet: Any) -> None:
        self.write(encode(packet))

    def write(self, data: bytes) -> None:
        """Send ``data`` at the end of this turn of the loop, with whatever else is written in
        it: a service answering a read of many packets, or a gateway forwarding a burst of
        requests, makes one send instead of one per packet (a send to a local peer costs
        more than the packet's own work). Order is kept; nothing is sent once closing."""
        out = self._out
        if not out and not self.is_open:  # (more for this turn's send: flush checks again)
            return
        out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= COALESCE_BYTES:
            self.flush()
        elif not self._flush_due:
            self._flush_due = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand what was written to the transport now."""
        self._flush_due = False
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_bytes = 0
        if self.is_open:
            self.transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        """Wait until the kernel takes our writes (backpressure for bulk senders)."""
        await self._writable.wait()

    def close(self) -> None:
        if self.transport is not None:
            self.flush()  # what was written before the close still goes, as with the transport's
            self.transport.close()
