#!/usr/bin/env python3
"""Newest 100 matching a rare word, two checkouts on their own stores, in alternating rounds.

    .venv/bin/python bench/query.py --dir A --keep --only newest      # builds the 10M store once
    .venv/bin/python bench/query.py --dir B --recompact --block-rows 4096 --only newest
    .venv/bin/python bench/rare_word_layout.py --base-code <main checkout> --base-dir A \\
        --dir B [--rounds 5]
    .venv/bin/python bench/rare_word_layout.py --baseline aa0708b --dir A --json out.json

(The store B may be A itself, to pair two codes on one store: --base-dir defaults to --dir;
--baseline REV pairs this tree with commit REV's ``logmesh/``.) Each round runs each side in
a fresh process (the order alternates), which opens the engine, answers every word once
to warm up, then --runs times: the median wall time and the process's CPU per query
(DuckDB's and pyarrow's threads included) are printed, with the answers' counts and
whether both sides returned the same events. The machine is shared: read the ratios
within a round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compact_cost import baseline_tree  # noqa: E402  (bench/compact_cost.py: a commit's logmesh/)

START = 1_795_539_600_000  # bench/query.py's
DAY = 24 * 3_600_000
WORDS = ("segfault", "deadlock", "deadlock and service.name:goods")
SCANS = ("histogram:http.response.status_code >= 500", "count:service.name:goods and log.level:error",
         "top:service.name:members",  # bench/query.py's scans (--scans), and its questions the
         "count:*", "histogram:*", "count:service.name:goods", "top:*")  # block index answers
FREQUENT = ("hour:goods", "hour:failed", "GET")  # frequent words (--frequent), newest 100 over an
# hour (a word in a third of the events) or the day (kept rows past rare.MAX_ROWS: DuckDB's path)

PROBE = r"""
import json, statistics, sys, time
from pathlib import Path
from logmesh.logs.query import kql
from logmesh.logs.query.engine import Engine
store, runs, start, end = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
words = json.loads(sys.argv[5])
eng = Engine(store, threads=2)
def ask(w):
    kind, _, q = w.partition(":") if w.startswith(("count:", "histogram:", "top:", "hour:")) else ("search", "", w)
    node = kql.parse(q)
    if kind == "hour":  # newest 100 over one hour: a frequent word the index cannot narrow
        events, _ = eng.search(node, start + 5 * 3_600_000, start + 6 * 3_600_000, limit=100)
        return len(events), [[e["@timestamp"], e["seq"]] for e in events]
    if kind == "count":
        return eng.count(node, start, end), []
    if kind == "histogram":
        return eng.histogram(node, start, end)["total"], []
    if kind == "top":
        return eng.top(node, start, end, "url.path")["values"][0]["count"], []
    events, _ = eng.search(node, start, end, limit=100)
    return len(events), [[e["@timestamp"], e["seq"]] for e in events]
out = {}
for w in words:
    hits, keys = ask(w)
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        ask(w)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    out[w] = {"ms": 1000 * statistics.median(wall), "cpu_ms": 1000 * statistics.median(cpu),
              "hits": hits, "keys": keys}
print(json.dumps(out))
"""


def probe(code: Path, store: Path, runs: int, words: tuple[str, ...]) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(store), str(runs), str(START),
                           str(START + DAY), json.dumps(words)], check=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(code)}, cwd=code)
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-code", type=Path, help="a checkout of the code to compare with")
    ap.add_argument("--baseline", help="or a commit of this repository to compare with")
    ap.add_argument("--base-dir", type=Path, help="bench/query.py's --dir for it (default: --dir)")
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--dir", type=Path, required=True, help="this code's store's --dir")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scans", action="store_true", help="also bench/query.py's three scans and four questions "
                    "the block index answers")
    ap.add_argument("--frequent", action="store_true", help="also frequent words, over an hour and the day")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    args = ap.parse_args()
    if (args.base_code is None) == (args.baseline is None):
        ap.error("give one of --base-code and --baseline")
    with tempfile.TemporaryDirectory(prefix="rare-word-base-") as scratch:
        if args.baseline:
            args.base_code = baseline_tree(args.baseline, Path(scratch))
        run(args)


def run(args: argparse.Namespace) -> None:
    base_store, store = (args.base_dir or args.dir) / "store", args.dir / "store"
    words = WORDS + (SCANS if args.scans else ()) + (FREQUENT if args.frequent else ())
    sides = {"base": (args.base_code, base_store), "this": (args.code, store)}
    results: dict[str, list[dict]] = {"base": [], "this": []}
    print(f"{'round':<6}{'word':<34}{'base ms':>9}{'this ms':>9}{'base cpu':>10}{'this cpu':>10}"
          f"{'ratio':>7}  hits, same")
    for r in range(args.rounds):
        order = ["base", "this"] if r % 2 == 0 else ["this", "base"]
        got = {side: probe(*sides[side], args.runs, words) for side in order}
        for side in results:
            results[side].append(got[side])
        for w in words:
            b, t = got["base"][w], got["this"][w]
            print(f"{r + 1:<6}{w:<34}{b['ms']:>9.1f}{t['ms']:>9.1f}{b['cpu_ms']:>10.1f}{t['cpu_ms']:>10.1f}"
                  f"{b['ms'] / t['ms']:>6.1f}x  {t['hits']}, {b['keys'] == t['keys'] and b['hits'] == t['hits']}")
    summary: dict[str, dict] = {}
    for w in words:
        ratios = [b[w]["ms"] / t[w]["ms"] for b, t in zip(results["base"], results["this"], strict=True)]
        med = {s: statistics.median(x[w]["ms"] for x in results[s]) for s in results}
        cpu = {s: statistics.median(x[w]["cpu_ms"] for x in results[s]) for s in results}
        print(f"{w}: base median {med['base']:.1f} ms (CPU {cpu['base']:.1f}), this {med['this']:.1f} ms "
              f"(CPU {cpu['this']:.1f}); base/this per round {min(ratios):.1f}-{max(ratios):.1f}x "
              f"(median {statistics.median(ratios):.1f}x)")
        summary[w] = {"base_ms": med["base"], "this_ms": med["this"], "base_cpu_ms": cpu["base"],
                      "this_cpu_ms": cpu["this"], "base_over_this": sorted(ratios)}
    size = {s: sum(p.stat().st_size for p in (d / "parquet").iterdir() if p.is_file())
            for s, d in (("base", base_store), ("this", store))}
    print(f"store bytes: base {size['base']:,}, this {size['this']:,} ({size['this'] / size['base']:.4f}x)")
    if args.json is not None:
        args.json.write_text(json.dumps({"rounds": args.rounds, "runs": args.runs, "baseline": args.baseline,
                                         "words": summary, "store_bytes": size}, indent=2))


if __name__ == "__main__":
    main()
