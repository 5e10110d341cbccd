#!/usr/bin/env python3
"""The logs service's CPU per event of a mesh's acked batches, in one process, paired across checkouts.

    .venv/bin/python bench/acked_batch.py [--batches 300] [--rounds 5] [--code <before> --code <after>]

bench/mesh.py's logs figure (~17-23 µs per request) holds the sockets, the group commit, the
store's flusher and the machine's noise; this runs only what an acked batch costs ingest in
Python: ``LogIngestProtocol.data_received`` on its frame (the decode, the lines, the ledger's
dedup by event.id, the lines' encode as the store's writer makes it; the first figure,
"_batch") and the health monitor's ``GatewayCounts.add`` (the store's
observer), on batches shaped as the mesh ships them: the gateway's access logs (rows, or text
and the gateway's ECS fields in a checkout before rows) and goods' request packets, 175 events a batch. Each round runs
every checkout once, in turn, in a fresh process (``python`` in that checkout, so its
``logmesh`` is imported); the figure is the best of three passes in a round, the report the
median of the rounds.

``--monitor`` measures the health monitor's question to the gateway counts every 5 s
(``GatewayCounts.by_address``: requests, timeouts and the exact median per address and route)
over a minute of access logs at ``--rate`` a second, durations spread as POSTs' (log-normal
around 10 ms, to the µs) or GETs' (0.3-2 ms): it runs in the logs service's event loop.

``--whole`` measures instead what a pair of batches (gateway, goods) costs from the frame's bytes
to its ack: ``data_received`` (framing, the decode, the lines), the store's writer and
flusher (its I/O thread included: ``process_time`` counts every thread) and the ack, acks
awaited per pair as the shippers wait, with ``--fsync off`` and ``batch``; ``--events`` per
batch (the mesh's ~60-175) separates the cost per batch from the cost per event.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

EVENTS = r"""
def events(service, first, K, ts):  # K events of a batch as the mesh ships them
    try:  # a checkout whose gateway ships its access log as a row (logmesh/access_log.py)
        from logmesh import access_log
    except ImportError:
        access_log = None
    evs = []
    for i in range(K):
        if service == "gateway":  # mesh/gateway.py's access log
            us = 300 + (i % 50) * 27
            row = ["GET", "/goods", 200, f"{i:032x}", "info", us, 0, "goods", "127.0.0.1:9010"]
            if access_log is not None:
                evs.append([first + i, ts + i, row])
                continue
            evs.append([first + i, ts + i, f"GET /goods 200 {us / 1000!r}ms",
                        {"http.request.method": "GET", "url.path": "/goods",
                         "http.response.status_code": 200, "trace.id": f"{i:032x}",
                         "log.level": "info", "event.duration_ms": us / 1000, "errorcode": 0,
                         "upstream": "goods", "upstream.address": "127.0.0.1:9010"}])
        else:  # a service's request packet
            evs.append([first + i, ts + i, '{"uri":"/goods","method":"GET","key":%d,'
                        '"params":{},"trace.id":"%032x"}' % (i, i)])
    return evs
"""

CHILD = EVENTS + r"""
import asyncio, json, sys, time
import msgspec
from logmesh.protocol import encode
from logmesh.logs.gateway_counts import GatewayCounts
from logmesh.logs.ingest.context import IngestContext
from logmesh.logs.ingest.tcp import LogIngestProtocol

K, N = 175, int(sys.argv[1])
ts = int(time.time() * 1000)
encode_lines = msgspec.json.Encoder().encode_lines

def frame(service, first):
    return encode({"uri": "/logs", "method": "POST", "key": first, "ack": True,
                   "params": {"service": service, "instance": service + "-1",
                              "events": events(service, first, K, ts)}})

class Writer:  # the store's appends without its disk: encoded as the store's writer does, dropped
    failure = None
    on_flush: list = []
    on_handover: list = []  # IngestContext resumes paused connections from it
    appended_seq = -1  # the acks are answered at once
    buffered_bytes = 0

    def __init__(self, counts):
        self.counts, self.counted = counts, 0.0

    def append_events(self, events):  # the store's observer (the gateway counts), then the encode
        t0 = time.process_time()
        self.counts.add(events)
        self.counted += time.process_time() - t0
        encode_lines(events)
        return -1

