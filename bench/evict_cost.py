#!/usr/bin/env python3
"""CPU a newcomer costs a full HTTP port: the logs service's GuardedSite making room.

    python bench/evict_cost.py [--base <checkout of another commit>] [--rounds 3]

The site is filled with 1,024 handlers that never sent a request (an idle flood's), then
3,000 newcomers each make room (one eviction) and take a place, as a reconnecting flood
does (tests/security/test_idle_flood.py). Prints the CPU microseconds an eviction, for this
tree and, with ``--base``, the other one, in alternating rounds of the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEWCOMERS = 3_000

ONE = r"""
import logging, sys, time
from logmesh.security import Limits
from logmesh.security_http import BadRequestLog, GuardedSite, HttpCounters

class Handler:  # what _make_room reads of aiohttp's RequestHandler
    def __init__(self):
        self._manager, self.transport, self._request_count, self._waiter = 1, object(), 0, None
        self.peername = ("127.0.0.1", 1)
    def force_close(self):
        self._manager = None

logging.getLogger("bench").disabled = True
site = GuardedSite.__new__(GuardedSite)
site.limits, site.counters = Limits(), HttpCounters()
site.log = BadRequestLog(logging.getLogger("bench"), site.counters.bad_requests,
                         site.counters.client_disconnects)
site._handlers = {Handler(): time.monotonic() for _ in range(site.limits.max_connections)}
t = time.process_time()
N = int(sys.argv[1])
for _ in range(N):
    assert site._make_room()
    site._handlers[Handler()] = time.monotonic()
print((time.process_time() - t) / N * 1e6)
"""


def run(tree: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", ONE, str(NEWCOMERS)], env=env, capture_output=True, text=True,
                         check=True, cwd=tree)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="a checkout of another commit, run alongside")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = [("this tree", ROOT)] + ([("base", args.base.resolve())] if args.base else [])
    got: dict[str, list[float]] = {name: [] for name, _ in trees}
    for _ in range(args.rounds):
        for name, tree in trees:
            got[name].append(run(tree))
    print(f"load average {os.getloadavg()[0]:.1f}; CPU us an eviction at a full port of 1,024:")
    for name, values in got.items():
        print(f"  {name:10s} " + " ".join(f"{v:7.1f}" for v in values))


if __name__ == "__main__":
    main()
