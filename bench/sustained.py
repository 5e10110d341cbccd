#!/usr/bin/env python3
"""Sustained ingest with compaction on: the rate held, the compaction backlog over time.

    .venv/bin/python bench/sustained.py [--seconds 60] [--rate 300000] [-c 16] [--json out.json]
        [--code <checkout> ...] [--rounds 1]

One ``logmesh logs --workers 2 --fsync batch`` (compaction on, as deployed;
64 MB segments so compaction has work all along), fed ~200-byte book packets
over 16 connections (bench/loadgen.py's packets, a pool of them sent again
and again) at ``--rate`` events/s for ``--seconds``, then left to drain. Every two seconds the server's /metrics
give the events stored and compacted (summed over the workers), and the
compacting threads' CPU time (each worker's, for its own segments, summed) (``logmesh_compaction_cpu_seconds_total``); the
process group's CPU comes from /proc. Printed: the rate on disk, the backlog
(stored, not yet in Parquet) over time, CPU per million events for ingest (the
group's CPU less compaction's) and for compaction, and how long an event
waited from its arrival to its block index (for each sample, the time until
the compacted count reached the stored count of that sample). At the end the
events stored are set beside those the load generator sent, and those compacted
beside those stored (both equal when nothing was lost or counted twice).

``--code`` (repeatable) runs the server from other checkouts too (e.g. main's, made with
``git worktree add --detach``), one run each per round, alternating which goes first; the
last lines set their figures side by side. The machine is shared: compare within a round.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_peers import free_port, group_cpu_seconds, start_server, stop_peer  # noqa: E402
from loadgen import build_batches  # noqa: E402

POOL_EVENTS = 200_000  # built once (~40 MB), sent again and again
_METRIC = re.compile(r"^(logmesh_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$", re.M)
SAMPLE_S = 2.0


def metrics(http_port: int) -> dict[str, float]:
    """Each logmesh_ metric summed over its labels (the workers)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        out[name] = out.get(name, 0.0) + float(value)
    return out


class Sender(threading.Thread):
    """One connection sending the pool's batches over and over, paced to ``rate`` events/s:
    loadgen.py builds every payload before it starts (minutes and GBs for a 60 s run at
    300k events/s), so a small pool is built once and sent again."""

    def __init__(self, port: int, pool: list[tuple[bytes, int]], rate: float, until: float) -> None:
        super().__init__(daemon=True)
        self.port, self.pool, self.rate, self.until = port, pool, rate, until
        self.sent = 0

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        start = time.monotonic()
        i = 0
        while time.monotonic() < self.until:
            data, n = self.pool[i % len(self.pool)]
            i += 1
            sock.sendall(data)
            self.sent += n
            ahead = start + self.sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        sock.close()


def run(a: argparse.Namespace, workdir: Path, code: Path) -> dict:
    data = workdir / "data"
    port, http_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--workers", "2",
           "--port", str(port), "--http-port", str(http_port), "--data-dir", str(data),
           "--fsync", "batch", "--max-segment-size", a.segment_size]
    pool = list(build_batches(0, POOL_EVENTS, lines=False, batch_bytes=16 * 1024, seed=1, syslog=False))
    proc = start_server(cmd, port, cwd=code, env={"PYTHONPATH": str(code)})
    time.sleep(3.0)  # both workers listening
    samples: list[dict] = []
    try:
        pgid = proc.pid
        cpu0, m0, t0 = group_cpu_seconds(pgid), metrics(http_port), time.monotonic()
        own0 = time.process_time()  # this process: the senders (and the sampling)
        senders = [Sender(port, pool[k::a.connections], a.rate / a.connections, t0 + a.seconds)
                   for k in range(a.connections)]
        for x in senders:
            x.start()
        load_end = None
        while True:
            time.sleep(SAMPLE_S)
            now = time.monotonic() - t0
            m = metrics(http_port)
            stored = m.get("logmesh_stored_events_total", 0) - m0.get("logmesh_stored_events_total", 0)
            compacted = m.get("logmesh_compacted_events_total", 0) - m0.get("logmesh_compacted_events_total", 0)
            s = {"t": round(now, 1), "stored": int(stored), "compacted": int(compacted),
                 "backlog": int(stored - compacted), "cpu_s": round(group_cpu_seconds(pgid) - cpu0, 2),
                 "compaction_cpu_s": round(m.get("logmesh_compaction_cpu_seconds_total", 0)
                                           - m0.get("logmesh_compaction_cpu_seconds_total", 0), 2),
                 "compaction_s": round(m.get("logmesh_compaction_seconds_total", 0)
                                       - m0.get("logmesh_compaction_seconds_total", 0), 2),
                 # the compacting threads' minor page faults (compact.thread_faults; absent before compact6)
                 "compaction_faults": int(m.get("logmesh_compaction_page_faults_total", 0)
                                          - m0.get("logmesh_compaction_page_faults_total", 0)),
                 "loadgen_cpu_s": round(time.process_time() - own0, 2)}
            samples.append(s)
            print(f"t={s['t']:6.1f}s stored {s['stored']:>11,} compacted {s['compacted']:>11,} "
                  f"backlog {s['backlog']:>10,}  CPU {s['cpu_s']:.1f}s (compaction {s['compaction_cpu_s']:.1f}s)",
                  file=sys.stderr, flush=True)
            if load_end is None and not any(x.is_alive() for x in senders):
                load_end = now
            if load_end is not None and (s["backlog"] <= 0 or now - load_end > a.drain):
                break
    finally:
        stop_peer(proc)
    return {"samples": samples, "load_seconds": load_end, "sent": sum(x.sent for x in senders)}


