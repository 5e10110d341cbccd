"""One framed TCP connection, server or client side.

The protocol object stays thin (uvicorn style): ``data_received`` feeds the
codec and hands each packet on; bad frames are counted values, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..protocol import DEFAULT_MAX_FRAME_BYTES, BadFrame, FrameDecoder, encode

log = logging.getLogger("logmesh.mesh")

PacketHandler = Callable[["FramedConnection", bytes, dict], None]

# Stop reading from a peer whose replies we cannot send: the peer resumes us by reading.
WRITE_HIGH_WATER = 4 * 1024 * 1024


class FramedConnection(asyncio.Protocol):
    """A ``¶``-framed JSON connection; callbacks receive each decoded packet."""

    def __init__(
        self,
        on_packet: PacketHandler,
        on_close: Callable[[FramedConnection], None] | None = None,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        name: str = "conn",
    ) -> None:
        self.on_packet = on_packet
        self.on_close = on_close
        self.decoder = FrameDecoder(max_frame_bytes)
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self.bad_frames = 0
        self.state: dict[str, Any] = {}  # owner's per-connection data (e.g. a registration)

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, BadFrame):
                self.bad_frames += 1
                log.warning("%s %s:%s: dropped bad frame (%s, %d bytes) %s",
                            self.name, *self.peer, item.reason, item.nbytes, item.detail[:120])
                continue
            raw, packet = item
            try:
                self.on_packet(self, raw, packet)
            except Exception:  # a handler bug must not take the connection down
                log.exception("%s: error handling packet from %s:%s", self.name, *self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_close is not None:
            self.on_close(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- sending ------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, packet: Any) -> None:
        if self.is_open:
            self.transport.write(encode(packet))  # type: ignore[union-attr]

    def write(self, data: bytes) -> None:
        if self.is_open:
            self.transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        """Wait until the kernel takes our writes (backpressure for bulk senders)."""
        await self._writable.wait()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
