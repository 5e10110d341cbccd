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

``--ab eager,memmem`` instead answers each word with the seventh pass's changes named
switched off and on in alternating queries of one process (eager: a match's fetch in its
scan's task, rare.Eager; memmem: the candidate search by libc's memmem, byte_search) and
prints both sides' medians and the median of the per-pair ratios: what each is worth on
this machine, the load shared by both sides.
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
    ap.add_argument("--ab", default=None, help="pair these changes off/on in one process: eager,memmem")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from logmesh.logs.query import kql
    from logmesh.logs.query.engine import Engine

    engine = Engine(args.dir / "store", threads=2)
    if args.ab:
        ab(engine, kql, args.words.split(","), args.ab.split(","), args.runs)
        engine.close()
        return
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


def ab(engine: object, kql: object, words: list[str], changes: list[str], pairs: int) -> None:
    from logmesh.logs.query import byte_search, rare
    init, memmem = rare.Eager.__init__, byte_search.MEMMEM

    def switch(on: bool) -> None:
        rare.Eager.__init__ = init if on or "eager" not in changes else (lambda self, limit: init(self, 0))
        byte_search.MEMMEM = memmem if on or "memmem" not in changes else None

    print(f"{', '.join(changes)} off / on in alternating queries, {pairs} pairs a word, medians")
    for word in words:
        node = kql.parse(word)  # type: ignore[attr-defined]
        got: dict[bool, list[tuple[float, float, list]]] = {False: [], True: []}
        for i in range(pairs + 1):
            for on in (False, True) if i % 2 else (True, False):
                switch(on)
                w0, c0 = time.perf_counter(), time.process_time()
                events, _ = engine.search(node, START, START + DAY, limit=100)  # type: ignore[attr-defined]
                if i:  # the first pair warms up
                    got[on].append(((time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3,
                                    [(e["@timestamp"], e["seq"]) for e in events]))
        switch(True)
        off, on_ = got[False], got[True]
        same = all(a[2] == b[2] for a, b in zip(off, on_, strict=True))
        med = [statistics.median(r[k] for r in rows) for rows in (off, on_) for k in (0, 1)]
        ratio = [statistics.median(a[k] / b[k] for a, b in zip(off, on_, strict=True)) for k in (0, 1)]
        print(f"{word:40s} off {med[0]:7.1f} ms (CPU {med[1]:6.1f})  on {med[2]:7.1f} ms (CPU {med[3]:6.1f})  "
              f"off/on per pair: wall {ratio[0]:.2f}x, CPU {ratio[1]:.2f}x, same events: {same}")


if __name__ == "__main__":
    main()
