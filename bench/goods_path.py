"""goods' write path in one process, without sockets: CPU per POST from the request packet to
its reply, grouped commits included.

    .venv/bin/python bench/goods_path.py [--group 8] [--requests 12000] [--rounds 3]
    .venv/bin/python bench/goods_path.py --code <another checkout>   # the same, its code

bench/mesh.py times whole processes on a shared 2-core machine, where goods' CPU per POST
(25-50 µs) moves by more than the few µs a change of its Python is worth. Here the real
service (``examples.resource.make_service``: the Service's dispatch and metrics, the store's
INSERT, its grouped COMMIT to a WAL file on disk with ``synchronous=NORMAL``, the reply's
encoding) is handed ``--group`` POST packets a turn of the loop, as goods reads them from the
gateway, and each reply is encoded to a connection object in memory; the loop turns until every
reply of the turn was written. ``--group 1`` is a commit per POST, the cost of a group apart.
Each packet goes to a real Shipper's queue first, as in the mesh with shipping on (not sent:
what the pump would have taken is dropped every 2,000 events); ``--no-ship`` leaves the shipper
out, the path of ``logmesh service --no-ship`` (the difference is goods' shipping's share).
``--commit-times`` also times each group's commit (wall, its WAL checkpoint included when it
runs one): what a commit stops goods' event loop for, and how often it stops it over 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class MemoryConnection:
    """What the service asks of a FramedConnection to answer: ``send`` (encoded, counted), and
    ``flush`` (a group's replies sent at the end of its commit: nothing to do in memory)."""

    peer = ("127.0.0.1", 40000)

    def __init__(self) -> None:
        from logmesh.protocol import encode

        self.encode = encode
        self.replies = 0

    def send(self, packet: dict) -> None:
        self.encode(packet)
        self.replies += 1

    def write(self, data: bytes) -> None:
        self.replies += 1

    def flush(self) -> None:
        pass


def _time_commits() -> list[float]:
    """Wrap the store's commit with a clock; the list fills with each commit's wall seconds."""
    from logmesh.examples.resource import ResourceStore

    took: list[float] = []
    commit = ResourceStore._commit

    def timed(self) -> None:
        t0 = time.perf_counter()
        commit(self)
        took.append(time.perf_counter() - t0)

    ResourceStore._commit = timed  # type: ignore[method-assign]
    return took


def commit_summary(took: list[float]) -> str:
    s = sorted(took)
    at = lambda q: s[min(len(s) - 1, int(len(s) * q))] * 1e3  # noqa: E731
    return (f"{len(s)} commits: p50 {at(0.5):.3f} p99 {at(0.99):.3f} p99.9 {at(0.999):.2f} max "
            f"{s[-1] * 1e3:.1f} ms, {sum(t > 1e-3 for t in s)} over 1 ms, {sum(s):.2f} s in all")


async def run(group: int, requests: int, ship: bool = True) -> float:
    from logmesh.examples.resource import make_service
    from logmesh.protocol import encode
    from logmesh.shipping.shipper import Shipper

    with tempfile.TemporaryDirectory() as data:
        svc = make_service("goods", Path(data), port=0, distributor=None)
        conn = MemoryConnection()
        queue: Any = []
        if ship:  # its queue only: never started, never sent
            shipper = Shipper("goods", mode="ack")
            svc.on_request = shipper.ship
            queue = shipper.queue
        packets = [{"uri": "/goods", "method": "POST", "key": i, "trace.id": f"{i:016x}",
                    "params": {"name": f"pen {i}", "category": "office", "price": 1.5,
                               "description": "blue ink", "key": i}} for i in range(group)]
        frames = [(encode(p), p) for p in packets]

        async def turn() -> None:
            expected = conn.replies + group
            if len(queue) >= 2_000:  # what the shipper would have sent by now (every 50 ms)
                queue.clear()
            for raw, packet in frames:
                svc._on_packet(conn, raw, packet)  # type: ignore[arg-type]
            while conn.replies < expected:
                await asyncio.sleep(0)

        for _ in range(max(1, 200 // group)):  # warm: statements prepared, pages cached
            await turn()
        turns = max(1, requests // group)
        t0 = time.process_time()
        for _ in range(turns):
            await turn()
        spent = time.process_time() - t0
        for hook in svc.on_stop:
            hook()
        svc.prom.close()
    return spent / (turns * group) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", type=int, default=8, help="POSTs a turn of the loop (one commit)")
    ap.add_argument("--requests", type=int, default=12_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--code", type=Path, default=None, help="a checkout whose logmesh to run, "
                    "alternating by round with this one's")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-ship", action="store_true", help="no shipper: the path without "
                    "queueing each request packet")
    ap.add_argument("--commit-times", action="store_true", help="time each commit too (wall)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child's single run
    args = ap.parse_args()
    if args.one:
        import uvloop

        took = _time_commits() if args.commit_times else None
        us = uvloop.run(run(args.group, args.requests, not args.no_ship))
        if took is not None:
            print(commit_summary(took))
        print(us)
        return 0
    trees = [("this", ROOT)] + ([("other", args.code.resolve())] if args.code else [])
    spent: dict[str, list[float]] = {name: [] for name, _ in trees}
    for rnd in range(args.rounds):
        for name, tree in trees if rnd % 2 == 0 else trees[::-1]:
            out = subprocess.run([sys.executable, __file__, "--one", "--group", str(args.group),
                                  "--requests", str(args.requests),
                                  *(["--no-ship"] if args.no_ship else []),
                                  *(["--commit-times"] if args.commit_times else [])],
                                 env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree,
                                 capture_output=True, text=True, check=True)
            spent[name].append(float(out.stdout.split()[-1]))
            commits = out.stdout.splitlines()[-2] if args.commit_times else ""
            print(f"round {rnd} {name:5} {spent[name][-1]:6.2f} µs CPU a POST {commits}", flush=True)
    print(f"\n{args.requests} POSTs, {args.group} a commit, median of {args.rounds} round(s):")
    for name, v in spent.items():
        print(f"  {name:5} {statistics.median(v):6.2f} µs ({min(v):.2f}-{max(v):.2f})")
    if args.code:
        print("  this / other within each round: "
              + ", ".join(f"{a / b:.2f}" for a, b in zip(spent["this"], spent["other"], strict=True)))
    if args.json:
        args.json.write_text(json.dumps({"requests": args.requests, "group": args.group,
                                         "us_per_post": spent}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
