#!/usr/bin/env python3
"""Peak memory of a logs worker answering a search and an export of big events (page byte budget).

    .venv/bin/python bench/page_bytes.py                       # this checkout
    .venv/bin/python bench/page_bytes.py --code <main checkout> --rounds 2

1. Builds a store once, through a real ``logmesh logs`` of this checkout: EVENTS events of
   EVENT_MIB MiB each POSTed to /api/v1/logs (segments of 64 MB, every sealed one compacted
   to Parquet, the last one live), then stopped.
2. For each checkout (this one and each --code; the order alternates per round), starts
   ``logmesh logs --no-compact`` on a copy of the store and asks ``GET /api/v1/search
   limit=1000`` once, then pages through with the cursor; then a fresh process for
   ``GET /api/v1/export limit=1000`` (read as it streams). Printed per question: the
   events of the first page / of the whole, wall seconds, and the worker's VmHWM (peak
   resident memory, /proc) after it, beside its VmHWM at rest before.

A benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_peers import free_port, start_server, stop_peer  # noqa: E402

MiB = 1024 * 1024
T0 = 1_795_626_000_000


def message(i: int, size: int) -> str:
    unit = hashlib.sha256(str(i).encode()).hexdigest()
    return (f"event {i:03d} " + unit * (size // len(unit) + 1))[:size]


def hwm_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(code: Path, data: Path, *extra: str):
    http_port = free_port()
    cmd = [sys.executable, "-m", "logmesh", "logs", "--data-dir", str(data), "--http-port", str(http_port),
           "--port", str(free_port()), "--standalone", "--no-supervise", *extra]
    return start_server(cmd, http_port, cwd=code, env={"PYTHONPATH": str(code)}, ready_timeout=60), http_port


def build(data: Path, events: int, size: int) -> None:
    proc, port = start(HERE.parent, data, "--max-segment-size", "64MB")
    try:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        per = max(1, (12 * MiB) // size)  # within --max-body-size's 16 MiB
        for k in range(0, events, per):
            body = b"".join(orjson.dumps({"@timestamp": T0 + i, "service.name": "big",
                                          "message": message(i, size)}) + b"\n"
                            for i in range(k, min(k + per, events)))
            con.request("POST", "/api/v1/logs", body=body)
            resp = con.getresponse()
            got = orjson.loads(resp.read())
            if resp.status != 200 or got.get("accepted") != min(per, events - k):
                raise SystemExit(f"POST answered {resp.status}: {got}")
        end = time.monotonic() + 300
        while len(list((data / "segments").glob("*.ndjson"))) > 1 or not any((data / "parquet").glob("*.parquet")):
            if time.monotonic() > end:
                raise SystemExit("compaction did not finish in 300 s")
            time.sleep(0.5)
    finally:
        stop_peer(proc)


def ask(port: int, path: str, params: dict) -> tuple[int, bytes]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    con.request("GET", path + "?" + urllib.parse.urlencode(params))
    resp = con.getresponse()
    return resp.status, resp.read()


def search(code: Path, store: Path, events: int) -> dict:
    proc, port = start(code, store, "--no-compact", "--query-timeout", "600")
    try:
        rest = hwm_mib(proc.pid)
        rng = {"from": T0 - 1000, "to": T0 + events + 1000}
        t0 = time.perf_counter()
        status, body = ask(port, "/api/v1/search", {"limit": 1000, **rng})
        first_wall = time.perf_counter() - t0
        page = orjson.loads(body) if status == 200 else {"events": [], "next_cursor": None}
        first, first_hwm = len(page["events"]), hwm_mib(proc.pid)
        n, pages, cursor = first, 1, page["next_cursor"]
        while cursor is not None:
            status, body = ask(port, "/api/v1/search", {"limit": 1000, "cursor": cursor, **rng})
            page = orjson.loads(body)
            n, pages, cursor = n + len(page["events"]), pages + 1, page["next_cursor"]
        return {"status": status, "rest": rest, "first": first, "first_wall": first_wall,
                "first_hwm": first_hwm, "events": n, "pages": pages, "wall": time.perf_counter() - t0,
                "hwm": hwm_mib(proc.pid)}
    finally:
        stop_peer(proc)


def export(code: Path, store: Path, events: int) -> dict:
    proc, port = start(code, store, "--no-compact", "--query-timeout", "600")
    try:
        rest = hwm_mib(proc.pid)
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t0 = time.perf_counter()
        con.request("GET", "/api/v1/export?" + urllib.parse.urlencode(
            {"limit": 1000, "from": T0 - 1000, "to": T0 + events + 1000}))
        resp = con.getresponse()
        size = lines = 0
        while chunk := resp.read(MiB):
            size += len(chunk)
            lines += chunk.count(b"\n")
        return {"status": resp.status, "rest": rest, "events": lines, "bytes": size,
                "wall": time.perf_counter() - t0, "hwm": hwm_mib(proc.pid)}
    finally:
        stop_peer(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=75)
    ap.add_argument("--event-mib", type=float, default=4.0)
    ap.add_argument("--code", type=Path, action="append", default=[], help="another checkout to compare with")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None, help="where the store is built (default: a temp dir)")
    args = ap.parse_args()
    tmp = args.dir or Path(tempfile.mkdtemp(prefix="page-bytes-bench-"))
    try:
        built = tmp / "built"
        if not (built / "parquet").exists():
            t0 = time.perf_counter()
            build(built, args.events, int(args.event_mib * MiB))
            print(f"stored {args.events} events of {args.event_mib:g} MiB in {time.perf_counter() - t0:.0f} s")
        codes = [HERE.parent.resolve(), *[c.resolve() for c in args.code]]
        print(f"load {os.getloadavg()[0]:.1f}")
        print(f"{'round code':<22}{'question':<9}{'status':>7}{'events':>8}{'pages':>6}{'wall s':>8}"
              f"{'rest MiB':>9}{'peak MiB':>9}   first page (events, s, peak MiB)")
        for r in range(args.rounds):
            for code in codes[r % len(codes):] + codes[:r % len(codes)]:
                name = "this" if code == codes[0] else code.name
                for question in ("search", "export"):
                    store = tmp / "run"
                    shutil.rmtree(store, ignore_errors=True)
                    shutil.copytree(built, store)
                    fn = search if question == "search" else export
                    got = fn(code, store, args.events)
                    extra = (f"   {got['first']}, {got['first_wall']:.1f}, {got['first_hwm']:.0f}"
                             if question == "search" else f"   {got['bytes'] / 1e6:.0f} MB")
                    print(f"{r + 1} {name:<20}{question:<9}{got['status']:>7}{got['events']:>8}"
                          f"{got.get('pages', 1):>6}{got['wall']:>8.1f}{got['rest']:>9.0f}{got['hwm']:>9.0f}{extra}",
                          flush=True)
            print(f"  load {os.getloadavg()[0]:.1f}")
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
