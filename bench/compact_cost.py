#!/usr/bin/env python3
"""Compaction's CPU per million events, this tree paired against an older commit's.

    .venv/bin/python bench/compact_cost.py [--baseline 9951cc1] [--rounds 3] [--json out.json]

Two kinds of sealed segments, ~208k events each, made once in ``--dir``:

* ``query``: bench/query.py's events (gateway access logs and service request logs with
  their fields already apart; the request frame as ``message``),
* ``book``: the book's log packets as book TCP ingest stores them (ingest/book_block.py:
  the request frame as ``message`` only, so compaction derives method, path, key, params
  and trace id from it: the sustained run's events).

Each round compacts ``--segments`` segments of each kind in a fresh process per tree, with
one DuckDB thread (as the server's compactor), this tree and the ``--baseline`` commit's
``logmesh/`` (``git archive``) alternating which goes first, and prints the process CPU per
million events. The child imports what the server has imported before it compacts
(pyarrow, the token hasher) before its clock starts. The machine is shared: the paired
ratio per round is the figure to trust. ``--thread`` compacts in a thread of its own, as the
server does (its malloc arena's page faults differ from the main thread's: the minor page faults
per million events are printed beside the CPU). ``--profile`` prints one compaction's statements
with their CPU instead (this tree only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_BASELINE = "9951cc1"  # main before issue 18's compaction work (DuckDB regex tokens)
KINDS = ("query", "book")
EVENTS = 208_334  # one bench/query.py segment: 10M events over 24 hours and 2 workers


def make_query_segments(raw: Path, segments: int) -> None:
    sys.path.insert(0, str(HERE))
    import query  # bench/query.py
    hours = max(1, -(-segments // 2))  # a segment per worker (2) and hour
    query.generate(raw, EVENTS * 2 * hours, 2, hours)


def make_book_segments(raw: Path, segments: int) -> None:
    """Book packets (bench/loadgen.py's) stored as book TCP ingest stores them."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    from loadgen import DELIM, event_bytes

    from logmesh.logs.ingest import book_block
    from logmesh.logs.store import layout
    seg_dir = raw / layout.SEGMENTS_DIR
    seg_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    t0 = 1_795_539_600_000
    for s in range(segments):
        first = 64 + s * EVENTS * 64
        path = seg_dir / layout.segment_name(0, first)
        with open(path, "wb") as f:
            for i in range(0, EVENTS, 500):
                n = s * EVENTS + i
                frames = [event_bytes(rng, k)[:-len(DELIM)] for k in range(n, n + min(500, EVENTS - i))]
                blk = book_block.parse_block(frames)
                assert blk is not None
                head = book_block.block_head(t0 + n // 100, ("127.0.0.1", 41000), blk.service)
                f.write(book_block.encode_block(blk.messages, range(first + i * 64, first + (i + len(frames)) * 64,
                                                                    64), head))
        idx = {"version": layout.SEGMENT_FORMAT_VERSION, "first_seq": first, "last_seq": first + (EVENTS - 1) * 64,
               "count": EVENTS, "min_ts": t0 + s * EVENTS // 100, "max_ts": t0 + (s + 1) * EVENTS // 100,
               "bytes": path.stat().st_size, "sparse": [[first, t0 + s * EVENTS // 100, 0]]}
        path.with_name(layout.index_name(path.name)).write_bytes(orjson.dumps(idx))


def child(raw: Path, segments: int, in_thread: bool = False) -> None:
    """Compact in this process (the tree first on sys.path) and print the figures as JSON;
    ``in_thread``: in a thread of its own, as the server's compactor does (its buffers then come
    from a thread's malloc arena, whose page faults the main thread's do not show)."""
    from logmesh.logs.store import layout, tokens
    from logmesh.logs.store.compact import compact_segment, new_connection
    from logmesh.logs.store.reader import list_segments
    try:  # what the server has imported before a compaction (this tree's token index)
        import pyarrow.compute  # noqa: F401
    except ImportError:
        pass
    tokens.key_hash(tokens.PROBE)
    segs = [s for s in list_segments(raw) if s.sealed][:segments]
    out = Path(tempfile.mkdtemp(prefix="logmesh-compact-cost-"))
    con = new_connection(threads=1, memory_limit="4GB")
    done: list[int] = []
    t0, c0, f0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def work() -> None:
        done.extend(compact_segment(con, seg, out / layout.PARQUET_DIR)["rows"] for seg in segs)
    if in_thread:
        t = threading.Thread(target=work)
        t.start()
        t.join()
    else:
        work()
    rows = sum(done)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    size = sum(p.stat().st_size for p in (out / layout.PARQUET_DIR).iterdir())
    ndjson = sum(s.path.stat().st_size for s in segs)
    con.close()
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"rows": rows, "cpu_per_M": cpu / rows * 1e6, "wall": wall, "bytes": size,
                      "ndjson": ndjson, "faults_per_M": faults / rows * 1e6}))


class _Timed:
    """A DuckDB connection (or result) whose calls add their thread CPU to ``acc[key]``:
    compaction's statements, each with its fetch."""

    def __init__(self, target, acc: dict, key: str = "") -> None:
        self.target, self.acc, self.key = target, acc, key

    def __getattr__(self, name: str):
        fn = getattr(self.target, name)
        if not callable(fn):
            return fn

        def call(*args, **kw):
            key = re.sub(r"'[^']*'", "?", " ".join(args[0].split()))[:72] if name in ("execute", "sql") else self.key
            c0 = time.thread_time()
            res = fn(*args, **kw)
            self.acc[key] = self.acc.get(key, 0.0) + time.thread_time() - c0
            return _Timed(res, self.acc, key) if name in ("execute", "sql") else res
        return call


def profile(raw: Path, segments: int) -> None:
    """Each statement's thread CPU per million events, and what ran outside them (Python)."""
    sys.path.insert(0, str(ROOT))
    import pyarrow.compute  # noqa: F401

    from logmesh.logs.store import layout, tokens
    from logmesh.logs.store.compact import compact_segment, new_connection
    from logmesh.logs.store.reader import list_segments
    tokens.key_hash(tokens.PROBE)
    acc: dict[str, float] = {}
    con = new_connection(threads=1, memory_limit="4GB")
    out = Path(tempfile.mkdtemp(prefix="logmesh-compact-profile-"))
    c0 = time.thread_time()
    rows = sum(compact_segment(_Timed(con, acc), seg, out / layout.PARQUET_DIR)["rows"]
               for seg in [s for s in list_segments(raw) if s.sealed][:segments])
    total = time.thread_time() - c0
    shutil.rmtree(out, ignore_errors=True)
    for key, cpu in sorted(acc.items(), key=lambda kv: -kv[1])[:12]:
        print(f"{cpu / rows * 1e6:6.2f}  {key}")
    print(f"{(total - sum(acc.values())) / rows * 1e6:6.2f}  outside the statements (Python, Arrow, numpy)")
    print(f"{total / rows * 1e6:6.2f}  CPU s per million events in all ({rows:,} events)")


def run_child(tree: Path, raw: Path, segments: int, in_thread: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--raw", str(raw),
                          "--segments", str(segments), *(["--thread"] if in_thread else [])],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_tree(rev: str, into: Path) -> Path:
    """The ``logmesh/`` package of commit ``rev`` (this repository's), unpacked into ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "logmesh"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "logmesh-bench-compact")
    ap.add_argument("--segments", type=int, default=2, help="segments of each kind a round compacts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit to pair with ('' for none)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--thread", action="store_true",
                    help="compact in a thread of its own, as the server's compactor (not the main thread)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--raw", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.raw, a.segments, a.thread)
        return
    raws = {k: a.dir / k for k in KINDS}
    for kind, make in (("query", make_query_segments), ("book", make_book_segments)):
        seg_dir = raws[kind] / "segments"
        if len(list(seg_dir.glob("*.ndjson"))) < a.segments:
            shutil.rmtree(raws[kind], ignore_errors=True)
            print(f"making {a.segments} {kind} segments in {raws[kind]}", file=sys.stderr)
            make(raws[kind], a.segments)
    if a.profile:
        for kind in KINDS:
            print(f"-- {kind}")
            profile(raws[kind], a.segments)
        return
    trees = {"this": ROOT}
    scratch = Path(tempfile.mkdtemp(prefix="logmesh-compact-base-"))
    try:
        if a.baseline:
            trees[a.baseline] = baseline_tree(a.baseline, scratch)
        results: dict = {k: {t: [] for t in trees} for k in KINDS}
        for r in range(a.rounds):
            order = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for kind in KINDS:
                line = []
                for t in order:
                    res = run_child(trees[t], raws[kind], a.segments, a.thread)
                    results[kind][t].append(res)
                    line.append(f"{t} {res['cpu_per_M']:.2f} ({res.get('faults_per_M', 0) / 1000:.0f}k faults)")
                print(f"round {r + 1} {kind:5}: CPU s per million events: " + ", ".join(line), flush=True)
        summary = {}
        for kind in KINDS:
            med = {t: statistics.median(x["cpu_per_M"] for x in results[kind][t]) for t in trees}
            last = results[kind]["this"][-1]
            s = {"cpu_per_M_median": med, "events": last["rows"],
                 "bytes_of_ndjson_pct": {t: round(100 * results[kind][t][-1]["bytes"] / last["ndjson"], 2)
                                         for t in trees}}
            if a.baseline:
                ratios = sorted(b["cpu_per_M"] / x["cpu_per_M"]
                                for x, b in zip(results[kind]["this"], results[kind][a.baseline], strict=True))
                s["baseline_over_this"] = ratios
            summary[kind] = s
            print(f"{kind}: {last['rows']:,} events a round; median CPU s per million: "
                  + ", ".join(f"{t} {v:.2f}" for t, v in med.items())
                  + (f"; {a.baseline}/this per round {s['baseline_over_this'][0]:.2f}-"
                     f"{s['baseline_over_this'][-1]:.2f}x" if a.baseline else "")
                  + "; Parquet + indexes " + ", ".join(f"{t} {v}%" for t, v in s["bytes_of_ndjson_pct"].items())
                  + " of the NDJSON")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({"rounds": a.rounds, "segments": a.segments, "baseline": a.baseline,
                                          "summary": summary, "results": results}, indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
