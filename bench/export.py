#!/usr/bin/env python3
"""GET /api/v1/export of a whole store, NDJSON and CSV, beside DuckDB's own COPY of the same rows.

    .venv/bin/python bench/query.py --events 200000 --dir A --runs 1 --only newest   # the store
    .venv/bin/python bench/export.py --dir A --code <main checkout> [--rounds 2]

Each round starts ``logmesh logs --no-compact`` of each checkout in turn (this one and each
--code; the order alternates) on a copy of A's Parquet files made of hard links (the store is
only read), and asks it for every event of the store's day, newest first, once as NDJSON and
once as CSV (``limit`` = the store's events), reading the body as it streams. Printed per
export: events, bytes, wall, events/s and the server's CPU seconds (its process group, from
/proc) per million events. The peer, in the same run: DuckDB's ``COPY (SELECT * FROM
read_parquet(...) ORDER BY @timestamp DESC, seq DESC) TO 'x.json'`` of the same files in this
process (its CPU, DuckDB's threads included), the floor of what the store could give. The
NDJSON bodies of the checkouts are compared byte for byte. The machine is shared: read CPU
and the ratios within a round.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import duckdb  # noqa: E402
from ingest_peers import free_port, group_cpu_seconds, start_server, stop_peer  # noqa: E402

START = 1_795_539_600_000  # bench/query.py's
HOUR = 3_600_000


def export(code: Path, data: Path, fmt: str, events: int) -> dict:
    http_port = free_port()
    cmd = [sys.executable, "-m", "logmesh", "logs", "--data-dir", str(data), "--http-port", str(http_port),
           "--port", str(free_port()), "--no-compact", "--no-supervise"]
    proc = start_server(cmd, http_port, cwd=code, env={"PYTHONPATH": str(code)}, ready_timeout=60)
    try:
        con = http.client.HTTPConnection("127.0.0.1", http_port, timeout=600)
        query = urllib.parse.urlencode({"from": START - HOUR, "to": START + 25 * HOUR, "limit": events,
                                        "format": fmt, "order": "desc"})
        cpu0, t0 = group_cpu_seconds(proc.pid), time.perf_counter()
        con.request("GET", "/api/v1/export?" + query)
        resp = con.getresponse()
        digest, size, lines = hashlib.sha256(), 0, 0
        while chunk := resp.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
        wall, cpu = time.perf_counter() - t0, group_cpu_seconds(proc.pid) - cpu0
        if resp.status != 200:
            raise SystemExit(f"{code}: export answered {resp.status}")
        rows = lines - (fmt == "csv")  # the CSV's header line (no cell of this store holds a newline)
        return {"events": rows, "bytes": size, "wall": wall, "cpu": cpu, "sha": digest.hexdigest()[:12]}
    finally:
        stop_peer(proc)


def duckdb_copy(parquet: Path, out: Path) -> dict:
    files = sorted(str(p) for p in parquet.glob("*.parquet"))
    con = duckdb.connect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_parquet({files!r}) ORDER BY \"@timestamp\" DESC, seq DESC) "
                f"TO '{out}' (FORMAT json)")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    con.close()
    with open(out, "rb") as f:
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return {"events": lines, "bytes": out.stat().st_size, "wall": wall, "cpu": cpu, "sha": "-"}


def line(name: str, r: dict) -> str:
    return (f"{name:<28}{r['events']:>10,}{r['bytes'] / 1e6:>9.1f}{r['wall']:>8.2f}"
            f"{r['events'] / r['wall']:>11,.0f}{r['cpu'] / r['events'] * 1e6:>10.1f}  {r['sha']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True, help="bench/query.py's --dir")
    ap.add_argument("--code", type=Path, action="append", default=[], help="another checkout to compare with")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--formats", default="ndjson,csv")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="export-bench-"))
    try:
        shutil.copytree(args.dir / "store" / "parquet", tmp / "parquet", copy_function=os.link)
        codes = [HERE.parent.resolve(), *[c.resolve() for c in args.code]]
        events = duckdb_copy(tmp / "parquet", tmp / "warm.json")["events"]
        print(f"{events:,} events; load {os.getloadavg()[0]:.1f}")
        print(f"{'round export':<28}{'events':>10}{'MB':>9}{'wall s':>8}{'events/s':>11}{'CPU s/M':>10}  sha256")
        for r in range(args.rounds):
            print(line(f"{r + 1} duckdb COPY json", duckdb_copy(tmp / "parquet", tmp / "peer.json")))
            for fmt in args.formats.split(","):
                for code in codes[r % len(codes):] + codes[:r % len(codes)]:
                    name = "this" if code == codes[0] else code.name
                    print(line(f"{r + 1} {fmt} {name}", export(code, tmp, fmt, events)), flush=True)
            print(f"  load {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
