#!/usr/bin/env python3
"""What the loss ledger's look at the sibling workers (logs/ingest/ledger.py ``_learn_store``)
costs when it has the most to read: a sibling's whole active segment of shipper events.

    .venv/bin/python bench/ledger_look.py [--mb 64] [--repeat 3]

A worker (stream 0) rebuilds its ledger on an empty data directory; a sibling (stream 1) then
stores ``--mb`` MB of shipper events (``event.id`` of 8 instances, ~250 bytes a line, as the
book's access logs) in one active segment; the worker's next look (``joined``: a shipper's
new connection) reads it all. Printed: that look's wall and CPU seconds (what it holds the
event loop for, when run there), split into the read and decode (``_event_ids``) and the
ledger's update (``_apply``), and what a second look (nothing new) costs. ``--thread``: the
look as the logs service now runs it (``ShipperLedger.look``: the read and decode in a thread),
with the longest the event loop waited meanwhile (a 1 ms timer's worst lateness).

``--service`` measures a real logs process instead, paired over ``--code`` trees (each run as
``python -m logmesh`` from its checkout, alternating): the process starts on an empty data
directory (stream 0), this process stores the sibling's segment (stream 1), then a new shipper
sends one batch while /healthz is asked every 10 ms (its own connection each time). Printed per
run: the batch's ack wall, /healthz's longest wall and the count of asks meanwhile (from the
batch until 0.3 s after its ack), and the process's CPU seconds over that span (/proc).

    .venv/bin/python bench/ledger_look.py --service --code <main's checkout> --code . [--rounds 3]

``--book`` (with ``--service``): instead of the batch, one fire-and-forget book packet whose
``event.id`` names an unknown instance past its first event (the same look); nothing answers
it, so the span is from its send until 2 s after, and "ack" is the send's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from logmesh.logs.event import Event  # noqa: E402
from logmesh.logs.ingest import ledger as ledger_mod  # noqa: E402
from logmesh.logs.ingest.ledger import ShipperLedger  # noqa: E402
from logmesh.logs.store.segment import SegmentWriter  # noqa: E402
from logmesh.protocol import DELIMITER, encode  # noqa: E402
from tests.support.procs import HOST, Procs  # noqa: E402


async def fill(data: Path, mb: int) -> int:
    """The sibling's active segment, ``mb`` MB of shipper events; the events written."""
    writer = SegmentWriter(data, 1, fsync="off", max_segment_bytes=8 << 30)
    writer.open()
    writer.start()
    now = int(time.time() * 1000)
    n = written = 0
    while written < mb << 20:
        batch = [Event(timestamp=now + i, received_at=now + i, service_name="goods", method="GET",
                       path=f"/goods/{i % 97}", status=200, level="info", trace_id=f"{i:032x}",
                       message=f"GET /goods/{i % 97} 200 {i % 13} ms",
                       event_id=f"instance-{i % 8}-{'x' * 24}:{i // 8 + 1}")
                 for i in range(n, n + 5000)]
        n += len(batch)
        last = writer.append_events(batch)
        await writer.durable(last)
        written = sum(p.stat().st_size for p in data.rglob("*.ndjson"))
    return n  # not closed: a close seals, and the segment stays the sibling's active one


def look(ledger: ShipperLedger) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    ledger.joined("someone")
    return time.perf_counter() - w, time.process_time() - c


async def look_in_thread(ledger: ShipperLedger) -> tuple[float, float]:
    """(the look's wall seconds, the event loop's longest stall meanwhile)."""
    stall = 0.0
    done = False

    async def tick() -> None:
        nonlocal stall
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            stall = max(stall, time.perf_counter() - t - 0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    w = time.perf_counter()
    await ledger.look()
    wall = time.perf_counter() - w
    done = True
    await ticker
    return wall, stall


def _cpu(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ack(port: int, instance: str) -> float:
    """One new shipper's batch of 10 events over TCP; the seconds until its ack."""
    now = int(time.time() * 1000)
    packet = encode({"uri": "/logs", "method": "POST", "key": 1, "ack": True,
                     "params": {"service": "bench", "instance": instance,
                                "events": [[n, now, f"GET /bench/{n} 200"] for n in range(1, 11)]}})
    t = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=60) as s:
        s.sendall(packet)
        buf = b""
        while DELIMITER not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("closed without an ack")
            buf += chunk
    return time.perf_counter() - t


def _book(port: int, instance: str) -> float:
    """One book packet with ``instance``'s event 5 as its event.id (an unknown instance, past
    its first event: the ledger looks at the siblings' store first); the send's seconds."""
    packet = encode({"uri": "/logs", "params": "GET /bench/5 200", "event.id": f"{instance}:5"})
    t = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=60) as s:
        s.sendall(packet)
        took = time.perf_counter() - t
        time.sleep(2.0)  # the look runs meanwhile (its connection stays open: nothing dropped)
    return took


