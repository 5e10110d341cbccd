"""The socket ports beside the book's: syslog (TCP and UDP), JSON lines, Fluent forward.

Each is off unless its ``--*-port`` is given, binds the service's host, and
shares the book port's parts (:class:`IngestContext`): the store's writer and
its backpressure, the connection guard (``--max-connections`` and friends count
every ingest port of a worker together), TLS on TCP when the service has it and
the balancing of connections across ``--workers`` (the server's ``serve_tcp``),
``--max-packet-size`` as the longest line or message. None of these
protocols carries a token, so with a token set they are refused on a
non-loopback host unless ``--insecure`` (docs/ingest.md). What a port
refuses is counted in ``logmesh_ingest_errors_total{protocol,reason}``
(counting.py); the connection and the lines around it go on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ...security import check_exposure
from ..event import Event
from .common import REPLACED_LABEL, Rejected, now_ms
from .connection import IngestConnection
from .context import PAUSE_BUFFER_BYTES, IngestContext
from .counting import ProtocolCounters
from .forward import ForwardProtocol
from .jsonlines import line_event
from .lines import FrameError, LineSplitter
from .syslog import SyslogDecoder

log = logging.getLogger("logmesh.logs.ingest")

Decode = Callable[[bytes, int, "tuple[str, int] | None"], Event]
# A read's lines encoded as stored lines at once, or None (syslog.SyslogDecoder.encode_block):
# (lines, received, source, the writer's reserve) -> (blob, seqs, timestamps, services) | None.
EncodeBlock = Callable[[list[bytes], int, "tuple[str, int]", Callable[[int], range]],
                       "tuple[bytes, range, list[int], dict[str, int]] | None"]
# The server's way to open a TCP ingest port behind its guard (TLS, --workers balancing):
# (protocol factory, port) -> a server with .sockets and .close().
ServeTcp = Callable[[Callable[[], asyncio.BaseProtocol], int], Awaitable[Any]]


@dataclass
class SocketPorts:
    """``--syslog-port``, ``--forward-port``, ``--jsonl-port``: None is off, 0 picks a free one."""

    syslog: int | None = None
    forward: int | None = None
    jsonl: int | None = None

    @property
    def any(self) -> bool:
        return any(p is not None for p in (self.syslog, self.forward, self.jsonl))

    def check_exposure(self, host: str, insecure: bool) -> None:
        """These protocols carry no token: beyond loopback only with ``--insecure``."""
        for name, port in (("syslog", self.syslog), ("Fluent forward", self.forward),
                           ("JSON lines", self.jsonl)):
            if port is not None:
                check_exposure(f"{name} port (its protocol carries no token)", host,
                               protected=False, insecure=insecure)


class LineIngestProtocol(IngestConnection):
    """A TCP connection of lines (syslog, JSON lines): framed by lines.py, each line decoded
    alone, the read's good events appended as one block."""

    drains_on_stop = True  # no answer ever goes back: connection.drain

    def __init__(self, ctx: IngestContext, counters: ProtocolCounters, protocol: str,
                 decode: Decode, *, octet_counting: bool, block: EncodeBlock | None = None) -> None:
        super().__init__(ctx)
        self.counters, self.protocol, self.decode = counters, protocol, decode
        self.block = block  # the hot path, tried first on every read
        self.splitter = LineSplitter(ctx.max_frame_bytes, octet_counting=octet_counting)

    def received(self, data: bytes) -> None:
        self.ctx.bytes.inc(len(data))
        self._lines(*self.splitter.feed(data))

    def eof_received(self) -> bool | None:
        """The sender closed its side: its last line may have no newline (lines.finish)."""
        self.handle_kept()
        self._lines(*self.splitter.finish())
        return None  # close our side too

    def _lines(self, lines: list[bytes], errors: list[FrameError]) -> None:
        ctx = self.ctx
        for err in errors:
            self._bad(err.reason, err.detail)
        if not ctx.guard.track(self, self.splitter.buffered, bool(lines)):
            return  # over the listener's budget for partial lines: aborted
        if lines and not self._store_block(lines):
            store(ctx, self.counters, self.protocol, self.decode, lines, self.source, self._bad)
        self.pause_if_behind()

    def _store_block(self, lines: list[bytes]) -> bool:
        """The read stored by the hot path, if it takes it (all lines of its one shape)."""
        if self.block is None:
            return False
        writer = self.ctx.writer
        got = self.block(lines, now_ms(), self.source, writer.reserve)
        if got is None:
            return False
        blob, seqs, stamps, services = got
        writer.append_encoded(blob, seqs[0], seqs[-1], len(seqs), min(stamps), max(stamps),
                              stamps[0], services=services)
        self.ctx.events.inc(len(seqs))
        self.counters.events(self.protocol, len(seqs))
        return True

    def _bad(self, reason: str, detail: str) -> None:
        self.counters.error(self.protocol, reason)
        self.ctx.warn.warning("%s %s:%s: dropped a line (%s) %s", self.protocol, *self.source,
                              reason, detail[:160])


