#!/usr/bin/env python3
"""What the loss ledger's look at the sibling workers (logs/ingest/ledger.py ``_learn_store``)
costs when it has the most to read: a sibling's whole active segment of shipper events.

    .venv/bin/python bench/ledger_look.py [--mb 64] [--repeat 3]

A worker (stream 0) rebuilds its ledger on an empty data directory; a sibling (stream 1) then
stores ``--mb`` MB of shipper events (``event.id`` of 8 instances, ~250 bytes a line, as the
book's access logs) in one active segment; the worker's next look (``joined``: a shipper's
new connection) reads it all. Printed: that look's wall and CPU seconds (what it holds the
event loop for, when run there), split into the read and decode (``_event_ids``) and the
ledger's update (``_learn``), and what a second look (nothing new) costs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from logmesh.logs.event import Event  # noqa: E402
from logmesh.logs.ingest import ledger as ledger_mod  # noqa: E402
from logmesh.logs.ingest.ledger import ShipperLedger  # noqa: E402
from logmesh.logs.store.segment import SegmentWriter  # noqa: E402


async def fill(data: Path, mb: int) -> int:
    """The sibling's active segment, ``mb`` MB of shipper events; the events written."""
    writer = SegmentWriter(data, 1, fsync="off", max_segment_bytes=8 << 30)
    writer.open()
    writer.start()
    now = int(time.time() * 1000)
    n = written = 0
    while written < mb << 20:
        batch = [Event(timestamp=now + i, received_at=now + i, service_name="goods", method="GET",
                       path=f"/goods/{i % 97}", status=200, level="info", trace_id=f"{i:032x}",
                       message=f"GET /goods/{i % 97} 200 {i % 13} ms",
                       event_id=f"instance-{i % 8}-{'x' * 24}:{i // 8 + 1}")
                 for i in range(n, n + 5000)]
        n += len(batch)
        last = writer.append_events(batch)
        await writer.durable(last)
        written = sum(p.stat().st_size for p in data.rglob("*.ndjson"))
    return n  # not closed: a close seals, and the segment stays the sibling's active one


def look(ledger: ShipperLedger) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    ledger.joined("someone")
    return time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    for r in range(a.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="ledger-look-"))
        try:
            ledger = ShipperLedger()
            ledger.rebuild(tmp, worker=0)
            events = asyncio.run(fill(tmp, a.mb))
            size = sum(p.stat().st_size for p in tmp.rglob("*.ndjson"))
            parts = {"decode": 0.0, "learn": 0.0}
            ids_of, learn = ledger_mod._event_ids, ShipperLedger._learn

            def timed_ids(data, _f=ids_of, parts=parts):
                t = time.process_time()
                try:
                    return _f(data)
                finally:
                    parts["decode"] += time.process_time() - t

            def timed_learn(self, ids, _f=learn, parts=parts):
                t = time.process_time()
                try:
                    return _f(self, ids)
                finally:
                    parts["learn"] += time.process_time() - t

            ledger_mod._event_ids, ShipperLedger._learn = timed_ids, timed_learn
            try:
                wall, cpu = look(ledger)
                again_wall, again_cpu = look(ledger)
            finally:
                ledger_mod._event_ids, ShipperLedger._learn = ids_of, learn
            print(f"round {r}: {size / 2**20:.1f} MB, {events:,} events: first look {wall * 1000:.0f} ms "
                  f"wall, {cpu * 1000:.0f} ms CPU (decode {parts['decode'] * 1000:.0f}, learn "
                  f"{parts['learn'] * 1000:.0f}); the next {again_wall * 1000:.1f} ms wall", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
