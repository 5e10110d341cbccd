#!/usr/bin/env python3
"""The turn budget's own cost (logs/ingest/turns.py), counted in instructions.

    valgrind --tool=callgrind --callgrind-out-file=cg.on.4 .venv/bin/python bench/turns_cost.py 4 on
    (and 12 on, 4 off, 12 off: the differences over 128 MiB give the cost a MiB read)

16 loopback connections, each sent ``MB`` MiB by a child process (not under callgrind), read by
asyncio through ``turns.Turns`` into a protocol that only counts the bytes: what is counted is
the loop, the reads and the budget's bookkeeping (kept reads, pause and resume), nothing of a
decoder. ``off`` sets ``TURN_BYTES`` past any read. Under callgrind the reader is far slower than
the sender, so every connection has a full read waiting in every turn: a saturated worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from logmesh.logs.ingest import turns

CONNS = 16
SENDER = r"""
import socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
chunk = b"x" * 65536
def send():
    s = socket.create_connection(("127.0.0.1", port))
    for _ in range(n * 16):
        s.sendall(chunk)
    s.close()
ts = [threading.Thread(target=send) for _ in range(16)]
[t.start() for t in ts]
[t.join() for t in ts]
"""


class Counting(asyncio.Protocol):
    """connection.IngestConnection's turn handling, with a ``received`` that counts."""

    def __init__(self, budget: turns.Turns, done: list, finished: asyncio.Future) -> None:
        self.budget, self.done, self.finished = budget, done, finished
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.partial_since = 0.0
        self.turn_data: bytes | None = None
        self.nbytes = self.calls = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.turn_data is not None:
            self.turn_data += data
            if self.transport is not None:
                self.transport.pause_reading()
        else:
            self.budget.take(self, data)

    def received(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.calls += 1

    def eof_received(self) -> None:
        data, self.turn_data = self.turn_data, None
        if data is not None:
            self.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof_received()
        self.done.append(self)
        if len(self.done) == CONNS:
            self.finished.set_result(None)


async def main(mib: int) -> None:
    loop = asyncio.get_running_loop()
    budget, done, finished = turns.Turns(), [], loop.create_future()
    server = await loop.create_server(lambda: Counting(budget, done, finished), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(port), str(mib)])
    await finished
    sender.wait()
    total = sum(c.nbytes for c in done)
    assert total == CONNS * mib * 1024 * 1024, total
    print(f"bytes {total:,}; calls to received {sum(c.calls for c in done):,}")


if __name__ == "__main__":
    if sys.argv[2] == "off":
        turns.TURN_BYTES = 1 << 50
    asyncio.run(main(int(sys.argv[1])))