def store(ctx: IngestContext, counters: ProtocolCounters, protocol: str, decode: Decode,
          lines: list[bytes], source: tuple[str, int] | None,
          bad: Callable[[str, str], None]) -> int:
    """Decode ``lines`` one by one and append the good ones as one block; returns the last seq.

    The store's own failure (a full disk) does not refuse them: like the book's
    packets they stay buffered and are written when it can.
    """
    received = now_ms()
    events: list[Event] = []
    append = events.append
    for line in lines:
        try:
            ev = decode(line, received, source)
        except Rejected as exc:
            bad(exc.reason, exc.detail)
        except RecursionError:
            bad("too_deep", "nested too deep to decode")
        else:
            append(ev)
            if ev.labels and REPLACED_LABEL in ev.labels:  # stored, with bad parts replaced
                ctx.count_replaced(ev.labels[REPLACED_LABEL])
    if not events:
        return ctx.writer.appended_seq
    last = ctx.writer.append_events(events)
    ctx.events.inc(len(events))
    counters.events(protocol, len(events))
    return last


class SyslogDatagramProtocol(asyncio.DatagramProtocol):
    """Syslog over UDP: one message per datagram, no answer (the protocol has none).

    The datagrams of one turn of the event loop are appended as one block. While
    the store holds more than ``PAUSE_BUFFER_BYTES`` unwritten, datagrams are
    dropped and counted (``store_busy``): UDP has no way to slow a sender.
    """

    def __init__(self, ctx: IngestContext, counters: ProtocolCounters, decode: Decode) -> None:
        self.ctx, self.counters, self.decode = ctx, counters, decode
        self.pending: list[tuple[bytes, tuple[str, int]]] = []
        self.loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        ctx = self.ctx
        ctx.bytes.inc(len(data))
        data = data.rstrip(b"\r\n\0")
        if len(data) > ctx.max_frame_bytes:
            self._bad("too_large", f"a datagram of {len(data)} bytes")
        elif ctx.writer.buffered_bytes > PAUSE_BUFFER_BYTES:
            self._bad("store_busy", "the store is behind; UDP cannot be slowed down")
        elif data:
            if not self.pending:
                self.loop.call_soon(self._flush)
            self.pending.append((data, (str(addr[0]), int(addr[1]))))

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        by_source: dict[tuple[str, int], list[bytes]] = {}
        for data, source in pending:
            by_source.setdefault(source, []).append(data)
        for source, lines in by_source.items():
            store(self.ctx, self.counters, "syslog", self.decode, lines, source, self._bad)

    def _bad(self, reason: str, detail: str) -> None:
        self.counters.error("syslog", reason)
        self.ctx.warn.warning("syslog/udp: dropped a datagram (%s) %s", reason, detail[:160])


class SocketListeners:
    """The optional ports of one worker: started and closed with it."""

    def __init__(self, ctx: IngestContext, counters: ProtocolCounters, ports: SocketPorts, *,
                 host: str, reuse_port: bool, serve_tcp: ServeTcp) -> None:
        self.ctx, self.counters, self.ports, self.host = ctx, counters, ports, host
        self.reuse_port, self.serve_tcp = reuse_port, serve_tcp
        self.servers: list[Any] = []
        self.udp: asyncio.DatagramTransport | None = None
        self.bound: dict[str, int] = {}  # "syslog", "forward", "jsonl" -> the port it got

    async def _serve(self, make: Callable[[], asyncio.BaseProtocol], port: int) -> int:
        server = await self.serve_tcp(make, port)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        ctx, counters, ports = self.ctx, self.counters, self.ports
        if ports.syslog is not None:
            decoder = SyslogDecoder()
            port = await self._serve(lambda: LineIngestProtocol(
                ctx, counters, "syslog", decoder.event, octet_counting=True,
                block=decoder.encode_block), ports.syslog)
            loop = asyncio.get_running_loop()
            self.udp, _ = await loop.create_datagram_endpoint(
                lambda: SyslogDatagramProtocol(ctx, counters, decoder.event),
                local_addr=(self.host, port), reuse_port=self.reuse_port or None,
                family=socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            self.bound["syslog"] = port
        if ports.jsonl is not None:
            self.bound["jsonl"] = await self._serve(lambda: LineIngestProtocol(
                ctx, counters, "jsonl", line_event, octet_counting=False), ports.jsonl)
        if ports.forward is not None:
            self.bound["forward"] = await self._serve(lambda: ForwardProtocol(ctx, counters),
                                                      ports.forward)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.udp is not None:
            self.udp.close()
