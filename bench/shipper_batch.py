#!/usr/bin/env python3
"""The shipper's CPU per event in a service, from the request's hand-over to its batch's ack,
in one process, paired across checkouts.

    .venv/bin/python bench/shipper_batch.py [--events 200000] [--rounds 4] [--code <before> --code <after>]

bench/mesh.py's gateway + goods figure holds the shippers' cost among everything else on a
shared machine; this runs only the shipper's own Python on the mesh's two shapes: goods hands
over each request packet's bytes (``Shipper.ship``), the gateway hands over its access log as
mesh/gateway.py does (``ship_row``; ``ship_record`` of its record in a checkout before rows);
every 250 events the pump encodes the batch and writes it (to a sink in memory) and the batch's ack is taken
(``_on_reply``), as a 50 ms linger at 5k requests/s would. Each round runs every checkout once,
in turn, in a fresh process (``python`` in that checkout, so its ``logmesh`` is imported); the
figure is the best of three passes in a round, the report the median of the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import asyncio, json, sys, time
from logmesh.shipping.shipper import Shipper

RAW = (b'{"uri":"/goods","method":"GET","key":17,"params":{},'
       b'"trace.id":"0f8e5b3c2a1d4e6f8a9b0c1d2e3f4a5b"}')
N, B = int(sys.argv[1]), 250


class Sink:  # the logs connection: counts what is written
    is_connected = True
    conn = None

    def __init__(self):
        self.bytes = 0

    def write(self, data):
        self.bytes += len(data)


def gateway_record(shipper, seconds, trace_id):  # mesh/gateway.py's _account, shipping on
    took_us = int(seconds * 1_000_000 + 0.5)
    if hasattr(shipper, "ship_row"):  # the access log as a row (logmesh/access_log.py)
        shipper.ship_row(("GET", "/goods", 200, trace_id, "info", took_us, 0, "goods",
                          "127.0.0.1:9010"))
        return
    extra = {"http.request.method": "GET", "url.path": "/goods",
             "http.response.status_code": 200, "trace.id": trace_id,
             "log.level": "info", "event.duration_ms": took_us / 1000, "errorcode": 0,
             "upstream": "goods", "upstream.address": "127.0.0.1:9010"}
    shipper.ship_record(f"GET /goods 200 {took_us / 1000!r}ms", extra)


async def one(kind):
    shipper = Shipper(kind, mode="ack", max_queue=N + 1)
    sink = shipper.client = Sink()
    shipper.speaks = "ack"
    shipper._wake = asyncio.Event()
    traces = [f"{i:032x}" for i in range(B)]
    t0 = time.process_time()
    for _ in range(N // B):
        if kind == "goods":
            for _ in range(B):
                shipper.ship(RAW, None, None)
        else:
            for i in range(B):
                gateway_record(shipper, 0.00123 + i * 1e-6, traces[i])
        shipper._pump()
        for key in list(shipper.inflight):
            shipper._on_reply({"key": key, "errorcode": 0, "acked": B, "features": ["access_rows"]})
    spent = time.process_time() - t0
    assert shipper.stats["acked"] == N // B * B and not shipper.queue
    return spent / (N // B * B) * 1e6, sink.bytes / (N // B * B)


async def main():
    best = {}
    for _ in range(3):
        for kind in ("gateway", "goods"):
            us, size = await one(kind)
            if kind not in best or us < best[kind][0]:
                best[kind] = (us, size)
    print(json.dumps(best))

asyncio.run(main())
"""


def run(code: Path, events: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(events)], cwd=code,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events a pass, per shape")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="a checkout to measure (repeat; default: this one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    codes = args.code or [Path(__file__).resolve().parent.parent]
    per: dict[Path, list[dict]] = {c: [] for c in codes}
    for rnd in range(args.rounds):
        for code in codes if rnd % 2 == 0 else list(reversed(codes)):
            r = run(code, args.events)
            per[code].append(r)
            print(f"round {rnd} {code}: µs per event, hand-over to ack: gateway {r['gateway'][0]:.2f} "
                  f"({r['gateway'][1]:.0f} bytes), goods {r['goods'][0]:.2f} "
                  f"({r['goods'][1]:.0f} bytes)", flush=True)
    print()
    for code, rs in per.items():
        g = statistics.median(r["gateway"][0] for r in rs)
        s = statistics.median(r["goods"][0] for r in rs)
        print(f"{code}: median µs per event: gateway {g:.2f}, goods {s:.2f}; per request "
              f"(one of each) {g + s:.2f}")
    if len(codes) == 2:
        a, b = (per[c] for c in codes)
        print("second / first per round: " + ", ".join(
            f"{(y['gateway'][0] + y['goods'][0]) / (x['gateway'][0] + x['goods'][0]):.2f}"
            for x, y in zip(a, b, strict=True)))
    if args.json:
        args.json.write_text(json.dumps({str(c): rs for c, rs in per.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