def service_run(code: Path, mb: int, workdir: Path, book: bool = False) -> dict:
    """One run against ``code``'s logs process (see the module's docstring)."""
    procs = Procs(workdir)
    procs.env["PYTHONPATH"] = str(code)
    data = workdir / "data"
    try:
        proc, tcp_port, http_port = procs.logs(data)
        events = asyncio.run(fill(data, mb))
        walls: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=30) as r:
                    r.read()
                walls.append(time.perf_counter() - t)
                stop.wait(0.01)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(0.3)
        before, cpu0 = len(walls), _cpu(proc.pid)
        ack = (_book if book else _ack)(tcp_port, f"bench-{time.time_ns()}")
        time.sleep(0.3)
        cpu = _cpu(proc.pid) - cpu0
        stop.set()
        poller.join()
        during = walls[before:]
        return {"events": events, "ack_s": ack, "healthz_max_s": max(during, default=0.0),
                "healthz_n": len(during), "cpu_s": cpu}
    finally:
        procs.close()


def service_main(codes: list[Path], mb: int, rounds: int, book: bool = False) -> int:
    for r in range(rounds):
        for code in (codes if r % 2 == 0 else codes[::-1]):
            tmp = Path(tempfile.mkdtemp(prefix="ledger-look-svc-"))
            try:
                got = service_run(code, mb, tmp, book)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"round {r} {code}: {got['events']:,} sibling events; ack {got['ack_s'] * 1000:.0f} ms, "
                  f"/healthz max {got['healthz_max_s'] * 1000:.0f} ms over {got['healthz_n']} asks, "
                  f"process CPU {got['cpu_s']:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--thread", action="store_true", help="ShipperLedger.look(), as the service runs it")
    ap.add_argument("--service", action="store_true", help="a real logs process, /healthz meanwhile")
    ap.add_argument("--code", type=Path, action="append", default=[], help="a checkout (--service)")
    ap.add_argument("--rounds", type=int, default=3, help="--service rounds")
    ap.add_argument("--book", action="store_true", help="--service with a book packet's event.id")
    a = ap.parse_args(argv)
    if a.service:
        return service_main([c.resolve() for c in a.code] or [HERE.parent], a.mb, a.rounds, a.book)
    for r in range(a.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="ledger-look-"))
        try:
            ledger = ShipperLedger()
            ledger.rebuild(tmp, worker=0)
            events = asyncio.run(fill(tmp, a.mb))
            size = sum(p.stat().st_size for p in tmp.rglob("*.ndjson"))
            if a.thread:
                wall, stall = asyncio.run(look_in_thread(ledger))
                print(f"round {r}: {size / 2**20:.1f} MB, {events:,} events: look() {wall * 1000:.0f} ms "
                      f"wall, the loop's longest stall meanwhile {stall * 1000:.1f} ms", flush=True)
                continue
            parts = {"decode": 0.0, "apply": 0.0}
            ids_of, learn = ledger_mod._event_ids, ShipperLedger._apply

            def timed_ids(data, _f=ids_of, parts=parts):
                t = time.process_time()
                try:
                    return _f(data)
                finally:
                    parts["decode"] += time.process_time() - t

            def timed_apply(self, scan, _f=learn, parts=parts):
                t = time.process_time()
                try:
                    return _f(self, scan)
                finally:
                    parts["apply"] += time.process_time() - t

            ledger_mod._event_ids, ShipperLedger._apply = timed_ids, timed_apply
            try:
                wall, cpu = look(ledger)
                again_wall, again_cpu = look(ledger)
            finally:
                ledger_mod._event_ids, ShipperLedger._apply = ids_of, learn
            print(f"round {r}: {size / 2**20:.1f} MB, {events:,} events: first look {wall * 1000:.0f} ms "
                  f"wall, {cpu * 1000:.0f} ms CPU (decode {parts['decode'] * 1000:.0f}, apply "
                  f"{parts['apply'] * 1000:.0f}); the next {again_wall * 1000:.1f} ms wall", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