def report(r: dict, a: argparse.Namespace) -> dict:
    samples = r["samples"]
    end = r["load_seconds"] or samples[-1]["t"]
    during = [s for s in samples if s["t"] <= end + 1e-9] or samples
    last = during[-1]
    rate = last["stored"] / last["t"] if last["t"] else 0.0
    fin = samples[-1]
    ingest_cpu = last["cpu_s"] - last["compaction_cpu_s"]  # while the load ran
    lags = []
    for s in during:  # when did compaction reach what was stored at s?
        done = next((x for x in samples if x["compacted"] >= s["stored"]), None)
        if done is not None and s["stored"]:
            lags.append(round(done["t"] - s["t"], 1))
    half = during[len(during) // 2]
    out = {
        "offered_rate": a.rate, "connections": a.connections, "seconds": a.seconds,
        "stored": fin["stored"], "compacted": fin["compacted"], "sent": r["sent"],
        "rate_during_load": round(rate), "backlog_at_half": half["backlog"], "backlog_at_end": last["backlog"],
        "backlog_max": max(s["backlog"] for s in samples),
        "drained_at_s": fin["t"] if fin["backlog"] <= 0 else None,
        "ingest_cpu_s_per_M": round(ingest_cpu / max(last["stored"], 1) * 1e6, 2),
        "compaction_cpu_s_per_M": round(fin["compaction_cpu_s"] / max(fin["compacted"], 1) * 1e6, 2),
        "compaction_faults_per_M": round(fin.get("compaction_faults", 0) / max(fin["compacted"], 1) * 1e6),
        # the compacting threads' time in compactions over the load's wall time, summed over the
        # workers (each compacts its own segments since branch compact6: up to 2.0 with two; the
        # rest they slept or waited for the next due segment), and the cores the load generator took
        "compaction_busy_during_load": round(last.get("compaction_s", 0) / max(last["t"], 1e-9), 2),
        "loadgen_cores": round(last.get("loadgen_cpu_s", 0) / max(last["t"], 1e-9), 2),
        "arrival_to_index_s": {"median": sorted(lags)[len(lags) // 2] if lags else None,
                               "max": max(lags) if lags else None, "samples": len(lags)},
        "samples": samples,
    }
    print(f"offered {a.rate:,} events/s over {a.connections} connections for {a.seconds}s "
          f"(--workers 2, compaction on, {a.segment_size} segments)")
    print(f"stored {out['stored']:,} of {out['sent']:,} sent; {out['rate_during_load']:,} events/s on disk "
          f"during the load")
    print(f"backlog (stored, not in Parquet): {out['backlog_at_half']:,} at half time, "
          f"{out['backlog_at_end']:,} when the load ended, max {out['backlog_max']:,}; "
          + (f"drained {out['drained_at_s']:.0f}s after the start" if out["drained_at_s"] else
             f"not drained {a.drain:.0f}s after the load"))
    print(f"CPU per million events: ingest {out['ingest_cpu_s_per_M']} s, compaction "
          f"{out['compaction_cpu_s_per_M']} s (of the events compacted; its threads' page faults "
          f"{out['compaction_faults_per_M']:,} per million, 0 where not counted)")
    print(f"during the load: the compacting threads compacted {out['compaction_busy_during_load']:.0%} of the "
          f"time (summed over the workers), the load generator took {out['loadgen_cores']} of a core")
    lag = out["arrival_to_index_s"]
    print(f"arrival to block index: median {lag['median']} s, max {lag['max']} s "
          f"({lag['samples']} samples whose events were all compacted)")
    print("\n   t (s)      stored   compacted     backlog")
    for s in samples[:: max(1, len(samples) // 20)]:
        print(f"{s['t']:8.1f} {s['stored']:>11,} {s['compacted']:>11,} {s['backlog']:>11,}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rate", type=int, default=300_000, help="offered events/s (all connections)")
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("--segment-size", default="64MB")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the backlog after the load")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--code", type=Path, action="append", default=None,
                    help="a checkout to run the server from (repeatable; default this tree)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each --code, alternating the order")
    a = ap.parse_args(argv)
    codes = [c.resolve() for c in (a.code or [HERE.parent])]
    outs: list[tuple[int, Path, dict]] = []
    for r in range(a.rounds):
        for code in (codes if r % 2 == 0 else codes[::-1]):
            print(f"\n== round {r + 1}: {code}", flush=True)
            with tempfile.TemporaryDirectory(prefix="logmesh-sustained-") as tmp:
                outs.append((r + 1, code, report(run(a, Path(tmp), code), a)))
    if len(outs) > 1:
        print("\nround  code                               events/s  backlog at half / end / max  ingest CPU s/M  "
              "compaction CPU s/M  faults/M  compacting  arrival to index (median, max)")
        for r, code, out in outs:
            lag = out["arrival_to_index_s"]
            backlog = f"{out['backlog_at_half']:,} / {out['backlog_at_end']:,} / {out['backlog_max']:,}"
            print(f"{r:5}  {str(code)[-32:]:32} {out['rate_during_load']:>10,} {backlog:>28} "
                  f"{out['ingest_cpu_s_per_M']:>15} {out['compaction_cpu_s_per_M']:>19} "
                  f"{out['compaction_faults_per_M']:>9,} "
                  f"{out['compaction_busy_during_load']:>10.0%}  {lag['median']}, {lag['max']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps([{"round": r, "code": str(c), **o} for r, c, o in outs]
                                     if len(outs) > 1 else outs[0][2], indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
