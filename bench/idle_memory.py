#!/usr/bin/env python3
"""Resident memory of idle logs workers: ``logmesh logs --workers 2``, N seconds after start.

    .venv/bin/python bench/idle_memory.py [--seconds 20] [--rounds 3] [--baseline REF] [--json out.json]

Each round starts ``logmesh logs --workers 2 --standalone`` on two data directories in
turn: an empty one, and a copy of a store written earlier (``--seed`` events over the
day before, sent over HTTP NDJSON, compacted to Parquet, its files' times set an hour
back: a service restarted on yesterday's data with no traffic now). After ``--seconds``
it reads each worker's VmRSS from /proc and stops the service. Nothing asks it
anything: what is measured is what a worker holds before its first question (worker 0
runs the health monitor and the compactor too).

``--baseline REF`` runs the code of REF (``git archive``) in the same rounds,
alternating with this tree's, so both see the same machine. The goal (issue 18): every
idle worker under 60 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from ingest_peers import free_port, start_server, stop_peer  # noqa: E402

GOAL_MB = 60.0


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (the supervisor's workers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker_id(pid: int) -> int:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return int(argv[argv.index(b"--worker-id") + 1])


def run_service(tree: Path, data_dir: Path, seconds: float) -> dict[int, float]:
    """Start ``tree``'s logs service with two workers, wait, and read each worker's RSS (MB)."""
    port, http_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "logmesh", "logs", "--workers", "2", "--standalone",
           "--data-dir", str(data_dir), "--port", str(port), "--http-port", str(http_port)]
    proc = start_server(cmd, http_port, cwd=tree, env={"PYTHONPATH": str(tree)})
    try:
        time.sleep(seconds)
        workers = children(proc.pid)
        return {worker_id(p): round(rss_mb(p), 1) for p in workers}
    finally:
        stop_peer(proc)


def seed_store(data_dir: Path, events: int) -> None:
    """``events`` events over the day before, compacted, the files' times an hour back."""
    port, http_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--data-dir", str(data_dir),
           "--port", str(port), "--http-port", str(http_port), "--max-segment-size", "4MB"]
    proc = start_server(cmd, http_port, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    try:
        day_ago = int(time.time() * 1000) - 86_400_000
        step = 86_400_000 // max(events, 1)
        for first in range(0, events, 10_000):
            body = b"".join(json.dumps({
                "@timestamp": day_ago + i * step, "service.name": ("goods", "members", "gateway")[i % 3],
                "message": f"GET /goods {i} served in {i % 97} ms", "log.level": "info"}).encode() + b"\n"
                for i in range(first, min(events, first + 10_000)))
            req = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/v1/logs", data=body,
                                         headers={"Content-Type": "application/x-ndjson"})
            urllib.request.urlopen(req, timeout=60).read()
    finally:
        stop_peer(proc)
    # a second start seals the last segment and compacts everything (then stops)
    proc = start_server(cmd[:-2] + ["--max-segment-size", "1KB"], http_port, cwd=ROOT,
                        env={"PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            segs = list((data_dir / "segments").glob("*.ndjson"))
            if len(segs) <= 1 and list((data_dir / "parquet").glob("*.parquet")):
                break
            time.sleep(0.5)
    finally:
        stop_peer(proc)
    print(f"seeded store: {len(list((data_dir / 'parquet').glob('*.parquet')))} Parquet files, "
          f"{len(list((data_dir / 'segments').glob('*.ndjson')))} segments", flush=True)
    hour_ago = time.time() - 3600
    for path in data_dir.rglob("*"):
        if path.is_file():
            os.utime(path, (hour_ago, hour_ago))


def export(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True)
    if archive.returncode != 0:  # a shallow clone, or no git: say so, do not fake a comparison
        raise SystemExit(f"--baseline {ref}: not in this clone ({archive.stderr.decode().strip()})")
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="from start to the reading")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=200_000, help="events of the store written earlier")
    ap.add_argument("--baseline", default=None, help="also run this commit's code, alternating")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logmesh-idle-memory-"))
    try:
        trees = {"this": ROOT}
        if args.baseline:
            trees[args.baseline] = export(args.baseline, work / "baseline")
        seeded = work / "seeded"
        seed_store(seeded, args.seed)
        runs: dict[str, dict[str, list[dict[int, float]]]] = {
            name: {"empty": [], "store": []} for name in trees}
        for r in range(args.rounds):
            order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
            for name, tree in order:
                for kind in ("empty", "store"):
                    data = work / f"data-{r}-{kind}-{len(runs[name][kind])}-{name[:8]}"
                    if kind == "store":
                        shutil.copytree(seeded, data)
                    runs[name][kind].append(run_service(tree, data, args.seconds))
                    shutil.rmtree(data, ignore_errors=True)
        print(f"idle RSS (MB) of `logmesh logs --workers 2` {args.seconds:g} s after start, "
              f"median of {args.rounds} rounds (min-max); goal under {GOAL_MB:g} MB")
        print(f"{'code':<10} {'data dir':<28} {'worker 0':>18} {'worker 1':>18}")
        summary: dict[str, dict] = {}
        for name, kinds in runs.items():
            for kind, got in kinds.items():
                cells = []
                for w in (0, 1):
                    vals = [g[w] for g in got if w in g]
                    med = statistics.median(vals) if vals else float("nan")
                    summary.setdefault(name, {}).setdefault(kind, {})[f"w{w}"] = {
                        "median": med, "min": min(vals, default=None), "max": max(vals, default=None)}
                    cells.append(f"{med:6.1f} ({min(vals, default=0):.1f}-{max(vals, default=0):.1f})")
                label = "empty" if kind == "empty" else f"{args.seed:,} events, an hour old"
                print(f"{name:<10} {label:<28} {cells[0]:>18} {cells[1]:>18}")
        if args.json:
            Path(args.json).write_text(json.dumps({"seconds": args.seconds, "rounds": args.rounds,
                                                   "seed": args.seed, "summary": summary,
                                                   "runs": runs}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
