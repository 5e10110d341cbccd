"""How much ingest one turn of the event loop may handle, so HTTP is answered during a flood.

asyncio reads every ready connection in a turn, up to 256 KiB each, and hands each read to
its protocol at once. With 64 connections flooding two workers (bench/socket_flood.c), a
turn was ~8 MB of lines, seconds of CPU while compaction also ran, and an HTTP request,
which needs several turns (accept, read the head, run the handler), waited for each:
``/healthz`` took 1-22 s and ``/api/v1/stats`` 26-90 s (bench/health_under_flood.py). An
orchestrator's health check with a 1-5 s timeout restarts such a worker, and its backlog
waits through the restart.

So a turn handles at most ``TURN_BYTES`` of reads: past that, a read is kept as it came
and its connection paused (``pause_reading``: the kernel's buffer and then the sender wait,
as they do for a store that is behind), and the next turn handles the kept reads first, in
the order they came, then resumes those connections. A turn is then at most
``TURN_BYTES`` plus one read, and nothing read is dropped or reordered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Protocol

log = logging.getLogger("logmesh.logs.ingest")

# Bytes of ingest reads one turn handles: ~3.5k JSON lines, 10-70 ms of one core (3-20 us a
# line by path: syslog's block path to a JSON line with fields). An HTTP request needs ~4
# turns; at load 15 on 2 cores a worker gets ~15% of a core, so each ms of a turn is ~7 ms
# of wall. Smaller turns cost more turns (a select, two epoll_ctl a kept read) for the same
# lines.
TURN_BYTES = 256 * 1024


class Held(Protocol):
    """What Turns needs of a connection (connection.IngestConnection)."""

    transport: asyncio.Transport | None
    paused: bool  # reading paused by us: kept here, or for the store's backpressure
    partial_since: float
    turn_data: bytes | None

    def received(self, data: bytes) -> None: ...


class Turns:
    """The ingest bytes handled in this turn of the loop, and the reads kept for the next.

    ``backpressure``: the connections paused while the store is behind (IngestContext.paused),
    which stay paused when their kept read has been handled.
    """

    def __init__(self, backpressure: set | None = None) -> None:
        self.spent = 0
        self.waiting: deque[Held] = deque()
        self.backpressure = backpressure if backpressure is not None else set()
        self._scheduled = False

    def take(self, conn: Held, data: bytes) -> None:
        """Handle what is left of this turn's bytes of ``data`` now, keep the rest for later.

        The protocols' decoders are exact under any chunking, so a read cut anywhere
        gives the same events as the read whole.
        """
        room = self._room(len(data))
        if room >= len(data):
            self.spent += len(data)
            conn.received(data)
            return
        if room > 0:
            self.spent += room
            conn.received(data[:room])
            data = data[room:]
            transport = conn.transport
            if transport is not None and transport.is_closing():  # closed by that part (a limit)
                conn.received(data)  # the rest of the one read, as when reads were handled whole
                return
        self._keep(conn, data)

    def _room(self, nbytes: int) -> int:
        if self.spent >= TURN_BYTES:
            return 0
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside a loop (a test): no turns to share
                return nbytes
            loop.call_soon(self._next_turn)  # runs at the start of the next turn
            self._scheduled = True
        return TURN_BYTES - self.spent

    def _keep(self, conn: Held, data: bytes) -> None:
        """Hold ``conn``'s read for a later turn and stop reading it until then (``paused``:
        the guard's timeouts wait too, as for the store's backpressure)."""
        conn.turn_data = data
        conn.paused = True
        if conn.transport is not None:
            conn.transport.pause_reading()
        self.waiting.append(conn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self.spent = 0
        while self.waiting and self.spent < TURN_BYTES:
            conn = self.waiting.popleft()
            data = conn.turn_data
            if data is None:  # handled when its connection ended
                continue
            conn.turn_data = None
            conn.paused = conn in self.backpressure
            if conn.partial_since:
                conn.partial_since = time.monotonic()  # the wait is not the sender's fault
            transport = conn.transport
            try:
                self.take(conn, data)
            except Exception:  # as asyncio does for a data_received that raises
                log.exception("an ingest connection failed on a read; closing it")
                if transport is not None:
                    transport.abort()
                continue
            if conn.turn_data is None and not conn.paused and transport is not None \
                    and not transport.is_closing():
                transport.resume_reading()
        if self.waiting and not self._scheduled:
            asyncio.get_running_loop().call_soon(self._next_turn)
            self._scheduled = True
