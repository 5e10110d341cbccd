#!/usr/bin/env python3
"""Compaction's CPU per million events, on the NDJSON segments bench/query.py generated.

    .venv/bin/python bench/compact_cost.py --raw /tmp/logmesh-bench-query/raw --segments 4

Compacts the first ``--segments`` segments into a temporary directory with one
DuckDB thread (as the server's compactor does) and prints the process CPU time
per million events, the wall time, and the Parquet + block index bytes. With
``--profile`` it prints where the time goes (pyinstrument). The code measured is
whatever ``logmesh`` the interpreter imports first: put another tree first on
PYTHONPATH to measure that one beside this one (paired, alternating rounds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# this tree, after any tree put first on PYTHONPATH (to measure that one)
_AFTER = len([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
sys.path.insert(1 + _AFTER, str(Path(__file__).resolve().parent.parent))

from logmesh.logs.store import layout  # noqa: E402
from logmesh.logs.store.compact import compact_segment, new_connection  # noqa: E402
from logmesh.logs.store.reader import list_segments  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", type=Path, default=Path("/tmp/logmesh-bench-query/raw"))
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    segs = [s for s in list_segments(args.raw) if s.sealed][: args.segments]
    out = Path(tempfile.mkdtemp(prefix="logmesh-compact-cost-"))
    con = new_connection(threads=1, memory_limit="4GB")
    profiler = None
    if args.profile:
        from pyinstrument import Profiler
        profiler = Profiler()
        profiler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = 0
    for seg in segs:
        rows += compact_segment(con, seg, out / layout.PARQUET_DIR)["rows"]
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    size = sum(p.stat().st_size for p in (out / layout.PARQUET_DIR).iterdir())
    print(f"compacted {rows:,} events in {len(segs)} segments: {cpu / rows * 1e6:.2f} CPU s per "
          f"million events, {wall:.1f} s wall, {size:,} bytes")
    con.close()
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
