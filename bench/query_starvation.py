#!/usr/bin/env python3
"""Query starvation (issue 15 item 7): ingest rate and normal-query latency while heavy queries run.

    .venv/bin/python bench/query_starvation.py                    # 1M events, 8 heavy, 64 and 400 terms
    .venv/bin/python bench/query_starvation.py --terms 400 --heavy-from same

1. Builds a store once (bench/query.py's generator and compaction: realistic
   events over 24 hours, Parquet with block indexes) and copies it to a fresh
   data directory per run.
2. Starts ``logmesh logs --standalone --no-supervise`` on it (its own process).
3. Per phase of ``--seconds``: a sender process pushes book packets over TCP
   (4 connections), and the ingest rate is read
   from /metrics (``logmesh_stored_events_total``) at the phase's start and end;
   a "normal" client searches ``service.name:goods`` (newest 100 over the whole
   store) every 0.25 s from 127.0.0.2 and its latencies are kept.
   ``--rate`` paces the sender (default 20,000 events/s, a busy mesh; 0: saturate, which
   measures capacity, but then every query also loads ~64 MB of new NDJSON first).
   Phases: ``alone`` (ingest + normal client), then ``heavy`` (the same, plus
   ``--heavy`` clients each sending the issue's query -- an OR of ``--terms``
   leading-wildcard terms that defeat trigram pruning -- again as soon as it is
   answered). ``--heavy-from same`` sends every heavy query from 127.0.0.1 (one
   client); ``distinct`` from 127.0.1.N, one address each.

Prints one line per phase and a JSON summary: ingest events/s, normal-query
latency (median, p95, max, answers other than 200), heavy answers by status.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_store(base: Path, events: int) -> Path:
    """bench/query.py's store (generated and compacted once, kept in ``base``)."""
    store = base / "store"
    if (store / "parquet").exists():
        return store
    query = _load("query")
    from logmesh.logs.store.compact import compact_segment, new_connection
    from logmesh.logs.store.reader import list_segments

    shutil.rmtree(base, ignore_errors=True)
    t0 = time.perf_counter()
    query.generate(base / "raw", events, 2, 24)
    con = new_connection(threads=2, memory_limit="4GB")
    for seg in list_segments(base / "raw"):
        compact_segment(con, seg, store / "parquet")
    con.close()
    shutil.rmtree(base / "raw")
    print(f"store: {events:,} events generated and compacted in {time.perf_counter() - t0:.0f}s")
    return store


def sender(port: int, stop: multiprocessing.Event, rate: float, connections: int = 4) -> None:  # type: ignore[valid-type]
    """Book packets over TCP until ``stop``: ``rate`` events/s in all, or as fast as the
    service reads them (rate 0)."""
    loadgen = _load("loadgen")
    import random

    rng = random.Random(7)
    per_batch = 1000
    payload = b"".join(loadgen.event_bytes(rng, n) for n in range(per_batch))

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            t0, sent = time.monotonic(), 0
            while not stop.is_set():  # type: ignore[attr-defined]
                s.sendall(payload)
                sent += per_batch
                if rate:
                    ahead = sent / (rate / connections) - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    stop.wait()  # type: ignore[attr-defined]


def http_get(http_port: int, path: str, params: dict, source: str, timeout: float = 60.0) -> tuple[int, float]:
    """(status, seconds) of one GET from the ``source`` address (another client)."""
    import http.client

    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path + "?" + urllib.parse.urlencode(params))
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - t0
    except OSError:
        return 0, time.perf_counter() - t0
    finally:
        conn.close()


