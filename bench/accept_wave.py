#!/usr/bin/env python3
"""/healthz's longest wait while a wave of connections reaches a logs process at once.

    .venv/bin/python bench/accept_wave.py [--conns 3000] [--port tcp|http] [--rounds 3]

asyncio accepts up to ``backlog`` connections (logmesh's LISTEN_BACKLOG, 4,096) in one
callback of the event loop, and makes each one's protocol in a task of its own: a wave of
reconnecting shippers is a long run of the loop's work. Per round this starts
``logmesh logs --standalone --no-supervise`` (``--max-connections`` above the wave, so nothing is
refused), asks ``/healthz`` every 5 ms (a new connection each time, one at a time) and, after
half a second, opens ``--conns`` connections to the ``--port`` (the ingest TCP port, or the HTTP
port) as fast as one thread can, holds them 2 s and closes them all. Printed: /healthz's longest
wall before the wave, while it is accepted, and while it is closed, with the process's CPU
seconds for the wave. The machine is shared: compare the phases of one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from ledger_look import _cpu  # noqa: E402

from tests.support.procs import HOST, Procs  # noqa: E402


class Prober(threading.Thread):
    """/healthz again and again: (start, wall seconds) of each answer."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://{HOST}:{port}/healthz"
        self.walls: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=60) as r:
                r.read()
            self.walls.append((t, time.perf_counter() - t))
            self.stop.wait(0.005)

    def longest(self, start: float, end: float) -> float:
        """The longest wall of the asks that were under way in [start, end)."""
        return max((w for t, w in self.walls if t < end and t + w >= start), default=0.0)


def wave(port: int, conns: int) -> list[socket.socket]:
    socks = []
    for _ in range(conns):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((HOST, port))
        socks.append(s)
    return socks


def run(conns: int, which: str, workdir: Path) -> dict:
    procs = Procs(workdir)
    try:
        proc, tcp_port, http_port = procs.logs(workdir / "data", "--max-connections", str(conns + 500))
        prober = Prober(http_port)
        prober.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        cpu0 = _cpu(proc.pid)
        socks = wave(tcp_port if which == "tcp" else http_port, conns)
        t1 = time.perf_counter()
        time.sleep(2.0)
        cpu_open = _cpu(proc.pid) - cpu0
        t2 = time.perf_counter()
        for s in socks:
            s.close()
        time.sleep(1.5)
        t3 = time.perf_counter()
        prober.stop.set()
        prober.join()
        return {"before": prober.longest(0, t0), "open": prober.longest(t0, t2),
                "close": prober.longest(t2, t3), "asks_open": sum(t0 <= t < t2 for t, _ in prober.walls),
                "send_s": t1 - t0, "cpu_open": cpu_open}
    finally:
        procs.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--port", choices=("tcp", "http"), default="tcp")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for r in range(a.rounds):
        tmp = Path(tempfile.mkdtemp(prefix="accept-wave-"))
        try:
            got = run(a.conns, a.port, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"round {r}: {a.conns:,} connects to the {a.port} port (sent in {got['send_s'] * 1000:.0f} ms): "
              f"/healthz longest {got['before'] * 1000:.1f} ms before, {got['open'] * 1000:.1f} ms while "
              f"accepted ({got['asks_open']} asks), {got['close'] * 1000:.1f} ms while closed; process CPU "
              f"{got['cpu_open']:.2f} s for the wave (load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
