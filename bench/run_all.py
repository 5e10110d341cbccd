#!/usr/bin/env python3
"""``make bench``: run every benchmark, then write docs/benchmarks.md and docs/benchmarks.json.

Each benchmark runs as its own process (one after the other: the machine has
two cores and every figure is a comparison made inside one run). Its printed
report goes into the page as it is; its JSON (where it writes one) into
docs/benchmarks.json, with the machine, the commands and the date.

    .venv/bin/python bench/run_all.py [--quick]     # --quick: smaller runs, for a smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable


def steps(quick: bool) -> list[tuple[str, str, list[str]]]:
    """(name, what it shows, argv); every argv writes JSON to OUT/<name>.json."""
    # 1M events: at ~800k events/s a run of 300k lasted 0.4 s, and the last group commit and
    # the start of the connections weighed on it; the book's own service gets 300k (its default)
    n_ingest, repeat = ("100000", "1") if quick else ("1000000", "3")
    return [
        ("ingest", "Ingest side by side: the same ~200-byte book log packets over TCP from one "
                   "load generator process; events/s to the last event on disk, every event counted.",
         [PY, "bench/ingest.py", "-n", n_ingest, "--repeat", repeat, "--json", str(OUT / "ingest.json")]),
        ("ingest_http", "HTTP ingest per protocol (NDJSON, Elasticsearch bulk, OTLP, Loki) beside "
                        "the book TCP path in the same run: ~200-byte events in 8 MB bodies over "
                        "4 connections into one worker, --fsync batch; events/s and CPU per million.",
         [PY, "bench/ingest_http.py", "-n", "200000" if quick else "1000000", "--repeat", repeat,
          "--json", str(OUT / "ingest_http.json")]),
        ("ingest_cpu", "The HTTP bulk paths' own work (parse, encode as stored, answer) for NDJSON "
                       "and Elasticsearch bulk, in one process: CPU per million events.",
         [PY, "bench/ingest_cpu.py", "-n", "100000" if quick else "400000", "--repeat", "2" if quick else "5",
          "--json", str(OUT / "ingest_cpu.json")]),
        ("segment_write", "The segment writer alone: CPU per million events to take ~7 MB blocks "
                          "of stored lines, 4 in flight, and write them with group commit.",
         [PY, "bench/segment_write.py", "-n", "2000000" if quick else "10000000", "--rounds", repeat,
          "--json", str(OUT / "segment_write.json")]),
        ("derive", "What storing book packets unparsed costs later: compaction and the Elasticsearch "
                   "encoder over the same events, stored as the book-block path writes them and "
                   "with their fields parsed at ingest.",
         [PY, "bench/derive.py", "-n", "100000" if quick else "500000", "--json", str(OUT / "derive.json")]),
        ("shipper", "What shipping costs a service: ns per event on the request path; gateway "
                    "requests/s and latency with shipping on and off, alternating in one run.",
         [PY, "bench/shipper.py", "--runs", "1" if quick else "3", "--json", str(OUT / "shipper.json")]),
        ("shipper_batch", "The shipper's CPU per event in a service, hand-over to ack, on the "
                          "mesh's two shapes (the gateway's access log, goods' packets).",
         [PY, "bench/shipper_batch.py", "--events", "50000" if quick else "200000",
          "--rounds", "1" if quick else "4", "--json", str(OUT / "shipper_batch.json")]),
        ("mesh", "The mesh's request path beside the chapter's Node mesh: wrk through each "
                 "gateway to goods, GET and POST at 16 and 64 connections, rounds alternating.",
         [PY, "bench/mesh.py", "--rounds", "1" if quick else "3", "--seconds", "3" if quick else "10",
          "--json", str(OUT / "mesh.json")]),
        ("gateway_path", "The gateway's request path in one process without sockets: CPU per "
                         "request of its HTTP protocol, the route, the client and the access log.",
         [PY, "bench/gateway_path.py", "--requests", "20000" if quick else "100000",
          "--rounds", "1" if quick else "3",
          "--json", str(OUT / "gateway_path.json")]),
        ("goods_path", "goods' POST path in one process without sockets: CPU per POST from "
                       "the packet to its reply, 8 a grouped commit to a WAL file.",
         [PY, "bench/goods_path.py", "--requests", "4000" if quick else "12000",
          "--rounds", "1" if quick else "3", "--json", str(OUT / "goods_path.json")]),
        ("acked_batch", "The logs service's CPU per event of the mesh's acked batches in one "
                        "process: the batch, request_event, the ledger and the gateway counts.",
         [PY, "bench/acked_batch.py", "--batches", "100" if quick else "300",
          "--rounds", "1" if quick else "5", "--json", str(OUT / "acked_batch.json")]),
        ("acked_whole", "The same batches from the frame's bytes to the ack through the store "
                        "(fsync off and batch, 60 events a batch): the cost per batch and fsync.",
         [PY, "bench/acked_batch.py", "--whole", "--events", "60", "--batches", "50" if quick else "100",
          "--rounds", "1" if quick else "3", "--json", str(OUT / "acked_whole.json")]),
        ("gateway_monitor", "The health monitor's question to the gateway counts every 5 s (in "
                            "the logs service's loop): a minute of 5,000 access logs a second.",
         [PY, "bench/acked_batch.py", "--monitor", "--rate", "5000", "--rounds", "1" if quick else "3",
          "--json", str(OUT / "gateway_monitor.json")]),
        ("query", "Queries over a generated store beside grep over the same events as NDJSON.",
         [PY, "bench/query.py", *(["--events", "1000000", "--runs", "3"] if quick else []),
          "--json", str(OUT / "query.json")]),
        ("rare_word", "Newest 100 matching a rare word over query's store: this tree against aa0708b "
                      "(before the rare path's two reads) in alternating fresh processes, and the scans.",
         [PY, "bench/rare_word_layout.py", "--baseline", "aa0708b", "--dir", "/tmp/logmesh-bench-query",
          "--rounds", "1" if quick else "4", "--scans", "--frequent", "--json", str(OUT / "rare_word.json")]),
        ("rare_word_profile", "A rare word's wall time against its CPU: the query's thread and the "
                              "reading threads, cores busy (query's store).",
         [PY, "bench/rare_word_profile.py", "--dir", "/tmp/logmesh-bench-query", "--runs", "5" if quick else "15"]),
        ("red_cost", "What the RED summary adds to compaction: one of query's segments compacted "
                     "with and without it, alternating.",
         [PY, "bench/red_summary_cost.py", "--rounds", "1" if quick else "3", "--json", str(OUT / "red_cost.json")]),
        ("compact_cost", "Compaction's CPU per million events (one DuckDB thread), query-like and "
                         "book-packet segments, beside main before issue 18's compaction work (9951cc1), "
                         "alternating rounds.",
         [PY, "bench/compact_cost.py", "--rounds", "1" if quick else "3", "--baseline", "9951cc1",
          "--json", str(OUT / "compact_cost.json")]),
        ("ingest_sockets", "Syslog over TCP (RFC 5424 lines, --syslog-port) beside the book's TCP "
                           "path, one worker, fsync batch, alternating rounds.",
         [PY, "bench/ingest_sockets.py", "-n", n_ingest, "--rounds", repeat,
          "--json", str(OUT / "ingest_sockets.json")]),
        ("balance", "--workers 2 over 4 connections with and without connection balancing, "
                    "alternating rounds: events/s and each worker's share.",
         [PY, "bench/balance.py", "-n", n_ingest, "--rounds", "2" if quick else "6",
          "--json", str(OUT / "balance.json")]),
        ("sustained", "--workers 2 with compaction on, paced book packets over 16 connections: "
                      "the rate held, the compaction backlog over time, CPU per million events for "
                      "ingest and for compaction, time from arrival to the block index.",
         [PY, "bench/sustained.py", "--seconds", "15" if quick else "60",
          "--json", str(OUT / "sustained.json")]),
        ("es_sink", "The Elasticsearch sink catching up into a fake cluster in its own process, "
                    "beside the sink of main before issue 21 (paired, alternating rounds).",
         [PY, "bench/es_sink.py", "--events", "50000" if quick else "200000", "--baseline", "5287388",
          "--rounds", "1" if quick else "3", "--json", str(OUT / "es_sink.json")]),
        ("es_sink_book", "The sink beside itself before the book-packet work of issue 21 (173f4ca: "
                         "derived in passes with Python per event, zlib's gzip), both shapes, paired.",
         [PY, "bench/es_sink.py", "--events", "50000" if quick else "200000", "--baseline", "173f4ca",
          "--baseline-batch", "5000", "--rounds", "1" if quick else "3", "--json", str(OUT / "es_sink_book.json")]),
        ("es_sink_syslog", "The sink's encode CPU per event for HTTP-shaped events, book packets and syslog "
                           "lines, in process, beside main before their labels went back as bytes (37e56a8).",
         [PY, "bench/es_sink.py", "--encode", "7", "--events", "20000" if quick else "50000", "--baseline",
          "37e56a8", "--rounds", "2" if quick else "4", "--json", str(OUT / "es_sink_syslog.json")]),
        ("es_sink_gc", "A logs server with the sink, book packets in and out: its full collections "
                       "with and without the gc.freeze() it does once started, alternating.",
         [PY, "bench/es_sink.py", "--server", "20000" if quick else "100000", "--rounds", "1" if quick else "3",
          "--json", str(OUT / "es_sink_gc.json")]),
        ("es_sink_exactly_once", "The sink through faults (429, 503, dropped connections) and "
                                 "kill -9 of its process: every event once in the fake cluster.",
         [PY, "bench/es_sink.py", "--exactly-once", "100000" if quick else "1000000",
          "--json", str(OUT / "es_sink_exactly_once.json")]),
        ("idle_memory", "Resident memory of idle `logmesh logs --workers 2` workers (an empty data "
                        "directory, and a store written an hour before) beside the code before issue "
                        "18's lazy DuckDB, alternating rounds.",
         [PY, "bench/idle_memory.py", "--rounds", "1" if quick else "3", "--baseline", "9951cc1",
          "--json", str(OUT / "idle_memory.json")]),
        ("ui", "The web UI in Debian's chromium: a click on Search to the rows painted, 1 h range, "
               "beside a fetch of the same API page from the same page (paired, alternating).",
         [PY, "bench/ui.py", "--events", "100000" if quick else "600000", "--rounds", "2" if quick else "6",
          "--json", str(OUT / "ui.json")]),
    ]


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                          if ln.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "load_before": os.getloadavg()}


def ratios(ingest: dict) -> list[str]:
    """logmesh beside its peers, per connection count: the median of the ratios taken in each
    round (bench/ingest_peers.py runs every peer once per round), so a slow spell of the shared
    machine weighs on both sides of a ratio alike."""
    by_round: dict[tuple[str, int, int], float] = {}
    for r in ingest.get("runs", []):
        by_round[(r["name"], r["connections"], r.get("round", 0))] = r["events_per_s"]
    conns = sorted({c for _, c, _ in by_round})
    lines = ["| conns | logmesh w2 / rsyslog (best) | logmesh w2 / rsyslog (Direct, async) "
             "| logmesh w2 / node (fixed, quiet) | logmesh w1 / node (fixed, quiet) |",
             "|---:|---:|---:|---:|---:|"]

    def ratio(a: str, b: str, c: int) -> str:
        per_round = sorted(by_round[(a, c, k)] / by_round[(b, c, k)]
                           for (name, cc, k) in by_round
                           if name == a and cc == c and by_round.get((b, c, k)))
        if not per_round:
            return "-"
        return (f"{statistics.median(per_round):.2f}x ({per_round[0]:.2f}-{per_round[-1]:.2f})"
                if len(per_round) > 1 else f"{per_round[0]:.2f}x")

    for c in conns:
        lines.append(f"| {c} | {ratio('logmesh --workers 2', 'rsyslog:linkedlist-txflush', c)} "
                     f"| {ratio('logmesh --workers 2', 'rsyslog:direct-async', c)} "
                     f"| {ratio('logmesh --workers 2', 'node-fixed', c)} "
                     f"| {ratio('logmesh --workers 1', 'node-fixed', c)} |")
    return lines


def merge_sections(page: str, fresh: list[str]) -> list[str]:
    """The page's sections with the fresh ones in their place: a section made by a step
    (heading ``## <step>``) is replaced up to its first ``###`` subsection, a new one goes at
    the end, and every other section stays: the steps not run this time (``--only``) and the
    analyses written by hand (their headings say more than a step's name, or they are a
    step's ``###`` subsections). It rewrote the whole page, then each step's analyses."""
    def heading(section: str) -> str:
        return section.split("\n", 1)[0].strip()

    def replaced(section: str) -> str:
        new = by_heading.pop(heading(section), None)
        if new is None:
            return section.rstrip()
        _, sep, subsections = section.partition("\n### ")
        return new.rstrip() + ("\n\n### " + subsections.rstrip() if sep else "")

    old = ["## " + part for part in ("\n" + page).split("\n## ")[1:]]
    by_heading = {heading(s): s for s in fresh}
    out = [replaced(s) for s in old]
    return out + [s for s in fresh if heading(s) in by_heading]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the benches)")
    ap.add_argument("--only", default="", help="comma list of benchmarks to run")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t_all = time.monotonic()
    results: dict = {"date": started.isoformat(timespec="seconds"), "machine": machine(),
                     "benchmarks": {}}
    sections: list[str] = []
    only = {s for s in args.only.split(",") if s}
    for name, what, argv in steps(args.quick):
        if only and name not in only:
            continue
        cmd = " ".join(Path(a).name if a == PY else a for a in argv).replace(str(ROOT) + "/", "")
        print(f"== {name}: {cmd}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1200)
        took = time.monotonic() - t0
        print(proc.stdout[-3000:], flush=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr, flush=True)
        raw_path = OUT / f"{name}.json"
        raw = json.loads(raw_path.read_text()) if raw_path.exists() else None
        results["benchmarks"][name] = {"command": f".venv/bin/{cmd}", "seconds": round(took, 1),
                                       "exit": proc.returncode, "result": raw}
        body = [f"## {name}", "", what, "", f"Command: `.venv/bin/{cmd}` ({took:.0f} s)", ""]
        report = proc.stdout.strip()
        if name == "ingest":
            body += [report, "", "Ratios of events/s, each taken within one round of the run "
                     "(median, and the range over the rounds):", "", *ratios(raw or {})]
        elif name == "derive":
            body += [report]
        else:
            body += ["```", report, "```"]
        notes = ROOT / "bench" / "notes" / f"{name}.md"  # the analysis, written by hand
        if notes.exists():
            body += ["", notes.read_text().strip()]
        if proc.returncode != 0:
            body += ["", f"**Failed** (exit {proc.returncode}):", "", "```",
                     proc.stderr.strip()[-2000:], "```"]
        sections.append("\n".join(body))
    m = results["machine"]
    head = ["# Benchmarks", "",
            f"Made by `make bench` (bench/run_all.py) on {started:%Y-%m-%d %H:%M} UTC, "
            f"on {m['cpus']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB, "
            f"Python {m['python']}, Linux {m['kernel']}; load average before: "
            f"{', '.join(f'{x:.2f}' for x in m['load_before'])}.",
            "These machines are shared and noisy: each figure is a median of several runs "
            "where the bench says so, and each comparison is made inside one run.",
            "Sections a run did not make again (`--only`, analyses written by hand) keep "
            "their earlier figures; each names its command.",
            "Raw numbers: docs/benchmarks.json.", ""]
    page = ROOT / "docs" / "benchmarks.md"
    kept = merge_sections(page.read_text() if page.exists() else "", sections)
    page.write_text("\n".join(head) + "\n" + "\n\n".join(kept) + "\n")
    raw_page = ROOT / "docs" / "benchmarks.json"
    earlier = json.loads(raw_page.read_text()).get("benchmarks", {}) if raw_page.exists() else {}
    results["benchmarks"] = {**earlier, **results["benchmarks"]}  # as the page: steps not run stay
    raw_json = json.dumps(results, indent=1, default=str).replace(str(ROOT) + "/", "")  # no host paths
    raw_page.write_text(raw_json + "\n")
    print(f"wrote docs/benchmarks.md and docs/benchmarks.json in {time.monotonic() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
