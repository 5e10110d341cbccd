#!/usr/bin/env python3
"""/healthz and /api/v1/stats latency while a C socket flood fills the store, this tree paired
with an older commit's.

    .venv/bin/python bench/health_under_flood.py [--conns 64] [--seconds 60] [--workers 2] \
        [--baseline 8061c7c] [--rounds 1]

Per tree and round: starts ``logmesh logs --workers N`` (supervised, --standalone) with its
JSON-lines port, and runs bench/socket_flood.c's generator into it (``--conns`` connections,
``--seconds``, 64 MB segments so compactions run during the flood). Meanwhile a prober asks
``/healthz`` every 0.5 s (timeout 30 s) and ``/api/v1/stats`` every 2 s (timeout 120 s), one at a
time each, and keeps each answer's seconds. After the flood it waits for every line to be
counted by /api/v1/stats and checks each connection's count (none lost, none twice).

Prints per tree and round: /healthz median, p95, max and how many took over 1 s and 5 s (an
orchestrator's health check timeout), the same for stats, the lines written and stored, and
the service's CPU seconds (all workers) with the load average. The machine is shared: compare
the trees of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from compact_cost import baseline_tree  # noqa: E402
from socket_flood import cpu_seconds, wait_healthz  # noqa: E402

from tests.support.procs import free_port  # noqa: E402


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children now alive (the supervisor's workers)."""
    total = cpu_seconds(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            total += cpu_seconds(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


class Prober(threading.Thread):
    """Asks one URL again and again, one request at a time, keeping each answer's seconds."""

    def __init__(self, url: str, every: float, timeout: float) -> None:
        super().__init__(daemon=True)
        self.url, self.every, self.timeout = url, every, timeout
        self.seconds: list[float] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
                    r.read()
                self.seconds.append(time.monotonic() - t0)
            except OSError:
                self.failed += 1
                self.seconds.append(time.monotonic() - t0)
            self.stop.wait(max(0.0, self.every - (time.monotonic() - t0)))


def summary(p: Prober) -> str:
    s = sorted(p.seconds) or [0.0]
    p95 = s[min(len(s) - 1, int(0.95 * len(s)))]
    return (f"n {len(s)} median {statistics.median(s):.3f} p95 {p95:.3f} max {s[-1]:.3f} s; "
            f">1 s {sum(x > 1 for x in s)}, >5 s {sum(x > 5 for x in s)}, failed {p.failed}")


def stats_services(http_port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/stats", timeout=300) as r:
        return json.load(r)["services"]


def one_run(tree: Path, binary: Path, a: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="logmesh-health-flood-"))
    http_port, jsonl_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    logs = subprocess.Popen(
        [sys.executable, "-m", "logmesh", "logs", "--standalone", "--port", "0", "--workers",
         str(a.workers), "--http-port", str(http_port), "--jsonl-port", str(jsonl_port),
         "--data-dir", str(work / "data"), "--max-segment-size", a.segment_size,
         "--max-connections", str(max(1024, 4 * a.conns))],
        env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=open(work / "logs.log", "wb"),
        start_new_session=True)
    try:
        wait_healthz(http_port, 600)
        time.sleep(1.0)  # every worker up
        cpu0 = tree_cpu(logs.pid)
        health = Prober(f"http://127.0.0.1:{http_port}/healthz", 0.5, 30)
        stats = Prober(f"http://127.0.0.1:{http_port}/api/v1/stats", 2.0, 120)
        health.start()
        stats.start()
        out = subprocess.run([str(binary), "127.0.0.1", str(jsonl_port), str(a.conns),
                              str(a.seconds), "jsonl", "flood", "0"],
                             capture_output=True, text=True, timeout=a.seconds + 900)
        health.stop.set()
        stats.stop.set()
        health.join()
        stats.join()
        cpu = tree_cpu(logs.pid) - cpu0
        load = os.getloadavg()[0]
        if out.returncode != 0:
            raise SystemExit(f"socket_flood: {out.stderr}")
        written = {f"flood-{line.split()[1]}": int(line.split()[3]) for line in out.stdout.splitlines()}
        stored: dict[str, int] = {}
        for _ in range(600):  # until every line is counted (bounded)
            stored = {k: v for k, v in stats_services(http_port).items() if k.startswith("flood-")}
            if sum(stored.values()) >= sum(written.values()):
                break
            time.sleep(0.5)
        wrong = sum(stored.get(k, 0) != n for k, n in written.items())
        return {"healthz": summary(health), "stats": summary(stats), "health_s": health.seconds,
                "stats_s": stats.seconds, "written": sum(written.values()),
                "stored": sum(stored.values()), "wrong": wrong, "cpu": cpu, "load": load}
    finally:
        os.killpg(logs.pid, signal.SIGTERM)
        try:
            logs.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(logs.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--segment-size", default="64MB")
    ap.add_argument("--baseline", default="8061c7c", help="commit to pair with ('' for none)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    cc = shutil.which("cc")
    if cc is None:
        print("skipped: no C compiler (cc) on this machine")
        return
    scratch = Path(tempfile.mkdtemp(prefix="logmesh-health-flood-bin-"))
    try:
        binary = scratch / "socket_flood"
        subprocess.run([cc, "-O2", "-Wall", "-o", str(binary), str(HERE / "socket_flood.c")], check=True)
        trees = {"this": ROOT}
        if a.baseline:
            (scratch / "baseline").mkdir()
            trees[a.baseline] = baseline_tree(a.baseline, scratch / "baseline")
        results: dict = {t: [] for t in trees}
        print(f"{a.conns} connections, {a.seconds:g} s, --workers {a.workers}, segments "
              f"{a.segment_size}; load {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores", flush=True)
        for r in range(a.rounds):
            for t in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                res = one_run(trees[t], binary, a)
                results[t].append(res)
                print(f"round {r + 1} {t:8} healthz {res['healthz']}\n"
                      f"{'':17}stats   {res['stats']}\n"
                      f"{'':17}written {res['written']:,} stored {res['stored']:,} connections with a "
                      f"wrong count {res['wrong']}; service CPU {res['cpu']:.1f} s; load {res['load']:.2f}",
                      flush=True)
        if a.json:
            a.json.write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
