#!/usr/bin/env python3
"""Newest 100 matching a rare word through the HTTP API, two checkouts in alternating rounds.

    .venv/bin/python bench/query.py --dir A --keep --only newest      # builds the 10M store once
    .venv/bin/python bench/rare_word_http.py --base-code <main checkout> --dir A [--rounds 2]

Each round starts ``logmesh logs --no-compact`` of each checkout (the order alternates) on a
copy of A's Parquet files made of hard links (the store is only read), asks
/api/v1/search for each word once to warm up, then --runs times over one keep-alive
connection, and prints the medians of the client's wall time and of the answer's
``took_ms`` (the server's time for the request), with the events' count. The machine is
shared: read the ratios within a round.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

START = 1_795_539_600_000  # bench/query.py's
DAY = 24 * 3_600_000
WORDS = ("segfault", "deadlock", "deadlock and service.name:goods")


def connect(port: int, proc: subprocess.Popen) -> http.client.HTTPConnection:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"logmesh logs exited with {proc.returncode}")
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            con.request("GET", "/api/v1/stats")
            con.getresponse().read()
            return con
        except OSError:
            time.sleep(0.1)
    raise SystemExit("logmesh logs did not answer within 60 s")


def measure(code: Path, data: Path, port: int, runs: int) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "logmesh", "logs", "--data-dir", str(data),
                             "--http-port", str(port), "--port", str(port + 1), "--no-compact"],
                            cwd=code, env={**os.environ, "PYTHONPATH": str(code)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        con = connect(port, proc)
        out = {}
        for word in WORDS:
            query = urllib.parse.urlencode({"q": word, "from": START, "to": START + DAY, "limit": 100})
            wall, took = [], []
            for i in range(runs + 1):
                t0 = time.perf_counter()
                con.request("GET", "/api/v1/search?" + query)
                resp = con.getresponse()
                body = json.loads(resp.read())
                if resp.status != 200:  # a query timeout (503) on a loaded machine, say
                    raise SystemExit(f"{code}: {word!r} answered {resp.status}: {body}")
                if i:  # the first warms up
                    wall.append((time.perf_counter() - t0) * 1000)
                    took.append(body["took_ms"])
            out[word] = {"ms": statistics.median(wall), "took_ms": statistics.median(took),
                         "hits": len(body["events"])}
        return out
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-code", type=Path, required=True, help="a checkout of the code to compare with")
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--dir", type=Path, required=True, help="bench/query.py's --dir")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--port", type=int, default=18650)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rare-word-http-"))
    try:
        shutil.copytree(args.dir / "store" / "parquet", tmp / "parquet", copy_function=os.link)
        sides = {"base": args.base_code, "this": args.code}
        got: dict[str, list[dict]] = {"base": [], "this": []}
        print(f"{'round':<6}{'word':<34}{'base ms':>9}{'this ms':>9}{'base took':>11}{'this took':>11}  hits")
        for r in range(args.rounds):
            for side in (["base", "this"] if r % 2 == 0 else ["this", "base"]):
                got[side].append(measure(sides[side], tmp, args.port, args.runs))
            for w in WORDS:
                b, t = got["base"][-1][w], got["this"][-1][w]
                print(f"{r + 1:<6}{w:<34}{b['ms']:>9.1f}{t['ms']:>9.1f}{b['took_ms']:>11.1f}{t['took_ms']:>11.1f}"
                      f"  {b['hits']}, {t['hits']}")
        for w in WORDS:
            ratios = [b[w]["ms"] / t[w]["ms"] for b, t in zip(got["base"], got["this"], strict=True)]
            print(f"{w}: base/this per round {min(ratios):.1f}-{max(ratios):.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
