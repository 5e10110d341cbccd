#!/usr/bin/env python3
"""What the RED summary adds to compaction: one segment compacted with and without it.

    .venv/bin/python bench/red_summary_cost.py --dir /tmp/logmesh-bench-query --rounds 3

Reads a segment that bench/query.py generated (its raw/ NDJSON, ~208k events an hour of
its day) and compacts it into a scratch directory, alternating rounds with the summary
(store/red_summary.py) and without it (compaction as it was before), and prints each
round's process CPU and wall seconds and the ratio of the medians. The machine is shared:
only the paired ratio means much.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logmesh.logs.store import compact, layout, red_summary  # noqa: E402
from logmesh.logs.store.reader import list_segments  # noqa: E402


def once(seg, with_summary: bool) -> tuple[float, float]:
    """(CPU s, wall s) of one compaction of ``seg`` into a scratch directory."""
    out = Path(tempfile.mkdtemp(prefix="red-cost-"))
    con = compact.new_connection(threads=2, memory_limit="4GB")
    write = red_summary.write
    if not with_summary:
        compact.red_summary.write = lambda *a, **k: None  # type: ignore[assignment]
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        compact.compact_segment(con, seg, out / layout.PARQUET_DIR)
        return time.process_time() - c0, time.perf_counter() - t0
    finally:
        compact.red_summary.write = write  # type: ignore[assignment]
        con.close()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/logmesh-bench-query"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    args = ap.parse_args()
    segs = list_segments(args.dir / "raw")
    if not segs:
        sys.exit(f"no segments in {args.dir / 'raw'}: run bench/query.py first")
    seg = segs[len(segs) // 2]
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for r in range(args.rounds):
        for with_summary in (r % 2 == 0, r % 2 != 0):  # alternate which goes first
            c, w = once(seg, with_summary)
            cpu[with_summary].append(c)
            print(f"round {r + 1}: {'with' if with_summary else 'without'} summary: CPU {c:.2f} s, wall {w:.2f} s")
    on, off = statistics.median(cpu[True]), statistics.median(cpu[False])
    print(f"{seg.index['count']:,} events: CPU median {on:.2f} s with the summary, {off:.2f} s without: "
          f"+{100 * (on - off) / off:.0f}%")
    if args.json is not None:
        args.json.write_text(orjson.dumps({"events": seg.index["count"], "cpu_with_s": cpu[True],
                                           "cpu_without_s": cpu[False], "added_percent": 100 * (on - off) / off},
                                          option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
