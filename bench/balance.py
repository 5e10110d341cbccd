#!/usr/bin/env python3
"""``--workers 2`` with and without connection balancing: events/s and how the events split.

    .venv/bin/python bench/balance.py [-n 1000000] [-c 4] [--rounds 5] [--json out.json]

One ``logmesh logs --workers 2 --fsync batch`` per measurement (its supervisor
and two workers), fed ~200-byte book packets over C connections by
bench/loadgen.py (bench/ingest_peers.py's ``measure``: every event counted on
disk). Rounds alternate ``--balance`` (the default: a worker holding more
connections hands the next one to its sibling, logs/ingest/balance.py) and
``--no-balance`` (the kernel's SO_REUSEPORT hash alone), so a shared machine's
load falls on both alike. For each run: events/s, CPU per million events, and
the events each worker stored (its share: 50 % is even).
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

MODES = ("--balance", "--no-balance")


def one(mode: str, connections: int, events: int, workdir: Path) -> dict:
    data = workdir / "data"
    port = free_port()
    cmd = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--workers", "2", mode,
           "--port", str(port), "--http-port", str(free_port()), "--data-dir", str(data),
           "--fsync", "batch", "--max-segment-size", "1GB"]
    counter = LineCounter(data / "segments" / "*.ndjson")
    # warmup: the port answers once the first worker listens; the second may still be starting,
    # and connections made before it listens are all the first one's, whatever the mode
    r = measure(cmd, port, counter, connections, events, verify_paths=counter.paths, name=mode,
                warmup=3.0)
    per = [LineCounter(data / "segments" / f"w{w:02d}-*.ndjson")() for w in (0, 1)]
    r["per_worker"] = per
    r["larger_share_pct"] = round(100 * max(per) / max(sum(per), 1), 1)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--events", type=int, default=1_000_000)
    ap.add_argument("-c", "--connections", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    runs: list[dict] = []
    for rnd in range(a.rounds):
        for mode in (MODES if rnd % 2 == 0 else MODES[::-1]):
            with tempfile.TemporaryDirectory(prefix="logmesh-balance-") as tmp:
                r = one(mode, a.connections, a.events, Path(tmp))
            r["round"] = rnd
            runs.append(r)
            print(f"round {rnd} {mode:12} {r['events_per_s']:>9,} events/s  {r['cpu_s_per_M']} CPU s/M  "
                  f"split {r['per_worker']}  lost {r['lost']}  dups {r.get('duplicates')}",
                  file=sys.stderr, flush=True)
    print("| mode | runs (events/s) | median events/s | CPU s per M (median) | larger worker's share "
          "of events, per run | lost | dups |")
    print("|---|---|--:|--:|---|--:|--:|")
    for mode in MODES:
        rs = [r for r in runs if r["name"] == mode]
        rates = ", ".join(f"{r['events_per_s']:,}" for r in rs)
        shares = ", ".join(f"{r['larger_share_pct']} %" for r in rs)
        print(f"| `{mode}` | {rates} | "
              f"{statistics.median(r['events_per_s'] for r in rs):,.0f} | "
              f"{statistics.median(r['cpu_s_per_M'] or 0 for r in rs):.2f} | {shares} | "
              f"{sum(r['lost'] for r in rs)} | {sum(r.get('duplicates') or 0 for r in rs)} |")
    ratios = [b["events_per_s"] / n["events_per_s"] for b, n in zip(
        [r for r in runs if r["name"] == MODES[0]], [r for r in runs if r["name"] == MODES[1]],
        strict=True) if n["events_per_s"]]
    if ratios:
        print(f"\nbalanced / kernel hash, per round: {', '.join(f'{x:.2f}' for x in ratios)} "
              f"(median {statistics.median(ratios):.2f})")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"runs": runs, "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
