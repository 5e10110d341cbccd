#!/usr/bin/env python3
"""RED per route under a flood of distinct paths: /routes and /routes/series, this tree paired
against an older commit's.

    .venv/bin/python bench/routes_flood.py [--routes 60000] [--events 120000] [--baseline 04a99ef] [--rounds 3]

Makes a store once: ``--events`` gateway access logs over the last hour, spread over
``--routes`` distinct paths (``GET /items/<n>``, what ids in URLs or a scanner leave), in two
forms: ``live`` (a segment not compacted: read by the exact pass) and ``compacted`` (a Parquet
file with its RED summary). Each round asks query/red.py's routes() and series() (limit 100,
the web UI's) in a fresh process per tree, this tree and ``--baseline``'s ``logmesh/`` (``git
archive``) alternating which goes first, after a first call that loads the store, and prints
each answer's process CPU and wall seconds. The machine is shared: the paired ratio per round
is the figure to trust.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FORMS = ("live", "compacted")
ASKS = ("routes", "series")


def make_store(data_dir: Path, events: int, routes: int, compacted: bool) -> None:
    """``events`` access logs over the hour before now, route i % ``routes`` each."""
    from logmesh.logs.event import Event
    from logmesh.logs.store.compact import Compactor
    from logmesh.logs.store.segment import SegmentWriter

    now = int(time.time() * 1000)
    rnd = random.Random(7)
    batch = [Event(timestamp=now - 3_600_000 + i * 3_600_000 // events, received_at=now, service_name="gateway",
                   method="GET", path=f"/items/{i % routes}", status=500 if i % 50 == 0 else 200, level="info",
                   labels={"upstream": "goods", "upstream.address": "127.0.0.1:9010",
                           "event.duration_ms": round(rnd.uniform(0.5, 20), 3)})
             for i in range(events)]

    async def go() -> None:
        writer = SegmentWriter(data_dir, 0, fsync="off")
        writer.open()
        writer.start()
        await writer.durable(writer.append_events(batch))
        await writer.close()  # sealed
        if compacted:
            Compactor(data_dir, grace=0).run_once()

    asyncio.run(go())


def child(data_dir: Path) -> None:
    """One process's answers: CPU and wall seconds of routes() and series() after a warm-up."""
    from logmesh.logs.query import red
    from logmesh.logs.query.engine import Engine

    engine = Engine(data_dir)
    now = int(time.time() * 1000)
    start = now - 2 * 3_600_000
    out = {}
    red.routes(engine, None, start, now, limit=100, now=now)  # loads the store (a segment: into memory)
    for name, fn in (("routes", red.routes), ("series", red.series)):
        c0, t0 = time.process_time(), time.perf_counter()
        r = fn(engine, None, start, now, limit=100, now=now)
        out[name] = {"cpu": time.process_time() - c0, "wall": time.perf_counter() - t0,
                     "routes": len(r["routes"]), "left_off": r["routes_left_off"], "how": r["percentiles"]}
    engine.close()
    print(json.dumps(out))


def run_child(tree: Path, data_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(data_dir)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=60_000, help="distinct paths")
    ap.add_argument("--events", type=int, default=120_000)
    ap.add_argument("--baseline", default="04a99ef", help="commit to pair with ('' for none)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return
    sys.path[:0] = [str(ROOT), str(HERE)]
    from compact_cost import baseline_tree

    scratch = Path(tempfile.mkdtemp(prefix="logmesh-routes-flood-"))
    try:
        dirs = {form: scratch / form for form in FORMS}
        for form, d in dirs.items():
            make_store(d, a.events, a.routes, form == "compacted")
        trees = {"this": ROOT}
        if a.baseline:
            (scratch / "baseline").mkdir()
            trees[a.baseline] = baseline_tree(a.baseline, scratch / "baseline")
        results: dict = {form: {t: [] for t in trees} for form in FORMS}
        print(f"{a.events:,} access logs over {a.routes:,} routes; load {os.getloadavg()[0]:.2f}", flush=True)
        for r in range(a.rounds):
            order = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for form in FORMS:
                for t in order:
                    res = run_child(trees[t], dirs[form])
                    results[form][t].append(res)
                    print(f"round {r + 1} {form:9} {t:8} " + ", ".join(
                        f"{k} {res[k]['cpu']:.3f} CPU s / {res[k]['wall']:.3f} s ({res[k]['routes']} routes + "
                        f"{res[k]['left_off']:,} left off, {res[k]['how']})" for k in ASKS), flush=True)
        print(f"medians (CPU s), load {os.getloadavg()[0]:.2f}:")
        for form in FORMS:
            for k in ASKS:
                med = {t: statistics.median(x[k]["cpu"] for x in results[form][t]) for t in trees}
                ratio = ""
                if a.baseline:
                    rs = sorted(b[k]["cpu"] / x[k]["cpu"]
                                for x, b in zip(results[form]["this"], results[form][a.baseline], strict=True))
                    ratio = f"; {a.baseline}/this per round {rs[0]:.1f}-{rs[-1]:.1f}x"
                print(f"  {form:9} {k:6} " + ", ".join(f"{t} {v:.3f}" for t, v in med.items()) + ratio)
        if a.json:
            a.json.write_text(json.dumps({"routes": a.routes, "events": a.events, "results": results}, indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
