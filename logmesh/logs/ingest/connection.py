"""What every ingest connection (the book port's, tcp.py; syslog, JSON lines and Fluent
forward's, sockets.py and forward.py) does alike: report to the connection guard and the
ingest counters, and stop reading while the store is behind."""

from __future__ import annotations

import asyncio

from ...guard import Guarded
from .context import PAUSE_BUFFER_BYTES, IngestContext


class IngestConnection(Guarded, asyncio.Protocol):
    authed = True  # no hello: these protocols carry no token

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self.source: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.source = (str(peer[0]), int(peer[1]))
        self.ctx.connections.inc()
        self.ctx.connections_total += 1
        self.ctx.guard.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ctx.connections.dec()
        self.ctx.paused.discard(self)
        self.ctx.guard.closed(self)

    def pause_if_behind(self) -> None:
        """Stop reading while the store holds too much unwritten; IngestContext._resume_all
        resumes after a flush."""
        ctx = self.ctx
        if ctx.writer.buffered_bytes > PAUSE_BUFFER_BYTES and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
            ctx.paused.add(self)
