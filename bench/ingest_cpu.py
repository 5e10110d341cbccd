#!/usr/bin/env python3
"""CPU per million events of the HTTP bulk paths' own work, in one process, paired across checkouts.

    .venv/bin/python bench/ingest_cpu.py [-n 400000] [--repeat 5] [--code <before> --code <after>]

What bench/ingest_http.py measures end to end (a server, its sockets and disk) also holds
what every protocol shares (reading the body, the group commit, the query view's load of new
lines when a query runs) and, on a shared machine, its noise. This runs only the work that
differs by protocol, with the same bodies (bench/ingest_http.py's builders, ~8 MB each):
parsing the body into events (``http_ndjson.parse_body``, ``es_bulk.parse_bulk``; OTLP JSON's
``otlp_json.parse_json`` and OTLP protobuf's ``otlp.parse_protobuf`` into a LineBlock, encoded
as it is stored), encoding
them as the store's lines (the segment writer's ``encode_lines``, a seq each) and building
the answer (``es_bulk.bulk_response``: the clients' full answer, or Beats' ``filter_path``); besides
bench/ingest_http.py's bodies, ``es-bulk-filebeat``: documents as Filebeat 8 sends them.
Each round runs every checkout once, in turn, in a fresh process (``python`` in that checkout,
so its ``logmesh`` is imported); the figure is the median of the rounds' process CPU seconds
per million events.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_http import (  # noqa: E402
    body_es,
    body_es_ids,
    body_es_nested,
    body_ndjson,
    body_otlp_json,
    body_otlp_protobuf,
    frames,
)


def body_filebeat(evs: list) -> bytes:
    """What Filebeat 8 sends by default: its agent, ecs, input and host objects, the file
    and the offset of each line, beside the message."""
    return b"".join(b'{"create":{"_index":"filebeat-8"}}\n' + orjson.dumps(
        {"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".000Z",
         "agent": {"name": "web-1", "type": "filebeat", "version": "8.17.0",
                   "id": "5f2c0d4e-7a1b-4c3d-9e8f-0a1b2c3d4e5f"},
         "ecs": {"version": "8.0.0"}, "input": {"type": "filestream"},
         "host": {"name": "web-1", "hostname": "web-1", "architecture": "x86_64"},
         "log": {"offset": i * 240, "file": {"path": f"/var/log/{svc}.log"}},
         "message": msg}) + b"\n" for i, (ns, svc, msg) in enumerate(evs))


PROTOCOLS = {"ndjson": (body_ndjson, None), "es-bulk": (body_es, ""),
             "es-bulk-beats": (body_es, "errors,items.*.error,items.*.status"),
             "es-bulk-nested": (body_es_nested, ""), "es-bulk-ids": (body_es_ids, ""), "es-bulk-filebeat": (body_filebeat, ""),
             "otlp-json": (body_otlp_json, "otlp"),  # otlp: otlp_json.parse_json, its LineBlock encoded
             "otlp-protobuf": (body_otlp_protobuf, "otlp-pb"),  # otlp-pb: otlp.parse_protobuf, the same
             "otlp-protobuf-sdk": (partial(body_otlp_protobuf, sdk=True), "otlp-pb")}

# Run in the checkout measured: the bodies from a file, one JSON line of seconds out.
CHILD = r"""
import json, sys, time
import msgspec
from logmesh.logs.ingest import es_bulk, http_ndjson, otlp, otlp_json
bodies, filter_path = json.load(open(sys.argv[1])), sys.argv[2]
encode_lines = msgspec.json.Encoder().encode_lines
seq, spent, events = 0, 0.0, 0
for path in bodies:
    body = open(path, "rb").read()
    t0 = time.process_time()
    if filter_path in ("otlp", "otlp-pb"):
        parse = otlp_json.parse_json if filter_path == "otlp" else otlp.parse_protobuf
        block = parse(body, 1795626000000).block
        block.encode(range(seq, seq + block.count))
        seq += block.count
        spent += time.process_time() - t0
        events += block.count
        continue
    if filter_path == "-":
        got, errors = http_ndjson.parse_body(body)
        parsed = None
    else:
        parsed = es_bulk.parse_bulk(body, None, 1795626000000)
        got = parsed.events
    for ev in got:
        ev.seq = seq = seq + 4
    encode_lines(got)
    if parsed is not None:
        es_bulk.bulk_response(parsed, 3, filter_path or None)
    spent += time.process_time() - t0
    events += len(got)
print(json.dumps({"cpu": spent, "events": events}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--events", type=int, default=400_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--body-bytes", type=int, default=8 << 20)
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="a checkout to measure (default: this one); given twice, paired rounds")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    codes = a.code or [HERE.parent]
    evs = frames(a.events, seed=1)
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ingest_cpu.") as tmp:
        lists = {}
        for proto in a.protocols.split(","):
            build = PROTOCOLS[proto][0]
            per = max(1, a.body_bytes // max(1, len(build(evs[:200])) // 200))
            paths = []
            for i in range(0, a.events, per):
                path = Path(tmp) / f"{proto}-{i}.body"
                path.write_bytes(build(evs[i:i + per]))
                paths.append(str(path))
            lists[proto] = Path(tmp) / f"{proto}.json"
            lists[proto].write_text(json.dumps(paths))
        for r in range(a.repeat):
            for proto in lists:
                for code in codes[::-1] if r % 2 else codes:  # each once per round, in turn first
                    fp = PROTOCOLS[proto][1]
                    out = subprocess.run([sys.executable, "-c", CHILD, str(lists[proto]),
                                          "-" if fp is None else fp], cwd=code, check=True,
                                         capture_output=True, text=True).stdout
                    res = json.loads(out)
                    assert res["events"] == a.events, res
                    name = proto if len(codes) < 2 else f"{proto}@{code.name}"
                    rows.setdefault(name, []).append(res["cpu"] / (a.events / 1e6))
                    print(f"round {r} {name:28} CPU {rows[name][-1]:.3f} s/M", flush=True)
    print(f"\nmedian of {a.repeat} rounds, {a.events:,} events in ~{a.body_bytes >> 20} MB bodies, "
          "one process (parse, encode as stored, answer):\n")
    print("| path | CPU s per M events (median) | min | max |")
    print("|---|---:|---:|---:|")
    summary = {}
    for name, xs in rows.items():
        summary[name] = statistics.median(xs)
        print(f"| {name} | {summary[name]:.3f} | {min(xs):.3f} | {max(xs):.3f} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"summary": summary, "rounds": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
