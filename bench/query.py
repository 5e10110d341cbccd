#!/usr/bin/env python3
"""Query benchmark: 10M realistic events, the engine's latency beside grep over the same NDJSON.

    .venv/bin/python bench/query.py                     # 10,000,000 events in /tmp/logmesh-bench-query
    .venv/bin/python bench/query.py --events 1000000 --runs 3

1. Generates the events with DuckDB (seconds, not minutes) as the logs service
   stores them: 2 workers, one NDJSON segment per worker and hour over 24 hours,
   each with its .idx.json. Per request through the gateway there is a gateway
   access log (status code, latency, upstream) and the service's request log
   (the book's raw request frame as message, its params as JSON, key, trace.id);
   some failed requests log an error record instead (level error, a stack trace
   for 5xx), ~0.002% of which say "deadlock" -- the rare word. Services:
   gateway, goods, members, purchases; 7 paths; 200/201/400/404/500/502.
2. Compacts every segment with compact.py (Parquet + block index) into the store.
3. Runs each query --runs times on the engine (in process, warm: median) and the
   nearest grep pipeline once over the NDJSON files (page cache warm), printing
   both latencies and both answers, then the store's bytes beside the NDJSON's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logmesh.logs.query import kql, red  # noqa: E402
from logmesh.logs.query.engine import Engine  # noqa: E402
from logmesh.logs.store import layout, red_summary  # noqa: E402
from logmesh.logs.store.compact import compact_segment, new_connection  # noqa: E402
from logmesh.logs.store.reader import list_segments  # noqa: E402

START = 1_795_539_600_000  # 2026-11-24T17:00:00Z
HOUR = 3_600_000
RARE = "deadlock"  # ~8 per million events, in error records
RARER = "segfault"  # ~1 per million

EVENTS_SQL = """
CREATE OR REPLACE TABLE ev AS
WITH b AS (
  SELECT i, (i // 7) % {workers} AS w, ((i + 1) << 6) | ((i // 7) % {workers}) AS seq,
         {start} + (i * {span} // {n}) + (hash(i, 7) % 40)::BIGINT AS ts,
         i // 2 AS req, i % 2 = 0 AS gw,
         hash(i // 2, 1) % 100 AS r_svc, hash(i // 2, 2) % 100 AS r_op, hash(i // 2, 3) % 10000 AS r_st,
         (hash(i, 4) % 1000000007)::BIGINT AS h4, (hash(i // 2, 5) % 1000000007)::BIGINT AS h5, md5((i // 2)::VARCHAR) AS hx
  FROM range({lo}, {hi}) t(i)
), c AS (
  SELECT *,
    CASE WHEN r_svc < 45 THEN 'goods' WHEN r_svc < 75 THEN 'members' ELSE 'purchases' END AS svc,
    CASE WHEN r_op < 30 THEN 'POST' WHEN r_op < 90 THEN 'GET' ELSE 'DELETE' END AS meth,
    CASE WHEN r_st < 50 THEN 500 WHEN r_st < 70 THEN 502 WHEN r_st < 270 THEN 404
         WHEN r_st < 370 THEN 400 WHEN r_op < 30 THEN 201 ELSE 200 END AS st,
    (h5 % 999999 + 1)::BIGINT AS uid, (h5 % 99999 + 1)::BIGINT AS gid, h5 % 10 = 0 AS ko,
    round((h4 % 80000) / 1000.0 + 0.3, 3) AS took
  FROM b
), d AS (
  SELECT *,
    CASE WHEN r_op % 7 = 0 THEN '/' || svc || CASE svc WHEN 'goods' THEN '/search' WHEN 'members' THEN '/login'
                                              ELSE '/history' END
         WHEN r_op = 99 THEN '/healthz' ELSE '/' || svc END AS path,
    CASE
      WHEN svc = 'goods' AND meth = 'GET' THEN '{{"id":"' || gid || '","sort":"' || ['price','name','date','popular'][1 + h5 % 4]
        || '","page":"' || (1 + h5 % 40) || '","size":"20","category":"' || ['kitchen','living','digital','fashion'][1 + h5 % 4] || '","key":' || req || '}}'
      WHEN svc = 'goods' THEN '{{"name":"' || CASE WHEN ko THEN '머그컵' ELSE ['lamp','desk','pen','notebook','chair'][1 + h5 % 5] END
        || '","category":"living","price":' || (h5 % 990 * 100) || ',"description":"' || CASE WHEN ko THEN '도자기 350ml' ELSE 'LED desk lamp, warm white' END
        || '","key":' || req || '}}'
      WHEN svc = 'members' AND meth = 'POST' THEN '{{"username":"user' || lpad(uid::VARCHAR, 6, '0') || '","password":"' || hx || '","key":' || req || '}}'
      WHEN svc = 'members' THEN '{{"username":"user' || lpad(uid::VARCHAR, 6, '0') || '","city":"' || CASE WHEN ko THEN '서울' ELSE ['Seoul','Busan','Incheon','Daegu'][1 + h5 % 4] END
        || '","fields":"username,email,grade,joined","key":' || req || '}}'
      WHEN meth = 'POST' THEN '{{"userid":' || uid || ',"goodsid":' || gid || ',"quantity":' || (1 + h5 % 5) || ',"coupon":"C' || (1000 + h5 % 9000) || '","key":' || req || '}}'
      ELSE '{{"userid":' || uid || ',"from":"2026-' || lpad((1 + h5 % 12)::VARCHAR, 2, '0') || '-' || lpad((1 + h5 % 28)::VARCHAR, 2, '0')
        || '","status":"' || ['paid','shipped','delivered'][1 + h5 % 3] || '","key":' || req || '}}'
    END AS params,
    substr(hx, 1, 16) AS trace
  FROM c
)
SELECT w, seq, ts,
  '{{"seq":' || seq || ',"@timestamp":' || ts || ',"received_at":' || (ts + 2 + gw::INT) || ',"service.name":"'
  || CASE WHEN gw THEN 'gateway","service.instance":"gateway-5f0c2a9e71b3' ELSE svc || '","service.instance":"' || svc || '-' || substr(md5(svc), 1, 12) END
  || '","source.address":"127.0.0.1","source.port":' || (41000 + w) || ',"http.request.method":"' || meth
  || '","url.path":"' || CASE WHEN gw THEN path ELSE '/' || svc END || '",'
  || CASE
  WHEN gw THEN '"http.response.status_code":' || st || ',"log.level":"'
      || CASE WHEN st >= 500 THEN 'error' WHEN st >= 400 THEN 'warning' ELSE 'info' END
      || '","message":"' || meth || ' ' || path || ' ' || st || ' ' || took || 'ms","event.id":"gateway-5f0c2a9e71b3:'
      || (req + 1) || '","trace.id":"' || trace || '","labels":{{"event.duration_ms":' || took || ',"upstream":"' || svc || '"}}}}'
  WHEN st >= 400 AND h4 % 2 = 0 THEN '"http.response.status_code":' || CASE WHEN st >= 500 THEN 500 ELSE 1 END
      || ',"log.level":"error","message":"' || meth || '/' || svc || ' failed: ' || CASE
          WHEN st >= 500 AND h4 % 500 = 0 THEN '{rare} detected while updating ' || svc || ' row ' || gid
          WHEN st >= 500 AND h4 % 5000 = 2 THEN 'worker ' || (h4 % 8) || ' {rarer} at address 0x7f' || substr(hx, 1, 10)
          WHEN st >= 500 THEN ['database timeout after 5000 ms', 'connection reset by peer', 'internal error'][1 + h4 % 3]
          WHEN st = 404 THEN svc || ' ' || gid || ' not found' ELSE 'invalid ' || ['quantity','username','price'][1 + h4 % 3] END
      || CASE WHEN st >= 500 THEN '","error.stack_trace":"Traceback (most recent call last):\\n  File \\"logmesh/examples/resource.py\\", line 88, in handle\\n    rows = self.db.execute(sql, args)\\nRuntimeError: ' || svc || ' handler failed' ELSE '' END
      || '","event.id":"' || svc || '-' || substr(md5(svc), 1, 12) || ':' || (req + 1) || '","trace.id":"' || trace || '"}}'
  ELSE '"key":"' || req || '","log.level":"info","message":"'
      || replace('{{"uri":"/' || svc || '","method":"' || meth || '","params":' || params || ',"trace.id":"' || trace || '"}}', '"', '\\"')
      || '","params":' || params || ',"event.id":"' || svc || '-' || substr(md5(svc), 1, 12) || ':' || (req + 1)
      || '","trace.id":"' || trace || '"}}'
  END AS line
FROM d
"""


def generate(raw_dir: Path, n: int, workers: int, hours: int) -> list[Path]:
    """NDJSON segments (+ .idx.json) in raw_dir/segments, as the logs service writes them."""
    seg_dir = raw_dir / layout.SEGMENTS_DIR
    seg_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = []
    for hr in range(hours):  # one hour at a time: each worker's segment of that hour
        lo, hi = n * hr // hours, n * (hr + 1) // hours
        con.execute(EVENTS_SQL.format(n=n, lo=lo, hi=hi, workers=workers, start=START, span=hours * HOUR,
                                      hour=HOUR, rare=RARE, rarer=RARER))
        segs = con.execute("SELECT w, min(seq), max(seq), count(*), min(ts), max(ts), arg_min(ts, seq) "
                           "FROM ev GROUP BY w ORDER BY w").fetchall()
        for w, first, last, count, t0, t1, first_ts in segs:
            path = seg_dir / layout.segment_name(w, first)
            con.execute(f"COPY (SELECT line FROM ev WHERE w = {w} ORDER BY seq) TO '{path}' "
                        "(FORMAT csv, HEADER false, DELIMITER '\x01', QUOTE '\x02', ESCAPE '\x02')")
            idx = {"version": layout.SEGMENT_FORMAT_VERSION, "first_seq": first, "last_seq": last,
                   "count": count, "min_ts": t0, "max_ts": t1, "bytes": path.stat().st_size,
                   "sparse": [[first, first_ts, 0]]}
            path.with_name(layout.index_name(path.name)).write_bytes(orjson.dumps(idx))
            paths.append(path)
    con.close()
    return paths


def busiest(answer: dict) -> str:
    """The busiest route of a /routes answer, as the table shows it."""
    r = answer["routes"][0]
    return f"{r['route']} {r['requests']} p95 {r['p95_ms']} ms ({answer['percentiles']})"


def series_total(answer: dict) -> str:
    """A /routes/series answer's requests, summed, and how its percentiles were made."""
    return f"{sum(sum(r['requests']) for r in answer['routes'])} ({answer['percentiles']})"


def red_pairs(engine: Engine, lo: int, hi: int, rounds: int) -> None:
    """Summaries against the exact pass in alternating rounds (the machine is shared: only a
    pair's ratio means much), and the estimates' largest error against the exact percentiles."""
    for name, fn in (("routes", red.routes), ("series", red.series)):
        est_ms, ex_ms, est_cpu, ex_cpu = [], [], [], []
        for _ in range(rounds):
            for exact, out, cpu in ((False, est_ms, est_cpu), (True, ex_ms, ex_cpu)):
                t0, c0 = time.perf_counter(), time.process_time()
                fn(engine, None, lo, hi, now=hi, exact=exact)
                out.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)  # DuckDB's threads too: less moved by load
        ratios = sorted(x / e for e, x in zip(est_ms, ex_ms, strict=True))
        print(f"paired {name}: summaries median {statistics.median(est_ms):.1f} ms "
              f"(CPU {statistics.median(est_cpu):.0f} ms), exact pass {statistics.median(ex_ms):.1f} ms "
              f"(CPU {statistics.median(ex_cpu):.0f} ms), exact/summaries per round "
              f"{ratios[0]:.0f}-{ratios[-1]:.0f}x (median {statistics.median(ratios):.0f}x, {rounds} rounds)")
    est, ex = (red.routes(engine, None, lo, hi, now=hi, exact=e) for e in (False, True))
    worst = max(abs(a[k] - b[k]) / b[k] for a, b in zip(est["routes"] + list(est["services"].values()),
                                                      ex["routes"] + list(ex["services"].values()), strict=True)
                for k in ("p50_ms", "p95_ms", "p99_ms") if b[k])
    same = all((a["requests"], a["errors"], a["server_errors"]) == (b["requests"], b["errors"], b["server_errors"])
               for a, b in zip(est["routes"], ex["routes"], strict=True))
    print(f"routes: counts {'the same' if same else 'DIFFERENT'} in both; percentiles' largest relative "
          f"error {100 * worst:.2f}% (bound {100 * red_summary.ERROR_BOUND:.2f}%)")


def median_ms(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def shell_ms(cmd: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False,
                         env={**os.environ, "LC_ALL": "C"}).stdout
    return (time.perf_counter() - t0) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--runs", type=int, default=5, help="engine runs per query (median)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/logmesh-bench-query"))
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads for compaction")
    ap.add_argument("--keep", action="store_true", help="reuse an existing store in --dir")
    ap.add_argument("--recompact", action="store_true",
                    help="reuse the generated NDJSON in --dir, compact it again (e.g. with --block-rows)")
    ap.add_argument("--block-rows", type=int, default=layout.PARQUET_ROW_GROUP_ROWS,
                    help="rows per Parquet row group / index block")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    ap.add_argument("--only", default=None, help="run only the queries whose name contains this")
    args = ap.parse_args()

    raw, store = args.dir / "raw", args.dir / "store"
    t0 = time.perf_counter()
    t_gen = t_compact = cpu_compact = None
    if not (args.keep and (store / layout.PARQUET_DIR).exists()):
        if args.recompact:
            shutil.rmtree(store, ignore_errors=True)
        else:
            shutil.rmtree(args.dir, ignore_errors=True)
            generate(raw, args.events, args.workers, args.hours)
        t_gen = time.perf_counter() - t0
        con = new_connection(threads=args.threads, memory_limit="8GB")
        t1, c1 = time.perf_counter(), time.process_time()
        for seg in list_segments(raw):
            compact_segment(con, seg, store / layout.PARQUET_DIR, args.block_rows)
        t_compact = time.perf_counter() - t1
        cpu_compact = time.process_time() - c1
        con.close()
        print(f"generated {args.events:,} events in {t_gen:.1f}s, compacted in {t_compact:.1f}s "
              f"({args.events / t_compact / 1e6:.2f}M events/s, {args.threads} threads, "
              f"{cpu_compact / args.events * 1e6:.2f} CPU s per million events)")
    files = sorted(str(p) for p in (raw / layout.SEGMENTS_DIR).glob("*.ndjson"))
    by_time = " ".join(sorted(files, key=lambda f: (int(Path(f).name[4:20]) >> 6, f)))  # ~ time order
    cat = f"cat {' '.join(files)}"

    engine = Engine(store)
    engine.refresh()
    lo, hi = START - HOUR, START + (args.hours + 1) * HOUR
    goods = kql.parse("service.name:goods")
    rare, rarer = kql.parse(RARE), kql.parse(RARER)
    status5xx = kql.parse("http.response.status_code >= 500")
    goods_err = kql.parse("service.name:goods and log.level:error")
    members = kql.parse("service.name:members")
    grep_route = (f"{cat} | grep '\"service.name\":\"gateway\"' | grep -o '\"http.request.method\":\"[A-Z]*\",\"url.path\":\"[^\"]*\"' "
                  "| sort | uniq -c | sort -rn | head -1")
    grep_gateway = f"{cat} | grep -c '\"service.name\":\"gateway\"'"
    queries = [
        ("count over all", lambda: engine.count(None, lo, hi), f"{cat} | grep -c ''"),
        ("histogram over all (100 buckets)",
         lambda: engine.histogram(None, lo, hi)["total"],
         f"{cat} | grep -o '\"@timestamp\":[0-9]*' | awk -F: '{{b[int($2/{(hi - lo) // 100})]++}} END {{for (k in b) n += b[k]; print n}}'"),
        ("service.name:goods count", lambda: engine.count(goods, lo, hi),
         f"{cat} | grep -c '\"service.name\":\"goods\"'"),
        # a page of the usual path (DuckDB): its keys and sizes, then its rows (query/page_bytes.py)
        ("newest 100 events", lambda: len(engine.search(None, lo, hi, limit=100)[0]),
         f"cat {by_time} | tail -100 | wc -l"),
        ("newest 1000 of service.name:goods", lambda: len(engine.search(goods, lo, hi, limit=1000)[0]),
         f"cat {by_time} | grep '\"service.name\":\"goods\"' | tail -1000 | wc -l"),
        (f"newest 100 matching {RARER!r}", lambda: len(engine.search(rarer, lo, hi, limit=100)[0]),
         f"cat {by_time} | grep -i {RARER} | tail -100 | wc -l"),
        (f"newest 100 matching {RARE!r}", lambda: len(engine.search(rare, lo, hi, limit=100)[0]),
         f"cat {by_time} | grep -i {RARE} | tail -100 | wc -l"),
        ("top url.path", lambda: engine.top(None, lo, hi, "url.path")["values"][0],
         f"{cat} | grep -o '\"url.path\":\"[^\"]*\"' | awk '{{c[$0]++}} END {{for (k in c) print c[k], k}}' | sort -rn | head -1"),
        # The same kinds of question where the block index cannot answer: DuckDB reads columns.
        ("scan: histogram status >= 500", lambda: engine.histogram(status5xx, lo, hi)["total"],
         f"{cat} | grep -c '\"http.response.status_code\":50[0-9]'"),
        ("scan: count goods and log.level:error", lambda: engine.count(goods_err, lo, hi),
         f"{cat} | grep '\"service.name\":\"goods\"' | grep -c '\"log.level\":\"error\"'"),
        ("scan: top url.path of members", lambda: engine.top(members, lo, hi, "url.path")["values"][0],
         f"{cat} | grep '\"service.name\":\"members\"' | grep -o '\"url.path\":\"[^\"]*\"' | awk '{{c[$0]++}} END {{for (k in c) print c[k], k}}' | sort -rn | head -1"),
        # RED per route (query/red.py): from the compaction's summaries (+ the range's edges read),
        # and the exact pass over the day's access logs (their labels parsed) as its peer; grep
        # can only count the busiest route's requests (no errors, no percentiles)
        ("routes RED over the day", lambda: busiest(red.routes(engine, None, lo, hi, now=hi)), grep_route),
        ("routes RED, 23 h off the windows' edges",
         lambda: busiest(red.routes(engine, None, START + 437_000, START + 23 * HOUR + 437_000, now=hi)),
         "echo not compared"),  # its edges' windows are read: what a range like now-23h costs
        ("scan: routes RED, exact pass",
         lambda: busiest(red.routes(engine, None, lo, hi, now=hi, exact=True)), grep_route),
        ("routes series (100 buckets)", lambda: series_total(red.series(engine, None, lo, hi, now=hi)),
         grep_gateway),
        ("scan: routes series, exact pass",
         lambda: series_total(red.series(engine, None, lo, hi, now=hi, exact=True)), grep_gateway),
    ]
    if args.only:
        queries = [q for q in queries if args.only in q[0]]
    subprocess.run(["bash", "-c", f"{cat} > /dev/null"], check=False)  # page cache, as for the store
    print(f"\n{'query':38} {'logmesh ms':>11} {'grep ms':>9}   answers (logmesh | grep)")
    rows = []
    for name, fn, cmd in queries:
        fn()  # warm
        ms, result = median_ms(fn, args.runs)
        gms, gout = shell_ms(cmd)
        rows.append({"query": name, "logmesh_ms": round(ms, 2), "grep_ms": round(gms),
                     "logmesh_answer": str(result), "grep_answer": gout.strip()[:200],
                     "grep": cmd.replace(f"cat {by_time}", "cat <segments in time order>")
                                .replace(cat, "cat <segments>")})
        print(f"{name:38} {ms:11.1f} {gms:9.0f}   {str(result)[:60]} | {gout.strip()[:40]}")
    if any("routes" in q[0] for q in queries):
        red_pairs(engine, lo, hi, args.runs)
    nd = sum(os.path.getsize(f) for f in files)
    pq = sum(p.stat().st_size for p in (store / layout.PARQUET_DIR).iterdir()
             if p.name.endswith((layout.PARQUET_SUFFIX, layout.BLOCKS_SUFFIX, layout.RED_SUFFIX)))
    bl = sum(p.stat().st_size for p in (store / layout.PARQUET_DIR).iterdir()
             if p.name.endswith(layout.BLOCKS_SUFFIX))
    rs = sum(p.stat().st_size for p in (store / layout.PARQUET_DIR).iterdir()
             if p.name.endswith(layout.RED_SUFFIX))
    print(f"\nNDJSON {nd:,} bytes; store {pq:,} bytes = {100 * pq / nd:.1f}% "
          f"(of which block indexes {bl:,} bytes = {100 * bl / nd:.2f}%, RED summaries {rs:,} bytes "
          f"= {100 * rs / nd:.2f}%); "
          f"{len(files)} segments, total run {time.perf_counter() - t0:.0f}s")
    engine.close()
    if args.json is not None:
        args.json.write_text(orjson.dumps({
            "events": args.events, "workers": args.workers, "hours": args.hours, "runs": args.runs,
            "block_rows": args.block_rows, "generate_s": t_gen, "compact_s": t_compact,
            "compact_cpu_s": cpu_compact,
            "queries": rows, "ndjson_bytes": nd, "store_bytes": pq, "index_bytes": bl,
            "store_percent": round(100 * pq / nd, 2)}, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
