"""What every ingest connection (the book port's, tcp.py; syslog, JSON lines and Fluent
forward's, sockets.py and forward.py) does alike: report to the connection guard and the
ingest counters, stop reading while the store is behind, and (the ports that never answer)
be drained at shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ...guard import Guarded
from .context import PAUSE_BUFFER_BYTES, IngestContext


class IngestConnection(Guarded, asyncio.Protocol):
    authed = True  # no hello: these protocols carry no token
    # A protocol that never answers its sender (syslog, JSON lines): at shutdown it is
    # half-closed and read to its end (drain below) instead of being cut.
    drains_on_stop = False
    half_closed = False  # drain sent our FIN: nothing more can be written to this sender
    turn_data: bytes | None = None  # read past this turn's budget, handled next turn (turns.py)

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self.source: tuple[str, int] = ("", 0)

    def received(self, data: bytes) -> None:
        """Handle a read (each protocol's own); called at most ``turns.TURN_BYTES`` a turn."""
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        if self.turn_data is not None:  # read again before its kept read was handled: keep order
            self.turn_data += data
            if self.transport is not None:
                self.transport.pause_reading()
        else:
            self.ctx.turns.take(self, data)

    def handle_kept(self) -> None:
        """The read kept for the next turn, now: the connection is ending."""
        data, self.turn_data = self.turn_data, None
        if data is not None:
            self.received(data)

    def eof_received(self) -> bool | None:
        self.handle_kept()
        return None  # close our side too

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.source = (str(peer[0]), int(peer[1]))
        self.ctx.connections.inc()
        self.ctx.connections_total += 1
        self.ctx.guard.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.handle_kept()  # read from the kernel: the sender counts it as delivered
        self.ctx.connections.dec()
        self.ctx.paused.discard(self)
        self.ctx.guard.closed(self)

    def answerable(self) -> bool:
        """Whether an answer can still be written: open, and not half-closed by drain (a
        logmesh shipper's first batch may come after the FIN; asyncio refuses the write)."""
        transport = self.transport
        return transport is not None and not transport.is_closing() and not self.half_closed

    def pause_if_behind(self) -> None:
        """Stop reading while the store holds too much unwritten; IngestContext._resume_all
        resumes after a flush."""
        ctx = self.ctx
        if ctx.writer.buffered_bytes > PAUSE_BUFFER_BYTES and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
            ctx.paused.add(self)


# At shutdown, how long the senders of the answerless ports get to close their side after our
# FIN (connection.drain). rsyslog's omfwd closes at its next write (it peeks its socket
# first), but what it wrote before sits in the socket buffers (megabytes a connection on
# loopback), read at 20-40 MB/s while the store keeps writing: 4 senders at full speed took
# 2-3 s. A sender that never looks (Python's SysLogHandler, nc) and keeps writing holds
# the stop this long; one that stops writing is let go after DRAIN_QUIET_SECONDS.
DRAIN_SECONDS = 5.0
DRAIN_QUIET_SECONDS = 0.5


async def drain(conns: Iterable[object], seconds: float = DRAIN_SECONDS,
                quiet: float = DRAIN_QUIET_SECONDS) -> tuple[int, int]:
    """Let the senders of ports with no answer finish before the store closes.

    Syslog and JSON lines have no acknowledgement: whatever the kernel took from a
    sender is, to the sender, delivered. Closing such a connection at shutdown threw
    away what sat unread in its socket buffer (rsyslog's omfwd with a disk queue through
    a SIGTERM restart: 256-1,224 of 300,000 lines lost, in runs of its 128-line
    batches). So each is half-closed (a FIN: "no more from me") and read on: a sender
    that watches its socket (rsyslog, syslog-ng) closes its side and sends the rest to
    the next process, and everything it wrote before is stored. A connection is cut
    when nothing came for ``quiet`` seconds (nothing is left unread), or when
    ``seconds`` have passed (a sender that ignores the FIN and keeps writing). TLS
    connections cannot be half-closed and are cut as before. Returns (connections
    read to their end, connections cut).
    """
    draining: list[IngestConnection] = []
    for conn in list(conns):
        if not isinstance(conn, IngestConnection) or not conn.drains_on_stop:
            continue
        transport = conn.transport
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            continue
        conn.half_closed = True
        transport.write_eof()
        conn.last_read = time.monotonic()
        draining.append(conn)
    deadline = time.monotonic() + seconds
    open_ = draining
    while open_ and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # a bounded poll: the stop has nothing else to do meanwhile
        now = time.monotonic()
        open_ = [c for c in open_ if c.transport is not None and not c.transport.is_closing()
                 and (c.paused or now - c.last_read < quiet)]
    cut = [c for c in draining if c.transport is not None and not c.transport.is_closing()]
    for conn in cut:
        conn.transport.abort()  # type: ignore[union-attr]
    return len(draining) - len(cut), len(cut)