class Transport(asyncio.Transport):  # takes the acks
    def write(self, data):
        pass
    def is_closing(self):
        return False
    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 5000) if name == "peername" else default
    def get_write_buffer_size(self):
        return 0

async def main():
    best = None
    for _ in range(3):
        frames = [(frame("gateway", 1 + j * K), frame("goods", 1 + j * K)) for j in range(N)]
        writer = Writer(GatewayCounts(60_000, 3_600_000))
        ctx = IngestContext(writer)
        protos = []
        for _ in range(2):
            proto = LogIngestProtocol(ctx)
            proto.connection_made(Transport())
            protos.append(proto)
        spent = 0.0
        for pair in frames:
            t0 = time.process_time()
            for proto, data in zip(protos, pair):
                proto.data_received(data)
            spent += time.process_time() - t0
            await asyncio.sleep(0)  # the acks
        assert ctx.ledger.instances["gateway-1"].watermark == N * K
        took = [spent - writer.counted, writer.counted]
        if best is None or sum(took) < sum(best):
            best = took
    print(json.dumps({"batch": best[0], "counts": best[1], "events": 2 * N * K}))

asyncio.run(main())
"""


WHOLE = EVENTS + r"""
import asyncio, json, sys, tempfile, time
from logmesh.protocol import encode
from logmesh.logs.ingest.context import IngestContext
from logmesh.logs.ingest.tcp import LogIngestProtocol
from logmesh.logs.store.segment import SegmentWriter

N, K = int(sys.argv[1]), int(sys.argv[2])
ts = int(time.time() * 1000)

def frame(service, first, key):
    return encode({"uri": "/logs", "method": "POST", "key": key, "ack": True,
                   "params": {"service": service, "instance": service + "-1",
                              "node": ["127.0.0.1", 9000], "heartbeat": 5,
                              "events": events(service, first, K, ts)}})

class Transport(asyncio.Transport):  # takes the acks
    def __init__(self):
        super().__init__()
        self.waiter = None
    def write(self, data):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)
    def is_closing(self):
        return False
    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 5000) if name == "peername" else default
    def close(self):
        pass
    def get_write_buffer_size(self):  # the connection guard's sweep asks every second
        return 0

async def measure(fsync):
    writer = SegmentWriter(tempfile.mkdtemp(), fsync=fsync)
    writer.start()
    ctx = IngestContext(writer)
    loop = asyncio.get_running_loop()
    conns = []
    for service in ("gateway", "goods"):
        proto, t = LogIngestProtocol(ctx), Transport()
        proto.connection_made(t)
        conns.append((proto, t, [frame(service, 1 + j * K, j) for j in range(N)]))
    c0 = time.process_time()
    for j in range(N):
        for proto, t, frames in conns:
            t.waiter = loop.create_future()
            proto.data_received(frames[j])
        for proto, t, _ in conns:
            assert b'"errorcode":0' in await t.waiter
    spent = time.process_time() - c0
    await writer.close()
    return spent

print(json.dumps({f: asyncio.run(measure(f)) for f in ("off", "batch")}))
"""


MONITOR = r"""
import json, random, sys, time
from logmesh.logs.event import Event
from logmesh.logs.gateway_counts import GatewayCounts

rate, shape = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
now = int(time.time() * 1000)
events = [Event(timestamp=now - 60_000 + s * 1000 + i * 1000 // rate, service_name="gateway",
                method="POST", path="/goods", status=200,
                labels={"upstream.address": "127.0.0.1:9010", "event.duration_ms":
                        round(rng.lognormvariate(2.3, 0.8), 3) if shape == "post"
                        else round(rng.uniform(0.3, 2.0), 3)})
          for s in range(60) for i in range(rate)]
counts = GatewayCounts(60_000, 3_600_000)
for k in range(0, len(events), 1000):
    counts.add(events[k:k + 1000])
best = None
for _ in range(5):
    t0 = time.process_time()
    counts.by_address(now)
    spent = time.process_time() - t0
    best = spent if best is None else min(best, spent)
