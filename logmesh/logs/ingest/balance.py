"""``--workers N``: even out the ingest connections across the workers.

With SO_REUSEPORT alone the kernel hashes each new connection to a worker:
four connections split 3:1 or 4:0 more often than not, and one worker's core
idles while the other's is the bottleneck (375k-760k events/s in one run).
Here every worker still accepts on the shared port, but a worker that holds
more ingest connections than the least loaded sibling passes the accepted
socket, before reading a byte of it, to that sibling (``SCM_RIGHTS`` over a
Unix datagram socket in the abstract namespace, one per worker and port),
which serves it as if it had accepted it. TLS handshakes happen in the worker
that serves the connection.

The load of a worker is its open ingest connections (``len(guard.conns)``:
the book port and the socket ports together), published in one 8-byte slot
per worker of the data directory's ``balance/connections`` file (each
worker writes only its own slot) at every change it sees and ten times a
second; a worker reads its siblings' slots at each accept, plus what it handed
them since its last refresh. A sibling that is not there (not started yet,
stopped, restarting) refuses the socket at once and the connection is served
here; one whose queue is full is skipped for a second: balancing never
refuses or delays a connection. A worker binds its hand-off socket before it
listens, so one the kernel can give connections can always be handed them.
A connection is served whole by one worker, so its events go to that worker's
stream, and a shipper's resends are recognised by the ledger as with
SO_REUSEPORT alone.
"""

from __future__ import annotations

import array
import asyncio
import errno
import hashlib
import logging
import mmap
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...guard import ACCEPT_BATCH
from ..store import layout

log = logging.getLogger("logmesh.logs.ingest")

LOADS_FILE = "connections"  # a row of int64 slots per worker: its load, then what it took from each
REFRESH_SECONDS = 0.1  # how often a worker publishes its load and re-reads its siblings'
DEAD_SECONDS = 1.0  # a sibling whose queue was full is not offered another for this long


