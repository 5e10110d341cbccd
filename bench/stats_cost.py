#!/usr/bin/env python3
"""What /api/v1/stats costs per MB of new NDJSON, and what reading the lines another way would.

    .venv/bin/python bench/stats_cost.py [--lines 400000]

Writes one segment of ``--lines`` ~250-byte events (7 services) into a temporary data
directory, then counts its events per service three ways, each timed in CPU seconds of this
process (DuckDB's threads included) and wall seconds:

* ``Engine.stats()``, as the API runs it: the refresh loads every new byte into DuckDB's live
  table (query/view.py), then the services are summed;
* one regular expression over the whole file (``"service.name":"..."``);
* ``orjson.loads`` per line;
* ``Engine.stats()`` over the same events stored by the segment writer, which keeps their
  counts (store/live_counts.py, stats13): it reads those and the lines past them, if any.

It answers whether /api/v1/stats under a flood (docs/benchmarks.md) can be made fast by
reading the new lines more cheaply, or only by not reading them at all (counts kept by the
writer as it stores them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from logmesh.logs.event import Event  # noqa: E402
from logmesh.logs.query.engine import Engine  # noqa: E402
from logmesh.logs.store.segment import SegmentWriter  # noqa: E402

SERVICE = re.compile(rb'"service\.name":"((?:[^"\\]|\\.)*)"')


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def writer_counts(lines: int, t0: int) -> tuple[str, float, float, int]:
    """The same events appended by a SegmentWriter (blocks of 500, each waited for), then
    ``Engine.stats()`` timed: the writer's counts, no line read."""
    with tempfile.TemporaryDirectory(prefix="stats-cost-w-") as tmp:
        async def write() -> None:
            w = SegmentWriter(Path(tmp), 0, fsync="off", max_segment_bytes=1 << 40)
            w.open()
            w.start()
            for b in range(0, lines, 500):
                last = w.append_events([Event(
                    timestamp=t0 + i, received_at=t0 + i, service_name=f"svc{i % 7}", level="info",
                    message=f"GET /goods/{i} 200 from 10.0.0.{i % 250} user agent curl/8.5 took "
                    f"{i % 97} ms and more text here", labels={"host": "h1", "n": i})
                    for i in range(b, min(b + 500, lines))])
                await w.durable(last)
            w._io.shutdown(wait=True)  # left active, as under a flood: not sealed

        asyncio.run(write())
        engine = Engine(Path(tmp), threads=1)
        _ = engine.db
        c, w = cpu(), time.perf_counter()
        n = engine.stats()["events"]
        took = ("Engine.stats (writer's counts)", cpu() - c, time.perf_counter() - w, n)
        engine.close()
        return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=400_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stats-cost-") as tmp:
        seg = Path(tmp) / "segments" / "w00-0000000000000001.ndjson"
        seg.parent.mkdir()
        t0 = 1_796_081_203_912
        seg.write_bytes(b"".join(orjson.dumps({
            "seq": i + 1, "@timestamp": t0 + i, "received_at": t0 + i, "service.name": f"svc{i % 7}",
            "log.level": "info", "message": f"GET /goods/{i} 200 from 10.0.0.{i % 250} user agent "
            f"curl/8.5 took {i % 97} ms and more text here", "labels": {"host": "h1", "n": i}}) + b"\n"
            for i in range(args.lines)))
        mb = seg.stat().st_size / 1e6
        engine = Engine(Path(tmp), threads=1)
        _ = engine.db  # opened first: its ~0.3 s is once per worker, not per call
        rows = []
        c, w = cpu(), time.perf_counter()
        n = engine.stats()["events"]
        rows.append(("Engine.stats (no counts kept)", cpu() - c, time.perf_counter() - w, n))
        engine.close()
        buf = seg.read_bytes()
        c, w = cpu(), time.perf_counter()
        n = sum(collections.Counter(SERVICE.findall(buf)).values())
        rows.append(("regex over the file", cpu() - c, time.perf_counter() - w, n))
        c, w = cpu(), time.perf_counter()
        n = sum(collections.Counter(orjson.loads(line).get("service.name")
                                    for line in buf.splitlines()).values())
        rows.append(("orjson per line", cpu() - c, time.perf_counter() - w, n))
        rows.append(writer_counts(args.lines, t0))
    print(f"{args.lines} lines, {mb:.1f} MB; load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    for name, c, w, n in rows:
        print(f"  {name:31} {c:6.3f} CPU s ({c / mb * 1000:5.1f} ms/MB)  {w:6.2f} wall s  {n} events")


if __name__ == "__main__":
    main()
