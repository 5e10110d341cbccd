#!/usr/bin/env python3
"""What the ``_id`` window's start costs (logs/ingest/es_ids.py ``BulkIds.open``) on a store
of the last hour with ``--events`` events of which ``--ids`` carry an ES ``_id``: the journal's
re-read alone (the code before es_ids_store.py) against it plus the store's ids
(``ids_since``), with the journal whole and with it emptied; beside them the loss ledger's
start-up scan of the same store (ledger.py ``rebuild``), which every start pays already.

    .venv/bin/python bench/es_ids_start.py [--events 1000000] [--ids 100000] [--compact] [--repeat 3]
    .venv/bin/python bench/es_ids_start.py --scan-only [--repo DIR] --events 5000000 --ids 0 --compact

The store is written by the real SegmentWriter (64 MB segments; ``--compact``: every sealed
one compacted to Parquet by the real Compactor, the state an hour after a burst) and the
journal by BulkIds.claim. Printed: CPU and wall seconds of each, medians of ``--repeat``.

``--scan-only``: the start's scan alone (``ids_since``), each run in a fresh process, with
its peak RSS (``VmHWM``) beside the process's before the scan (imports), on the store as
written (segments) and, with ``--compact``, again once it is all Parquet files. ``--repo``:
the source trees whose ``ids_since`` the child runs, each on the same store (another
checkout: the code before).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import orjson  # noqa: E402

from logmesh.logs.event import Event  # noqa: E402
from logmesh.logs.ingest import es_ids  # noqa: E402
from logmesh.logs.ingest.es_ids import BulkIds  # noqa: E402
from logmesh.logs.ingest.es_ids_store import ids_since  # noqa: E402
from logmesh.logs.ingest.ledger import ShipperLedger  # noqa: E402
from logmesh.logs.store.compact import Compactor  # noqa: E402
from logmesh.logs.store.segment import SegmentWriter  # noqa: E402


async def fill(data: Path, events: int, every: int) -> None:
    """``events`` ES-like events, one in ``every`` with an ``_id``; its claim journaled."""
    writer = SegmentWriter(data, 0, fsync="off", max_segment_bytes=64 << 20)
    writer.open()
    writer.start()
    ids = BulkIds(data)
    ids.open()
    now = int(time.time() * 1000)
    for start in range(0, events, 5000):
        batch = []
        for i in range(start, min(start + 5000, events)):
            labels = {"es.index": "app"}
            if every and i % every == 0:
                labels = {"es.id": f"doc-{i:012d}", "es.index": "app"}
            batch.append(Event(timestamp=now + i, received_at=now, service_name="goods", level="info",
                               trace_id=f"{i:032x}", message=f"GET /goods/{i % 97} 200 {i % 13} ms",
                               labels=labels))
        last = writer.append_events(batch)
        await writer.durable(last)
        keyed = [(ev.labels["es.index"], orjson.dumps(ev.labels["es.id"]), ev.seq) for ev in batch
                 if "es.id" in ev.labels]
        keys, seqs = [(a, b) for a, b, _ in keyed], [s for _, _, s in keyed]
        if keys:
            ids.claim(keys, seqs, now)
            ids._finish(keys, seqs, True)
    ids.close()
    await writer.close()


def timed(fn) -> tuple[float, float, object]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.process_time() - c, time.perf_counter() - w, out


def old_open(data: Path) -> BulkIds:
    """The start before es_ids_store.py: the journal re-read alone."""
    ids = BulkIds(data)
    ids._learn_store = lambda: None
    ids.open()
    return ids


def new_open(data: Path) -> BulkIds:
    ids = BulkIds(data)
    ids.open()
    return ids


CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from logmesh.logs.ingest.es_ids_store import ids_since
import duckdb  # noqa: F401 (imported by the service before a start: not the scan's)

def hwm():  # VmHWM, not ru_maxrss: Linux keeps the parent's peak in a child's ru_maxrss across exec
    with open("/proc/self/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))

before = hwm()
w, c = time.perf_counter(), time.process_time()
found = ids_since(Path(sys.argv[2]), int(time.time() * 1000) - 3600 * 1000)
print(json.dumps({"cpu": time.process_time() - c, "wall": time.perf_counter() - w, "ids": len(found),
                  "rss_before_mb": before / 1024,
                  "rss_peak_mb": hwm() / 1024}), flush=True)
"""


