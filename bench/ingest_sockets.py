#!/usr/bin/env python3
"""Syslog over TCP beside the book's TCP path, in one run: events/s and CPU per million.

    .venv/bin/python bench/ingest_sockets.py [-n 1000000] [--rounds 3] [-c 1,4] [--json out.json]

One ``logmesh logs`` worker (``--fsync batch``, ``--no-supervise``) per
measurement, fed by bench/loadgen.py as a separate process: ~200-byte book
packets on ``--port`` (the book path), or RFC 5424 syslog lines carrying the
same request frames on ``--syslog-port`` (``loadgen.py --syslog``). Rounds
alternate the two (book first in even rounds, syslog first in odd ones) so
that the load of a shared machine falls on both alike; the report gives each
cell's median and the median of the per-round ratios syslog/book. Every
event is counted on disk by its number (bench/ingest_peers.py's ``measure``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_peers import LineCounter, free_port, measure  # noqa: E402

PATHS = ("book", "syslog")


def command(path: str, port: int, data: Path) -> list[str]:
    cmd = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--no-supervise",
           "--http-port", str(free_port()), "--data-dir", str(data), "--fsync", "batch",
           # one segment per run: sealing starts compaction, a background job no peer has
           "--max-segment-size", "1GB"]
    if path == "book":
        return [*cmd, "--port", str(port)]
    return [*cmd, "--port", str(free_port()), "--syslog-port", str(port)]


def one(path: str, connections: int, events: int, workdir: Path) -> dict:
    data = workdir / "data"
    port = free_port()
    counter = LineCounter(data / "segments" / "*.ndjson")
    r = measure(command(path, port, data), port, counter, connections, events,
                verify_paths=counter.paths, name=path,
                loadgen_args=["--syslog"] if path == "syslog" else [])
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--events", type=int, default=1_000_000)
    ap.add_argument("-c", "--connections", default="1,4", help="comma list")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    conns = [int(c) for c in a.connections.split(",")]
    runs: list[dict] = []
    for rnd in range(a.rounds):
        order = PATHS if rnd % 2 == 0 else PATHS[::-1]
        for c in conns:
            for path in order:
                with tempfile.TemporaryDirectory(prefix=f"logmesh-sock-{path}-") as tmp:
                    r = one(path, c, a.events, Path(tmp))
                r["round"] = rnd
                runs.append(r)
                print(f"round {rnd} {path:6} c={c}: {r['events_per_s']:,} events/s, "
                      f"{r['cpu_s_per_M']} CPU s/M, on disk {r['on_disk_after_stop']:,}/{r['sent']:,}, "
                      f"dups {r.get('duplicates')}", file=sys.stderr, flush=True)
    rows = []
    for c in conns:
        cell = {p: [r for r in runs if r["name"] == p and r["connections"] == c] for p in PATHS}
        ratios = [s["events_per_s"] / b["events_per_s"]
                  for b, s in zip(cell["book"], cell["syslog"], strict=True) if b["events_per_s"]]
        for p in PATHS:
            rs = cell[p]
            rows.append({
                "path": p, "connections": c,
                "events_per_s": round(statistics.median(r["events_per_s"] for r in rs)),
                "events_per_s_all": [r["events_per_s"] for r in rs],
                "cpu_s_per_M": round(statistics.median(r["cpu_s_per_M"] or 0 for r in rs), 2),
                "mean_event_bytes": rs[0]["mean_event_bytes"],
                "lost": sum(r["lost"] for r in rs),
                "duplicates": sum(r.get("duplicates") or 0 for r in rs),
                "syslog_over_book": round(statistics.median(ratios), 2) if p == "syslog" and ratios else None,
            })
    print("| path | conns | events/s (median) | runs | CPU s per M | bytes/event | lost | dups | syslog/book (median of rounds) |")
    print("|---|--:|--:|---|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['path']} | {r['connections']} | {r['events_per_s']:,} | "
              f"{', '.join(f'{x:,}' for x in r['events_per_s_all'])} | {r['cpu_s_per_M']} | "
              f"{r['mean_event_bytes']} | {r['lost']} | {r['duplicates']} | "
              f"{'' if r['syslog_over_book'] is None else r['syslog_over_book']} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"rows": rows, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
