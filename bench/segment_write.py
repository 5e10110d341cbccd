"""The segment writer alone: CPU per million events to take blocks of stored lines and write
them with group commit, as the ingest paths hand them over (issue 19).

Each round runs a fresh process per checkout (``--code``, given twice: alternating, the
order swapped every round), so two versions of store/segment.py are paired in one run.
``--conns`` blocks are kept in flight, each waited for as an HTTP POST waits for its
acknowledgement, so blocks arrive while a flush is writing, as they do under load.

    .venv/bin/python bench/segment_write.py --code <main checkout> --code . --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import asyncio, json, os, sys, time
from logmesh.logs.store.segment import SegmentWriter
events, block_events, line_bytes, conns = (int(a) for a in sys.argv[1:5])
data_dir = sys.argv[5]
line = b'{"@timestamp":"2026-11-29T23:00:00.000Z","seq":1,"message":"' + b"x" * max(line_bytes - 70, 1) + b'"}\n'
blocks = [line * block_events for _ in range(4)]  # distinct objects, as each body's are

async def main():
    w = SegmentWriter(data_dir, fsync="batch")
    w.start()
    inflight = []
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(events // block_events):
        seqs = w.reserve(block_events)
        last = w.append_encoded(blocks[k % 4], seqs[0], seqs[-1], block_events, 0, 0, 0,
                                services={})
        inflight.append(asyncio.ensure_future(w.durable(last)))
        if len(inflight) >= conns:
            await inflight.pop(0)
        else:
            await asyncio.sleep(0)
    await asyncio.gather(*inflight)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await w.close()
    print(json.dumps({"wall": wall, "cpu": cpu, "events": w.stats["events"]}))

asyncio.run(main())
"""


def run(code: Path, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="segwrite-") as d:
        env = {**os.environ, "PYTHONPATH": str(code)}
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.events), str(args.block_events),
                              str(args.line_bytes), str(args.conns), d],
                             env=env, cwd=code, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", action="append", type=Path, help="a checkout (give two to pair)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("-n", "--events", type=int, default=2_000_000)
    ap.add_argument("--block-events", type=int, default=30_000, help="events a block (a body)")
    ap.add_argument("--line-bytes", type=int, default=230)
    ap.add_argument("--conns", type=int, default=4, help="blocks in flight")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()
    codes = [c.resolve() for c in (args.code or [Path(".")])]
    cpu: dict[Path, list[float]] = {c: [] for c in codes}
    for r in range(args.rounds):
        order = codes if r % 2 == 0 else codes[::-1]
        for c in order:
            res = run(c, args)
            per_m = res["cpu"] / res["events"] * 1e6
            cpu[c].append(per_m)
            print(f"round {r} {c.name:20} {res['events'] / res['wall']:>12,.0f} ev/s  "
                  f"CPU {per_m:.3f} s/M", flush=True)
    print(f"\n{args.events:,} events, blocks of {args.block_events:,} x {args.line_bytes} B, "
          f"{args.conns} in flight; median CPU s per million events:")
    for c in codes:
        print(f"  {c.name:20} {statistics.median(cpu[c]):.3f}  (rounds: "
              f"{', '.join(f'{x:.3f}' for x in cpu[c])})")
    if len(codes) == 2:
        a, b = codes
        ratios = [x / y for x, y in zip(cpu[b], cpu[a], strict=True)]
        print(f"  {b.name} / {a.name} per round: {', '.join(f'{x:.2f}' for x in ratios)}")
    if args.json:
        args.json.write_text(json.dumps({c.name: {"cpu_s_per_million": statistics.median(cpu[c]),
                                                  "rounds": cpu[c]} for c in codes}, indent=1))


if __name__ == "__main__":
    main()