def stored_events(http_port: int) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("logmesh_stored_events_total"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def phase(name: str, http_port: int, seconds: float, rng_params: dict, heavy: int, heavy_q: str,
          heavy_from: str) -> dict:
    stop = threading.Event()
    normal: list[tuple[int, float]] = []
    heavy_answers: dict[int, int] = {}
    heavy_times: list[float] = []
    lock = threading.Lock()

    def normal_client() -> None:
        while not stop.is_set():
            normal.append(http_get(http_port, "/api/v1/search",
                                   {"q": "service.name:goods", "limit": 100, **rng_params}, "127.0.0.2"))
            stop.wait(0.25)

    def heavy_client(i: int) -> None:
        source = "127.0.0.1" if heavy_from == "same" else f"127.0.1.{i + 1}"
        while not stop.is_set():
            status, took = http_get(http_port, "/api/v1/search", {"q": heavy_q, **rng_params}, source)
            with lock:
                heavy_answers[status] = heavy_answers.get(status, 0) + 1
                heavy_times.append(took)
            if status != 200:
                stop.wait(0.05)  # a refusal is answered at once: do not spin

    threads = [threading.Thread(target=heavy_client, args=(i,), daemon=True) for i in range(heavy)]
    for t in threads:
        t.start()
    time.sleep(1.0 if heavy else 0.0)  # the heavy queries are running
    n0, t0 = stored_events(http_port), time.monotonic()
    nt = threading.Thread(target=normal_client, daemon=True)
    nt.start()
    time.sleep(seconds)
    n1, t1 = stored_events(http_port), time.monotonic()
    stop.set()
    nt.join()
    for t in threads:
        t.join(timeout=120)
    lat = sorted(s for _, s in normal)
    out = {
        "phase": name,
        "ingest_events_per_s": round((n1 - n0) / (t1 - t0)),
        "normal_queries": len(normal),
        "normal_ms_median": round(statistics.median(lat) * 1000, 1) if lat else None,
        "normal_ms_p95": round(lat[max(0, -(-95 * len(lat) // 100) - 1)] * 1000, 1) if lat else None,
        "normal_ms_max": round(lat[-1] * 1000, 1) if lat else None,
        "normal_not_200": sum(1 for st, _ in normal if st != 200),
        "heavy_answers": {str(k): v for k, v in sorted(heavy_answers.items())},
        "heavy_s_max": round(max(heavy_times), 2) if heavy_times else None,
    }
    print(f"{name:7} ingest {out['ingest_events_per_s']:>9,}/s  normal search ms: median "
          f"{out['normal_ms_median']} p95 {out['normal_ms_p95']} max {out['normal_ms_max']} "
          f"(not 200: {out['normal_not_200']})  heavy answers {out['heavy_answers']} "
          f"longest {out['heavy_s_max']}s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the store")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "logmesh-bench-starvation")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    ap.add_argument("--heavy", type=int, default=8, help="heavy clients")
    ap.add_argument("--terms", type=int, nargs="+", default=[64, 400],
                    help="terms of the heavy query's OR (one run each)")
    ap.add_argument("--heavy-from", choices=["same", "distinct"], default="distinct")
    ap.add_argument("--query-timeout", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=20_000,
                    help="events/s offered to ingest (0: as fast as the service takes them)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    store = build_store(args.dir, args.events)
    query = _load("query")
    rng_params = {"from": str(query.START - query.HOUR), "to": str(query.START + 26 * query.HOUR)}
    results = []
    for terms in args.terms:
        # Nine-digit numbers: digits-only runs keep every block (store/trigrams.py), and match nothing.
        heavy_q = " or ".join(f"*{917263548 + 7919 * i}" for i in range(terms))
        data = args.dir / "run"
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(store, data)
        port, http_port = free_port(), free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "logmesh", "logs", "--standalone", "--no-supervise",
             "--data-dir", str(data), "--port", str(port), "--http-port", str(http_port),
             "--query-timeout", str(args.query_timeout)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(args.dir / "logs.err", "w"))
        stop = multiprocessing.Event()
        send = None
        try:
            for _ in range(100):
                try:
                    stored_events(http_port)
                    break
                except OSError:
                    time.sleep(0.1)
            send = multiprocessing.Process(target=sender, args=(port, stop, args.rate), daemon=True)
            send.start()
            time.sleep(2.0)  # the sender is up to speed
            offered = f"{args.rate:,.0f}/s" if args.rate else "as fast as it goes"
            print(f"-- heavy query: OR of {terms} leading-wildcard terms, {args.heavy} clients "
                  f"({args.heavy_from} address), --query-timeout {args.query_timeout:g}, ingest offered "
                  f"{offered}", flush=True)
            run = {"terms": terms, "heavy": args.heavy, "heavy_from": args.heavy_from, "rate": args.rate,
                   "events_in_store": args.events, "cpus": os.cpu_count(), "phases": []}
            run["phases"].append(phase("alone", http_port, args.seconds, rng_params, 0, heavy_q,
                                       args.heavy_from))
            run["phases"].append(phase("heavy", http_port, args.seconds, rng_params, args.heavy,
                                       heavy_q, args.heavy_from))
            run["phases"].append(phase("after", http_port, args.seconds / 3, rng_params, 0, heavy_q,
                                       args.heavy_from))
            results.append(run)
        finally:
            stop.set()
            if send is not None:
                send.join(timeout=5)
                if send.is_alive():
                    send.terminate()
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print(json.dumps(results, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
