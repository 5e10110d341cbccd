#!/usr/bin/env python3
"""Where a rare word's wall time goes: the query's own thread against its reading threads.

    .venv/bin/python bench/rare_word_profile.py --dir <bench/query.py's --dir> [--code <checkout>]

Opens the engine on ``<dir>/store`` (only read) with the code of ``--code`` (default: this
tree), answers each word once to warm up, then --runs times, and prints per word the
medians of: wall time, the process's CPU, the CPU of the query's own thread (planning,
ordering, the events' build) and of every other thread (rare.py's reading threads and
DuckDB's), and ``cores busy`` = CPU / wall: on two idle cores, 2.0 means the reading
threads never waited (for each other, the GIL, or a wave's last task). Read it on a
quiet machine; on a shared one, CPU is what carries over.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

START = 1_795_539_600_000  # bench/query.py's
DAY = 24 * 3_600_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, required=True, help="bench/query.py's --dir")
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--words", default="segfault,deadlock", help="comma-separated queries")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from logmesh.logs.query import kql
    from logmesh.logs.query.engine import Engine

    engine = Engine(args.dir / "store", threads=2)
    print(f"code {args.code}, {args.runs} runs a word, medians")
    print(f"{'word':40s} {'wall ms':>8s} {'CPU ms':>8s} {'query thread':>13s} {'other threads':>14s} {'cores busy':>11s}")
    for word in args.words.split(","):
        node = kql.parse(word)
        events, _ = engine.search(node, START, START + DAY, limit=100)
        rows = []
        for _ in range(args.runs):
            w0, c0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
            engine.search(node, START, START + DAY, limit=100)
            wall = time.perf_counter() - w0
            cpu, own = time.process_time() - c0, time.thread_time() - t0
            rows.append((wall * 1e3, cpu * 1e3, own * 1e3, (cpu - own) * 1e3, cpu / wall))
        med = [statistics.median(r[i] for r in rows) for i in range(5)]
        print(f"{word + f' ({len(events)} hits)':40s} {med[0]:8.1f} {med[1]:8.1f} {med[2]:13.1f} {med[3]:14.1f} {med[4]:11.2f}")
    engine.close()


if __name__ == "__main__":
    main()