print(json.dumps({"by_address": best}))
"""


def monitor(codes: list[Path], rounds: int, rate: int) -> dict:
    """``--monitor``: ms of CPU per by_address over a minute at ``rate``, per duration shape."""
    def measure(code: Path) -> dict:
        r = {}
        for shape in ("post", "get"):
            out = subprocess.run([sys.executable, "-c", MONITOR, str(rate), shape], cwd=code,
                                 capture_output=True, text=True, check=True).stdout
            r[shape] = 1e3 * json.loads(out)["by_address"]
        return r

    per = alternate(codes, rounds, measure, lambda r: (
        f"by_address over a minute of {rate:,} access logs a second: POST-like durations "
        f"{r['post']:.1f} ms, GET-like {r['get']:.1f} ms"))
    print_medians(per, "ms per by_address", {"post": "POST-like", "get": "GET-like"}, 1)
    return {str(c): rs for c, rs in per.items()}


def alternate(codes: list[Path], rounds: int, measure: Callable[[Path], dict],
              line: Callable[[dict], str]) -> dict[Path, list[dict]]:
    """``measure`` each checkout once a round, the order reversed every other round."""
    per: dict[Path, list[dict]] = {c: [] for c in codes}
    for rnd in range(rounds):
        for code in codes if rnd % 2 == 0 else list(reversed(codes)):
            r = measure(code)
            per[code].append(r)
            print(f"round {rnd} {code}: {line(r)}", flush=True)
    print()
    return per


def print_medians(per: dict[Path, list[dict]], what: str, fields: dict[str, str], digits: int) -> None:
    for code, rs in per.items():
        print(f"{code}: median {what}: " + ", ".join(
            f"{label} {statistics.median(r[key] for r in rs):.{digits}f}" for key, label in fields.items()))


def run(code: Path, batches: int, events: int | None = None) -> dict:
    argv = [CHILD, str(batches)] if events is None else [WHOLE, str(batches), str(events)]
    out = subprocess.run([sys.executable, "-c", *argv], cwd=code,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def whole(codes: list[Path], rounds: int, batches: int, events: int) -> dict:
    """``--whole``: µs per request (a pair of events) from the frame to its ack, per fsync mode."""
    per = alternate(
        codes, rounds,
        lambda code: {f: 1e6 * v / (batches * events) for f, v in run(code, batches, events).items()},
        lambda r: (f"µs per request, frame to ack, {events} events a batch: fsync off "
                   f"{r['off']:.2f}, batch {r['batch']:.2f}"))
    print_medians(per, "µs per request", {"off": "fsync off", "batch": "batch"}, 2)
    return {str(c): rs for c, rs in per.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=300, help="pairs of batches (gateway, goods) a pass")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="a checkout to measure (repeat; default: this one)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--whole", action="store_true",
                    help="from the frame's bytes to its ack, through the store (see above)")
    ap.add_argument("--events", type=int, default=175, help="events a batch, with --whole")
    ap.add_argument("--monitor", action="store_true",
                    help="the health monitor's by_address over a minute of access logs (see above)")
    ap.add_argument("--rate", type=int, default=5000, help="access logs a second, with --monitor")
    args = ap.parse_args(argv)
    codes = args.code or [Path(__file__).resolve().parent.parent]
    if args.monitor:
        result = monitor(codes, args.rounds, args.rate)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        return 0
    if args.whole:
        result = whole(codes, args.rounds, args.batches, args.events)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        return 0
    per: dict[Path, list[dict]] = {c: [] for c in codes}
    for rnd in range(args.rounds):
        for code in codes if rnd % 2 == 0 else list(reversed(codes)):
            r = run(code, args.batches)
            per[code].append(r)
            print(f"round {rnd} {code}: {1e6 * r['batch'] / r['events']:.2f} µs/event in _batch, "
                  f"{1e6 * r['counts'] / r['events']:.2f} in the gateway counts", flush=True)
    print()
    for code, rs in per.items():
        b = statistics.median(1e6 * r["batch"] / r["events"] for r in rs)
        c = statistics.median(1e6 * r["counts"] / r["events"] for r in rs)
        t = statistics.median(2e6 * (r["batch"] + r["counts"]) / r["events"] for r in rs)
        print(f"{code}: median µs per event: _batch {b:.2f}, gateway counts {c:.2f}; "
              f"per request (2 events) {t:.2f}")
    if len(codes) == 2:
        ratios = [(b["batch"] + b["counts"]) / (a["batch"] + a["counts"])
                  for a, b in zip(per[codes[0]], per[codes[1]], strict=True)]
        print(f"second / first per round: {', '.join(f'{x:.2f}' for x in ratios)}")
    if args.json:
        args.json.write_text(json.dumps({str(c): rs for c, rs in per.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
