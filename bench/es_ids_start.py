#!/usr/bin/env python3
"""What the ``_id`` window's start costs (logs/ingest/es_ids.py ``BulkIds.open``) on a store
of the last hour with ``--events`` events of which ``--ids`` carry an ES ``_id``: the journal's
re-read alone (the code before es_ids_store.py) against it plus the store's ids
(``ids_since``), with the journal whole and with it emptied; beside them the loss ledger's
start-up scan of the same store (ledger.py ``rebuild``), which every start pays already.

    .venv/bin/python bench/es_ids_start.py [--events 1000000] [--ids 100000] [--compact] [--repeat 3]

The store is written by the real SegmentWriter (64 MB segments; ``--compact``: every sealed
one compacted to Parquet by the real Compactor, the state an hour after a burst) and the
journal by BulkIds.claim. Printed: CPU and wall seconds of each, medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
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
            if i % every == 0:
                labels = {"es.id": f"doc-{i:012d}", "es.index": "app"}
            batch.append(Event(timestamp=now + i, received_at=now, service_name="goods", level="info",
                               trace_id=f"{i:032x}", message=f"GET /goods/{i % 97} 200 {i % 13} ms",
                               labels=labels))
        last = writer.append_events(batch)
        await writer.durable(last)
        keyed = [(ev.labels["es.index"], orjson.dumps(ev.labels["es.id"]), ev.seq) for ev in batch
                 if "es.id" in ev.labels]
        keys, seqs = [(a, b) for a, b, _ in keyed], [s for _, _, s in keyed]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--compact", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="es-ids-start-"))
    try:
        asyncio.run(fill(tmp, a.events, max(1, a.events // a.ids)))
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
