"""A socket flood leaves the event loop turns for HTTP (ingest/turns.py): one turn handles at
most TURN_BYTES of ingest reads, and every line is still stored once, in order.

asyncio reads every ready connection in a turn, 256 KiB each, and the reads were handled at
once: with 64 connections flooding two workers a turn was ~8 MB of lines, and /healthz,
which needs several turns, took 1-22 s (bench/health_under_flood.py, found from outside).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading

from tests.support.logs import HOST, stored, wait_until

CONNS = 8
LINES = 12_000  # ~1.1 MB a connection: several reads each
TURN_BYTES = 256 * 1024  # ingest/turns.py; written here so the test reads the same on old code


def _line(conn: int, n: int) -> bytes:
    return b'{"message":"line %d %s","service.name":"flood-%d"}\n' % (n, b"x" * 40, conn)


def _send(port: int, conn: int, started: threading.Barrier) -> None:
    with socket.create_connection((HOST, port)) as s:
        started.wait(30)
        s.sendall(b"".join(_line(conn, n) for n in range(LINES)))
        s.shutdown(socket.SHUT_WR)
        s.settimeout(120)
        while s.recv(65536):  # until the service closes its side: every line read
            pass


async def test_a_turn_handles_at_most_turn_bytes_and_every_line_is_stored_once(start_logs):
    srv = await start_logs(jsonl_port=0)
    port = srv.listeners.bound["jsonl"]
    writer = srv.writer
    loop = asyncio.get_running_loop()
    per_turn: list[int] = []
    last: list[int] = []
    done = asyncio.Event()

    def each_turn() -> None:  # call_soon from a callback runs in the next turn: once a turn
        now = writer.appended_count
        if last:
            per_turn.append(now - last[0])
        last[:] = [now]
        if not done.is_set():
            loop.call_soon(each_turn)

    started = threading.Barrier(CONNS + 1)
    senders = [threading.Thread(target=_send, args=(port, i, started), daemon=True)
               for i in range(CONNS)]
    for t in senders:
        t.start()
    await loop.run_in_executor(None, started.wait, 30)
    await asyncio.sleep(0.3)  # the senders' first megabytes wait in the socket buffers
    loop.call_soon(each_turn)
    await wait_until(lambda: writer.appended_count >= CONNS * LINES, timeout=120,
                     what="every line appended")
    done.set()
    for t in senders:
        await loop.run_in_executor(None, t.join, 120)
    shortest, longest = len(_line(0, 0)), len(_line(0, LINES))
    # one turn: at most TURN_BYTES of reads (a line cut at the turn's end counts in the next)
    assert max(per_turn) * shortest <= TURN_BYTES + longest, (max(per_turn), len(per_turn))
    await writer.durable(writer.appended_seq)
    by_conn: dict[str, list[int]] = {}
    for ev in stored(srv.config.data_dir):
        by_conn.setdefault(ev["service.name"], []).append(int(ev["message"].split()[1]))
    assert {k: v == list(range(LINES)) for k, v in by_conn.items()} == {
        f"flood-{i}": True for i in range(CONNS)}, json.dumps({k: len(v) for k, v in by_conn.items()})
