#!/usr/bin/env python3
"""What /api/v1/stats costs per MB of new NDJSON, and what reading the lines another way would.

    .venv/bin/python bench/stats_cost.py [--lines 400000]

Writes one segment of ``--lines`` ~250-byte events (7 services) into a temporary data
directory, then counts its events per service three ways, each timed in CPU seconds of this
process (DuckDB's threads included) and wall seconds:

* ``Engine.stats()``, as the API runs it: the refresh loads every new byte into DuckDB's live
  table (query/view.py), then the services are summed;
* one regular expression over the whole file (``"service.name":"..."``);
* ``orjson.loads`` per line.

It answers whether /api/v1/stats under a flood (docs/benchmarks.md) can be made fast by
reading the new lines more cheaply, or only by not reading them at all (counts kept by the
writer as it stores them).
"""

from __future__ import annotations

import argparse
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

from logmesh.logs.query.engine import Engine  # noqa: E402

SERVICE = re.compile(rb'"service\.name":"((?:[^"\\]|\\.)*)"')


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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
        rows.append(("Engine.stats (DuckDB load)", cpu() - c, time.perf_counter() - w, n))
        engine.close()
        buf = seg.read_bytes()
        c, w = cpu(), time.perf_counter()
        n = sum(collections.Counter(SERVICE.findall(buf)).values())
        rows.append(("regex over the file", cpu() - c, time.perf_counter() - w, n))
        c, w = cpu(), time.perf_counter()
        n = sum(collections.Counter(orjson.loads(line).get("service.name")
                                    for line in buf.splitlines()).values())
        rows.append(("orjson per line", cpu() - c, time.perf_counter() - w, n))
    print(f"{args.lines} lines, {mb:.1f} MB; load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    for name, c, w, n in rows:
        print(f"  {name:28} {c:6.2f} CPU s ({c / mb * 1000:5.1f} ms/MB)  {w:6.2f} wall s  {n} events")


if __name__ == "__main__":
    main()
