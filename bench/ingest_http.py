#!/usr/bin/env python3
"""HTTP ingest per protocol beside the book TCP path, in one run (issue 19).

    .venv/bin/python bench/ingest_http.py [-n 1000000] [--repeat 3] [--json bench/out/ingest_http.json]

One logs worker (``logs --standalone --fsync batch --no-compact``: a 256 MB
segment sealed mid-run would be compacted to Parquet in the same process and
its CPU counted against whichever protocol wrote more bytes), a fresh data
directory per measurement. The HTTP protocols each get the same ~200-byte events (the
book's request frames, as bench/loadgen.py makes them, as the message, with
a service name and a level) in bodies of ``--body-bytes`` posted by
``--posts`` concurrent connections, each post answered once durable; the
book TCP path is bench/ingest_peers.py's ``measure`` with the load generator
over as many connections. Rounds alternate the protocols (the machine is
shared: ratios within a round mean more than absolute figures).

events/s = events stored / (first byte sent .. last answer); CPU s/M = the
server's CPU seconds (its process group, from /proc) per million events; client CPU s/M =
this process's (the posting threads': send, read the answer, check it), on the same cores;
page faults per M = the server's minor faults (/proc) per million events.
Every answer's count is checked, then the lines on disk.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import cramjam  # noqa: E402
import orjson  # noqa: E402
from ingest_peers import (  # noqa: E402
    LineCounter,
    free_port,
    group_cpu_seconds,
    logmesh_peer,
    measure_peer,
    start_server,
    stop_peer,
)
from loadgen import _request_frame  # noqa: E402

PROTOCOLS = ("book-tcp", "ndjson", "es-bulk", "es-bulk-beats", "es-bulk-nested", "es-bulk-ids", "otlp-protobuf", "otlp-protobuf-sdk", "otlp-json", "loki-protobuf",
             "loki-json", "loki-protobuf-nolevel", "loki-json-nolevel", "loki-json-levelled")
SERVICES = ("goods", "members", "purchases")


def frames(n: int, seed: int) -> list[tuple[int, str, str]]:
    """(epoch ns, service, message) for ``n`` events: ~200 bytes as each protocol frames them."""
    rng = random.Random(seed)
    t0 = time.time_ns()
    return [(t0 + i * 1000, SERVICES[i % 3], _request_frame(rng, i)) for i in range(n)]


def body_ndjson(evs: list) -> bytes:
    return b"".join(orjson.dumps({"@timestamp": ns // 1_000_000, "service.name": svc,
                                  "log.level": "info", "message": msg}) + b"\n" for ns, svc, msg in evs)


def body_es(evs: list) -> bytes:
    """What Vector, Fluent Bit or a program sends: flat documents under one repeated action."""
    return b"".join(b'{"create":{"_index":"bench"}}\n' + orjson.dumps(
        {"@timestamp": ns // 1_000_000, "service.name": svc, "log.level": "info",
         "message": msg}) + b"\n" for ns, svc, msg in evs)


def body_es_ids(evs: list) -> bytes:
    """The official clients' bulk helper with an ``_id`` per document (also Fluent Bit's
    ``Generate_ID``, Logstash's ``document_id``): an action line each, all different."""
    return b"".join(b'{"index":{"_index":"bench","_id":"%d-%d"}}\n' % (ns, i) + orjson.dumps(
        {"@timestamp": ns // 1_000_000, "service.name": svc, "log.level": "info",
         "message": msg}) + b"\n" for i, (ns, svc, msg) in enumerate(evs))


def body_es_nested(evs: list) -> bytes:
    """What Filebeat sends: ISO timestamps and nested ECS objects (the per-document path)."""
    return b"".join(b'{"create":{"_index":"bench"}}\n' + orjson.dumps(
        {"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".000Z",
         "service": {"name": svc}, "log": {"level": "info"}, "host": {"name": "web-1"},
         "message": msg}) + b"\n" for ns, svc, msg in evs)


def _otlp_groups(evs: list) -> dict[str, list]:
    groups: dict[str, list] = {}
    for e in evs:
        groups.setdefault(e[1], []).append(e)
    return groups


