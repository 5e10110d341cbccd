"""What shipping costs a service: ns per event on the request path, and gateway throughput.

    .venv/bin/python bench/shipper.py [--requests 4000] [--runs 3] [--json out.json]

1. The request path: ``Shipper.ship`` called in a tight loop (what a service
   pays per request before its handler runs), beside a no-op hook.
2. The mesh: the gateway's requests/s over real processes (distributor, logs,
   goods, gateway) with shipping on and off, measured in the same run,
   alternating, median of --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logmesh.shipping.shipper import Shipper  # noqa: E402

RAW = (b'{"uri":"/goods","method":"GET","key":17,"params":{"id":"42","key":17},'
       b'"trace.id":"0f8e5b3c2a1d4e6f8a9b0c1d2e3f4a5b"}')


def request_path_ns(n: int = 1_000_000) -> dict:
    shipper = Shipper("bench", max_queue=n + 1)
    ship = shipper.ship
    t0 = time.perf_counter_ns()
    for _ in range(n):
        ship(RAW, None, None)
    per_event = (time.perf_counter_ns() - t0) / n

    def noop(raw: bytes, packet: object, conn: object) -> None:
        return None

    t0 = time.perf_counter_ns()
    for _ in range(n):
        noop(RAW, None, None)
    baseline = (time.perf_counter_ns() - t0) / n
    return {"ship_ns": round(per_event, 1), "noop_call_ns": round(baseline, 1),
            "ship_cost_ns": round(per_event - baseline, 1)}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "logmesh", *args, "--no-supervise"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_route(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not routed within {timeout}s")


async def load(url: str, requests: int, concurrency: int = 16) -> dict:
    latencies: list[float] = []
    sent = 0
    async with aiohttp.ClientSession() as http:
        async def worker() -> None:
            nonlocal sent
            while sent < requests:
                sent += 1
                t = time.perf_counter()
                async with http.get(url, params={"id": "1"}) as r:
                    await r.read()
                latencies.append(time.perf_counter() - t)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - t0
    latencies.sort()
    return {"rps": len(latencies) / took,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000}


def mesh_run(ship: bool, requests: int, tmp: Path) -> dict:
    d, lp, hp, gp, sp = (free_port() for _ in range(5))
    dist = f"127.0.0.1:{d}"
    procs = [start("distributor", "--port", str(d))]
    try:
        procs.append(start("logs", "--port", str(lp), "--http-port", str(hp), "--distributor", dist,
                           "--data-dir", str(tmp / "logs")))
        procs.append(start("service", "goods", "--port", str(sp), "--distributor", dist,
                           "--data-dir", str(tmp / "svc"), "--ship" if ship else "--no-ship"))
        procs.append(start("gateway", "--port", str(gp), "--distributor", dist))
        url = f"http://127.0.0.1:{gp}/goods"
        asyncio.run(wait_route(url))
        asyncio.run(load(url, 300))  # warm up
        return asyncio.run(load(url, requests))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    path = request_path_ns()
    print(f"request path: ship() {path['ship_ns']} ns/event "
          f"(a no-op hook {path['noop_call_ns']} ns; shipping adds {path['ship_cost_ns']} ns)")
    on, off = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            off.append(mesh_run(False, args.requests, Path(tmp) / f"off{i}"))
            on.append(mesh_run(True, args.requests, Path(tmp) / f"on{i}"))
    med = {k: {m: statistics.median(r[m] for r in runs) for m in ("rps", "p50_ms", "p99_ms")}
           for k, runs in (("off", off), ("on", on))}
    loss = 1 - med["on"]["rps"] / med["off"]["rps"]
    print(f"gateway GET /goods, 16 concurrent, {args.requests} requests, median of {args.runs}:")
    for k in ("off", "on"):
        print(f"  shipping {k:3}: {med[k]['rps']:8.0f} req/s  p50 {med[k]['p50_ms']:.2f} ms  "
              f"p99 {med[k]['p99_ms']:.2f} ms")
    print(f"  throughput lost to shipping: {loss * 100:.1f}%")
    result = {"request_path": path, "gateway": med, "throughput_loss": loss,
              "runs": {"off": off, "on": on}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