class Loads:
    """The workers' connection counts in a shared, memory-mapped file (no locks: each worker
    writes only its own row).

    Row ``w``: slot 0 is ``w``'s open connections, slot ``1 + v`` how many connections ``w``
    has taken from ``v`` since it started. A sender counts what it handed each sibling, so
    what is still on the way is the difference: counted once, neither lost nor doubled while
    the sibling takes it.
    """

    ROW = layout.MAX_WORKERS + 1

    def __init__(self, data_dir: Path) -> None:
        directory = Path(data_dir) / layout.BALANCE_DIR
        directory.mkdir(parents=True, exist_ok=True)
        size = layout.MAX_WORKERS * self.ROW * 8
        fd = os.open(directory / LOADS_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def set(self, worker: int, n: int) -> None:
        struct.pack_into("<q", self._map, worker * self.ROW * 8, n)

    def get(self, worker: int) -> int:
        return struct.unpack_from("<q", self._map, worker * self.ROW * 8)[0]

    def set_taken(self, worker: int, sender: int, n: int) -> None:
        struct.pack_into("<q", self._map, (worker * self.ROW + 1 + sender) * 8, n)

    def taken(self, worker: int, sender: int) -> int:
        return struct.unpack_from("<q", self._map, (worker * self.ROW + 1 + sender) * 8)[0]

    def reset(self, worker: int) -> None:
        """A worker starting: its row from zero (a sibling's count of what it sent restarts
        with the sibling, and ``in_flight`` is never taken below zero)."""
        self._map[worker * self.ROW * 8:(worker + 1) * self.ROW * 8] = bytes(self.ROW * 8)

    def close(self) -> None:
        self._map.close()


def handoff_address(data_dir: Path, port: int, worker: int) -> bytes:
    """An abstract Unix socket name (no file, no path length limit) per data directory,
    port and worker."""
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    return f"\0logmesh-{digest}-{port}-w{worker:02d}".encode()


class BalancedServer:
    """A TCP listener shared by ``workers`` processes that hands connections to the least
    loaded one; ``sockets`` and ``close()`` as asyncio's servers have them."""

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol], host: str, port: int, *,
                 data_dir: Path, worker: int, workers: int, load: Callable[[], int],
                 backlog: int, ssl_context: ssl.SSLContext | None = None,
                 ssl_handshake_timeout: float | None = None) -> None:
        self.factory, self.host, self.port = factory, host, port
        self.data_dir, self.worker, self.workers = Path(data_dir), worker, workers
        self.load, self.backlog = load, backlog
        self.ssl, self.ssl_handshake_timeout = ssl_context, ssl_handshake_timeout
        self.sockets: list[socket.socket] = []
        self.loads = Loads(self.data_dir)
        self.handoff: socket.socket | None = None
        self.siblings = [w for w in range(workers) if w != worker]
        self.sent: dict[int, int] = {}  # connections handed to each sibling since we started
        self.took: dict[int, int] = {}  # connections each sibling handed us since we started
        self.dead: dict[int, float] = {}  # sibling -> until when it is skipped
        self.handed = 0  # connections passed to a sibling
        self.taken = 0  # connections a sibling passed here
        self._tasks: set[asyncio.Task] = set()
        self._refresher: asyncio.Task | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        self.port = sock.getsockname()[1]
        # Reachable by the siblings before the kernel can give this worker a connection:
        # a worker that accepts can always be handed one.
        handoff = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            handoff.bind(handoff_address(self.data_dir, self.port, self.worker))
            handoff.setblocking(False)
            self.handoff = handoff
        except OSError as exc:  # serve what the kernel gives us; balancing is an optimisation
            handoff.close()
            log.warning("port %d: no connection balancing for worker %d: %s", self.port,
                        self.worker, exc)
        sock.listen(self.backlog)
        sock.setblocking(False)
        self.sockets = [sock]
        self.loads.reset(self.worker)
        self.loads.set(self.worker, self.mine())
        loop.add_reader(sock.fileno(), self._accept)
        if self.handoff is not None:
            loop.add_reader(self.handoff.fileno(), self._receive)
        self._refresher = loop.create_task(self._refresh())

    def close(self) -> None:
        loop = asyncio.get_event_loop()
        for sock in self.sockets:
            loop.remove_reader(sock.fileno())
            sock.close()
        if self.handoff is not None:
            loop.remove_reader(self.handoff.fileno())
            self.handoff.close()
            self.handoff = None
        if self._refresher is not None:
            self._refresher.cancel()
        self.loads.set(self.worker, 0)
        self.loads.close()

    # -- deciding ---------------------------------------------------------------------------
    async def _refresh(self) -> None:
        while True:
            self._read_loads()
            await asyncio.sleep(REFRESH_SECONDS)

    def _read_loads(self) -> None:
        self.loads.set(self.worker, self.mine())

    def mine(self) -> int:
        """This worker's connections, with those still being set up (TLS handshakes, and
        accepts of this wakeup whose protocol is not made yet)."""
        return self.load() + len(self._tasks)

    def target(self, now: float) -> int | None:
        """The sibling to hand a new connection to, or None to serve it here."""
        if self.handoff is None:
            return None
        mine = self.mine()
        best, fewest = None, mine
        for w in self.siblings:  # read fresh at each accept: a sibling publishes as it serves
            n = self.loads.get(w) + max(0, self.sent.get(w, 0) - self.loads.taken(w, self.worker))
            if n < fewest and self.dead.get(w, 0.0) <= now:
                best, fewest = w, n
        return best

    # -- accepting --------------------------------------------------------------------------
    def _accept(self) -> None:
        sock = self.sockets[0]
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the guard's log says more
                log.warning("port %d: accept failed: %s", self.port, exc)
                return
            if self.handoff is not None:
                self._receive()  # what a sibling handed us is ours: counted before we decide
            w = self.target(time.monotonic())
            if w is not None and self._send(conn, w):
                conn.close()
                continue
            self._serve(conn)

    def _send(self, conn: socket.socket, worker: int) -> bool:
        assert self.handoff is not None
        try:
            # sendmsg, not socket.send_fds: that one drops its address argument (CPython 3.11)
            self.handoff.sendmsg([b"c"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          array.array("i", [conn.fileno()]))], 0,
                                 handoff_address(self.data_dir, self.port, worker))
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:  # not started yet, or stopped: it takes none
                return False  # from the kernel either, and trying again costs one syscall
            if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):  # a full queue: busy, skip it
                log.warning("port %d: could not hand a connection to worker %d: %s", self.port,
                            worker, exc)
            self.dead[worker] = time.monotonic() + DEAD_SECONDS
            return False
        self.sent[worker] = self.sent.get(worker, 0) + 1
        self.handed += 1
        return True

    def _receive(self) -> None:
        assert self.handoff is not None
        for _ in range(ACCEPT_BATCH):
            try:
                _, fds, _, addr = socket.recv_fds(self.handoff, 16, 8)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("port %d: could not take a handed connection: %s", self.port, exc)
                return
            sender = _sender(addr)
            for fd in fds:
                self.taken += 1
                self._serve(socket.socket(fileno=fd))  # publishes our load first: then ...
                if sender is not None:  # ... that it is no longer on the way (never undercounted)
                    self.took[sender] = self.took.get(sender, 0) + 1
                    self.loads.set_taken(self.worker, sender, self.took[sender])

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_event_loop()
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs = {"ssl": self.ssl, "ssl_handshake_timeout": self.ssl_handshake_timeout}
        task = loop.create_task(loop.connect_accepted_socket(self.factory, conn, **kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._served)
        self.loads.set(self.worker, self.mine())

    def _served(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self.loads.set(self.worker, self.mine())
        if not task.cancelled() and task.exception() is not None:
            log.debug("port %d: a connection ended before it was served: %s", self.port,
                      task.exception())


def _sender(addr: Any) -> int | None:
    """The worker that sent a datagram, from its bound address (``...-wNN``)."""
    if isinstance(addr, bytes) and addr[-4:-2] == b"-w" and addr[-2:].isdigit():
        return int(addr[-2:])
    if isinstance(addr, str) and addr[-4:-2] == "-w" and addr[-2:].isdigit():
        return int(addr[-2:])
    return None