def body_otlp_protobuf(evs: list, sdk: bool = False) -> bytes:
    """``sdk``: records as the OpenTelemetry Python SDK's logging bridge sends them, code.*
    attributes on every record and the trace and span ids of the span it was logged in."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

    def record(ns: int, svc: str, msg: str) -> LogRecord:
        if not sdk:
            return LogRecord(time_unix_nano=ns, severity_number=9, severity_text="INFO",
                             body=AnyValue(string_value=msg))
        return LogRecord(
            time_unix_nano=ns, observed_time_unix_nano=ns, severity_number=9, severity_text="INFO",
            body=AnyValue(string_value=msg), trace_id=(ns % 2**64).to_bytes(16, "big"),
            span_id=(ns % 2**64).to_bytes(8, "big"), flags=1, attributes=[
                KeyValue(key="code.filepath", value=AnyValue(string_value=f"/srv/{svc}/app.py")),
                KeyValue(key="code.function", value=AnyValue(string_value="handle")),
                KeyValue(key="code.lineno", value=AnyValue(int_value=42))])

    req = ExportLogsServiceRequest()
    for svc, group in _otlp_groups(evs).items():
        rl = req.resource_logs.add()
        rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=svc)))
        sl = rl.scope_logs.add()
        sl.scope.name = "bench"
        sl.log_records.extend(record(ns, svc, msg) for ns, svc, msg in group)
    return req.SerializeToString()


def body_otlp_json(evs: list) -> bytes:
    return orjson.dumps({"resourceLogs": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
         "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": [
             {"timeUnixNano": str(ns), "severityNumber": 9, "severityText": "INFO",
              "body": {"stringValue": msg}} for ns, _, msg in group]}]}
        for svc, group in _otlp_groups(evs).items()]})


def body_loki_protobuf(evs: list, level: bool = True) -> bytes:
    from logmesh.logs.ingest.loki import MESSAGES

    req = MESSAGES["PushRequest"]()
    for svc, group in _otlp_groups(evs).items():
        stream = req.streams.add(labels=f'{{service_name="{svc}", level="info"}}' if level else
                                 f'{{service_name="{svc}"}}')
        for ns, _, msg in group:
            entry = stream.entries.add(line=msg)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ns, 1_000_000_000)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def body_loki_json(evs: list, level: bool = True, levelled: bool = False) -> bytes:
    """``level``: the streams have a level label (with none, each line is searched for its own,
    ingest/line_level.py); ``levelled``: each line is JSON with a ``level`` key, as
    loki-logger-handler sends them (one in 8 an error)."""
    def line(i: int, msg: str) -> str:
        return orjson.dumps({"level": "error" if i % 8 == 0 else "info", "message": msg}).decode() \
            if levelled else msg

    return orjson.dumps({"streams": [
        {"stream": {"service_name": svc, "level": "info"} if level else {"service_name": svc},
         "values": [[str(ns), line(i, msg)] for i, (ns, _, msg) in enumerate(group)]}
        for svc, group in _otlp_groups(evs).items()]})


def es_created(status: int, body: bytes) -> int:
    """An Elasticsearch bulk answer's items created (status 201), when it says no errors.

    Counted in the bytes, not by parsing: the answer is ~190 bytes an item, and orjson.loads
    and a loop over its items cost this client 2.5 CPU s per million events (more than the
    server's parse), on the same two cores as the server, so the client, not the server, set
    the rate. Each connection's first answer is also parsed (``es_parsed``), once the clock
    has stopped: in the timed window those parses were ~0.1 CPU s per million events more.
    """
    if status != 200 or b'"errors":false' not in body[:64]:
        return 0
    return body.count(b'"status":201')


def es_parsed(status: int, body: bytes) -> int:
    """:func:`es_created` by parsing the answer: the first answer of each connection is
    checked both ways, so a change to the answer's shape cannot pass the byte count alone."""
    if status != 200:
        return 0
    doc = orjson.loads(body)
    return 0 if doc["errors"] else sum(1 for i in doc["items"] for item in i.values()
                                       if item["status"] == 201)


# protocol -> (path, content type, body builder, answer check: (status, body) -> events taken)
HTTP = {
    "ndjson": ("/api/v1/logs", "application/x-ndjson", body_ndjson,
               lambda s, b: orjson.loads(b)["accepted"] if s == 200 else 0),
    "es-bulk": ("/_bulk", "application/x-ndjson", body_es, es_created),
    "es-bulk-beats": ("/_bulk?filter_path=errors,items.*.error,items.*.status", "application/x-ndjson",
                      body_es, es_created),
    "es-bulk-nested": ("/_bulk", "application/x-ndjson", body_es_nested, es_created),
    "es-bulk-ids": ("/_bulk", "application/x-ndjson", body_es_ids, es_created),
    "otlp-protobuf": ("/v1/logs", "application/x-protobuf", body_otlp_protobuf, None),
    "otlp-protobuf-sdk": ("/v1/logs", "application/x-protobuf", partial(body_otlp_protobuf, sdk=True),
                          None),
    "otlp-json": ("/v1/logs", "application/json", body_otlp_json, None),
    "loki-protobuf": ("/loki/api/v1/push", "application/x-protobuf", body_loki_protobuf, None),
    "loki-json": ("/loki/api/v1/push", "application/json", body_loki_json, None),
    "loki-protobuf-nolevel": ("/loki/api/v1/push", "application/x-protobuf",
                              partial(body_loki_protobuf, level=False), None),
    "loki-json-nolevel": ("/loki/api/v1/push", "application/json", partial(body_loki_json, level=False),
                          None),
    "loki-json-levelled": ("/loki/api/v1/push", "application/json",
                           partial(body_loki_json, level=False, levelled=True), None),
}


def logs_cmd(port: int, http_port: int, data: Path, max_body: int) -> list[str]:
    return [sys.executable, "-m", "logmesh", "logs", "--standalone", "--port", str(port),
            "--http-port", str(http_port), "--data-dir", str(data), "--fsync", "batch",
            "--max-body-size", str(max_body), "--no-compact", "--no-supervise"]


def minor_faults(pid: int) -> int:
    """The server's minor page faults so far (/proc: all its threads), each a few µs in a VM:
    a buffer malloc maps afresh is faulted in page by page (logs/malloc_tuning.py)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[7])


def run_http(proto: str, bodies: list[tuple[bytes, int]], posts: int, events: int, workdir: Path,
             code: Path | None = None) -> dict:
    path, ctype, _, check = HTTP[proto]
    workdir.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    data = workdir / proto
    max_body = 256 << 20  # snappy bodies grow when unpacked; the limit is not what is measured
    proc = start_server(logs_cmd(port, http_port, data, max_body), http_port, cwd=code,
                        stderr=workdir / f"{proto}.stderr")
    try:
        cpu0, faults0 = group_cpu_seconds(proc.pid), minor_faults(proc.pid)
        per_conn = [bodies[i::posts] for i in range(posts)]
        taken = [0] * posts
        failures: list[str] = []
        firsts: list[tuple[int, bytes, int]] = []  # each connection's first ES answer, parsed after

        def post_all(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=300)
            for k, (body, n) in enumerate(per_conn[i]):
                conn.request("POST", path, body, {"Content-Type": ctype})
                resp = conn.getresponse()
                answer = resp.read()
                got = check(resp.status, answer) if check else (n if resp.status in (200, 204) else 0)
                if check is es_created and k == 0:
                    firsts.append((resp.status, answer, got))
                if got != n:
                    failures.append(f"{resp.status} {answer[:200]!r}")
                taken[i] += got
            conn.close()

        threads = [threading.Thread(target=post_all, args=(i,)) for i in range(posts)]
        t0, client0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.perf_counter() - t0
        client = time.process_time() - client0  # this process's threads: the client's CPU
        cpu = group_cpu_seconds(proc.pid) - cpu0
        faults = minor_faults(proc.pid) - faults0
        for status, answer, got in firsts:  # after the clock: 4 parses of 5.6 MB took 0.1 s/M
            if es_parsed(status, answer) != got:
                failures.append(f"the byte count ({got}) is not the parsed one: {answer[:200]!r}")
    finally:
        stop_peer(proc)
    on_disk = LineCounter(data / "segments" / "*.ndjson")()
    stored = sum(taken)
    return {"name": proto, "connections": posts, "events": events, "sent": events,
            "on_disk_after_stop": on_disk, "events_per_s": round(stored / secs), "seconds": round(secs, 3),
            "cpu_s_per_M": round(cpu / (stored / 1e6), 2) if stored else None,
            "client_cpu_s_per_M": round(client / (stored / 1e6), 2) if stored else None,
            "faults_per_M": round(faults / (stored / 1e6)) if stored else None,
            "failures": failures[:3], "lost": events - on_disk}


def run_book(posts: int, events: int, workdir: Path) -> dict:
    port = free_port()
    data = workdir / "book-tcp"
    peer = logmesh_peer(logs_cmd(port, free_port(), data, 16 << 20), port, data, name="book-tcp")
    r = measure_peer(peer, posts, events, verify=False)
    return {k: r.get(k) for k in ("name", "connections", "events", "sent", "on_disk_after_stop",
                                  "events_per_s", "seconds", "cpu_s_per_M", "lost")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--posts", type=int, default=4, help="concurrent connections (and TCP ones)")
    ap.add_argument("--body-bytes", type=int, default=8 << 20)
    ap.add_argument("--protocols", default=",".join(PROTOCOLS),
                    help="a comma-separated subset of: " + ",".join(PROTOCOLS) + " (otlp-protobuf-sdk: "
                         "records as the OTel Python SDK sends them, attributes and ids)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="run the HTTP protocols' servers from this checkout (python -m logmesh "
                         "in it) instead of this one; given twice, the rounds alternate the two "
                         "(a before/after pairing); the book TCP path runs from this checkout")
    a = ap.parse_args(argv)
    protocols = a.protocols.split(",")
    evs = frames(a.events, seed=1)
    bodies: dict[str, list[tuple[bytes, int]]] = {}
    for proto in protocols:
        if proto == "book-tcp":
            continue
        build = HTTP[proto][2]
        per = max(1, a.body_bytes // max(1, len(build(evs[:200])) // 200))
        bodies[proto] = [(build(evs[i:i + per]), len(evs[i:i + per])) for i in range(0, a.events, per)]
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ingest_http.") as tmp:
        for r in range(a.repeat):
            for proto in protocols:  # alternating: every protocol once per round
                workdir = Path(tmp) / f"r{r}"
                workdir.mkdir(exist_ok=True)
                codes = a.code or [None]  # the checkouts in turn, each first in every other round
                for code in codes[r % len(codes):] + codes[:r % len(codes)]:
                    name = proto if len(a.code) < 2 else f"{proto}@{code.name}"
                    res = run_book(a.posts, a.events, workdir) if proto == "book-tcp" else \
                        run_http(proto, bodies[proto], a.posts, a.events, workdir / name, code)
                    res["round"], res["name"] = r, name
                    rows.setdefault(name, []).append(res)
                    print(f"round {r} {name:14} {res['events_per_s']:>9,} ev/s  "
                          f"CPU {res['cpu_s_per_M']} s/M  client {res.get('client_cpu_s_per_M', '-')} s/M  "
                          f"faults/M {res.get('faults_per_M', '-')}  on disk {res['on_disk_after_stop']}", flush=True)
                    if proto == "book-tcp":
                        break
    book = statistics.median(x["events_per_s"] for x in rows.get("book-tcp", [])) \
        if rows.get("book-tcp") else None
    print(f"\nmedian of {a.repeat} rounds, {a.events:,} events, {a.posts} connections, bodies of "
          f"~{a.body_bytes >> 20} MB, one worker, --fsync batch:\n")
    print("| protocol | events/s | CPU s per M events | client CPU s/M | page faults per M | x book TCP "
          "| all on disk |")
    print("|---|---:|---:|---:|---:|---:|---|")
    summary = {}
    for proto, rs in rows.items():
        eps = statistics.median(x["events_per_s"] for x in rs)
        cpu = statistics.median(x["cpu_s_per_M"] or 0 for x in rs)
        clients = [x["client_cpu_s_per_M"] for x in rs if x.get("client_cpu_s_per_M") is not None]
        client = f"{statistics.median(clients):.2f}" if clients else "-"  # the book path's: loadgen's
        faults = [x["faults_per_M"] for x in rs if x.get("faults_per_M") is not None]
        fault = f"{statistics.median(faults):,.0f}" if faults else "-"
        ok = all(x["on_disk_after_stop"] == a.events for x in rs)
        summary[proto] = {"events_per_s": eps, "cpu_s_per_M": cpu, "all_on_disk": ok}
        ratio = f"{eps / book:.2f}" if book else "-"
        print(f"| {proto} | {eps:,.0f} | {cpu:.2f} | {client} | {fault} | {ratio} | {'yes' if ok else 'NO'} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"summary": summary, "rounds": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