def scan_in_child(repo: Path, data: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(repo), str(data)], check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def scan_only(tmp: Path, a: argparse.Namespace) -> None:
    def report(state: str) -> None:
        for repo in a.repo or [HERE.parent]:
            runs = [scan_in_child(repo, tmp) for _ in range(a.repeat)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"ids_since, {state:24s} {repo.name:14s} CPU {med['cpu']:7.3f} s  wall {med['wall']:7.3f} s  "
                  f"peak RSS {med['rss_peak_mb']:6.0f} MB (before the scan {med['rss_before_mb']:.0f} MB)  "
                  f"{med['ids']:,.0f} ids", flush=True)

    report("segments")
    if a.compact:
        Compactor(tmp, grace=0).run_once()
        report("all Parquet (compacted)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--compact", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scan-only", action="store_true")
    ap.add_argument("--repo", type=Path, action="append", help="a source tree (repeatable; default: this one)")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="es-ids-start-"))
    try:
        w = time.perf_counter()
        asyncio.run(fill(tmp, a.events, a.events // a.ids if a.ids else 0))
        if a.scan_only:
            size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
            print(f"store: {a.events:,} events, {a.ids:,} with an _id, {size / 2**20:.0f} MB "
                  f"(written in {time.perf_counter() - w:.0f} s)", flush=True)
            scan_only(tmp, a)
            return 0
        if a.compact:
            Compactor(tmp, grace=0).run_once()
        segs = sorted(p.name for p in (tmp / "segments").glob("*.ndjson"))
        pqs = sorted(p.name for p in (tmp / "parquet").glob("*.parquet"))
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        print(f"store: {a.events:,} events, {len(segs)} segment(s), {len(pqs)} Parquet file(s), "
              f"{size / 2**20:.0f} MB; journal {(tmp / 'es-ids' / 'journal').stat().st_size / 2**20:.1f} MB")
        journal = (tmp / "es-ids" / "journal").read_bytes()
        rows: dict[str, list[tuple[float, float]]] = {}

        def run(name: str, fn, check=None) -> None:
            cpu, wall, out = timed(fn)
            if check is not None:
                check(out)
            rows.setdefault(name, []).append((cpu, wall))

        for _ in range(a.repeat):
            (tmp / "es-ids" / "journal").write_bytes(journal)
            run("open, journal whole: before (journal only)", lambda: old_open(tmp),
                lambda ids: len(ids.seen) == a.ids or sys.exit(f"before: {len(ids.seen)} ids"))
            run("open, journal whole: after (+ the store's ids)", lambda: new_open(tmp),
                lambda ids: len(ids.seen) == a.ids or sys.exit(f"after: {len(ids.seen)} ids"))
            run("  of which ids_since (read + decode)",
                lambda: ids_since(tmp, int(time.time() * 1000) - es_ids.WINDOW_MS))
            (tmp / "es-ids" / "journal").write_bytes(b"")
            run("open, journal emptied: before (forgets all)", lambda: old_open(tmp))
            run("open, journal emptied: after (all from the store)", lambda: new_open(tmp),
                lambda ids: len(ids.seen) == a.ids or sys.exit(f"emptied: {len(ids.seen)} ids"))
            run("ledger rebuild (each start pays it already)",
                lambda: ShipperLedger().rebuild(tmp, worker=0))
        for name, vals in rows.items():
            cpu = statistics.median(v[0] for v in vals)
            wall = statistics.median(v[1] for v in vals)
            print(f"{name:52s} CPU {cpu:6.3f} s  wall {wall:6.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
