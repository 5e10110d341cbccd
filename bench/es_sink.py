#!/usr/bin/env python3
"""Elasticsearch sink throughput: store -> sink -> a fake cluster in its own process.

One run writes N events (the shape HTTP ingest stores, or ``--shape book``:
book packets stored unparsed, whose request fields the sink derives) into a
fresh data directory, starts tests/logs/sinks/fake_es.py as a separate
process (so its work is not counted), runs the sink in this process until the
cursor reaches the last event, and prints wall time, events/s, this process's
CPU per event (the cost the sink adds to a logs worker while it catches up),
the fake's CPU per event, and how late a 1 ms timer fires meanwhile::

    .venv/bin/python bench/es_sink.py --events 200000 [--batch 1000] [--shape book]

``--baseline REF --rounds 3`` runs this tree's sink and REF's (exported with
``git archive``, its own bench script, fake and sink) in alternating rounds,
each in a fresh process, and prints the medians and their ratios: the machine
may be shared, so only figures from the same run are compared.

``--encode PASSES`` times encode_block alone, in a fresh process, over HTTP-shaped
events, book packets and syslog lines (as stored now, and with the four facility/severity
labels as stored before 17d4f60): the least of PASSES, per event; with ``--baseline REF``
paired against REF's encode.py in alternating rounds.

``--exactly-once N`` is the fault run: N events (1 in 1000 refused by the
mapping), a fake that answers 429 and 503, drops connections before and
after storing, and rejects items with 429, and the sink in a child process
killed with SIGKILL every 0.3-1.5 s and started again until it finishes.
Then every good event must be in the fake exactly once and every refused one
in the dead-letter file exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logmesh.logs.event import derive_syslog_labels  # noqa: E402
from logmesh.logs.sinks.cursor import deadletter_path  # noqa: E402
from logmesh.logs.sinks.elasticsearch.config import DEFAULT_BATCH_EVENTS, ElasticsearchConfig  # noqa: E402
from logmesh.logs.sinks.elasticsearch.sink import ElasticsearchSink  # noqa: E402
from logmesh.logs.store import layout  # noqa: E402
from logmesh.metrics import value  # noqa: E402
from tests.logs.sinks.helpers import Store, event, poison  # noqa: E402
from tests.logs.sinks.procs import fake_process  # noqa: E402

BASELINE = "5287388"  # main before issue 21: the bulk helper, one bulk at a time, no gzip
# 9fe924b: main before the loop-stall work (encoding and gzip in threads, answers as dicts)
FAULTS = {"request_503": 0.02, "request_429": 0.02, "drop_before": 0.02, "drop_after": 0.03,
          "item_429": 0.01}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads: the reader and gzip threads count too
    return r.ru_utime + r.ru_stime


def proc_cpu(pid: int) -> float:
    """CPU seconds of another process (the fake), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def book_event(i: int) -> dict:
    """A book packet as ingest/book_block.py stores it: the request only as ``message`` text."""
    packet = {"uri": f"/goods/{i % 50}", "method": "GET", "key": f"k{i % 7}",
              "params": {"id": i, f"key{i % 997}": "v"}}
    now = 1_760_000_000_000 + i
    return {"@timestamp": now, "received_at": now, "source.address": "127.0.0.1", "source.port": 40000,
            "log.level": "info", "service.name": ("goods", "members", "purchases")[i % 3],
            "message": json.dumps(packet, separators=(",", ":"))}


SYSLOG_LINES = (b"<%d>1 2026-11-25T17:00:%02d.000Z web-%d goods %d - [o@1 id=\"%d\"] an error %d",
                b"<%d>1 2026-11-25T17:00:%02d.000Z web-%d goods - ID%d - all well %d %d",
                b"<%d>Nov 25 17:00:%02d web-%d su[%d]: auth failed %d %d")


def syslog_events(events: int) -> list[dict]:
    """Syslog lines as ingest/syslog.py stores them: the priority alone in labels."""
    import msgspec

    from logmesh.logs.ingest.syslog import SyslogDecoder
    decoder = SyslogDecoder()
    return [msgspec.to_builtins(decoder.event(SYSLOG_LINES[i % 3] % (i % 192, i % 60, i % 9, i, i, i),
                                              1_760_000_000_000 + i, ("10.0.0.1", 514)))
            for i in range(events)]


# in a fresh process in the tree under test (cwd and PYTHONPATH): the least of N passes of
# encode_block over each file's stored lines, 64 kB at a time as encode_stepwise takes them
ENCODE_CHILD = """
import json, sys, time
from logmesh.logs.sinks.elasticsearch.encode import STEP_BYTES, encode_block
out = {}
for name in sys.argv[2:]:
    data = open(name, "rb").read()
    cuts, at = [], 0
    while at < len(data):
        cut = data.find(b"\\n", at + STEP_BYTES) + 1 or len(data)
        cuts.append(data[at:cut])
        at = cut
    n = data.count(b"\\n")
    best = float("inf")
    for _ in range(int(sys.argv[1])):
        t = time.process_time()
        for piece in cuts:
            encode_block(piece)
        best = min(best, time.process_time() - t)
    out[name] = best / n * 1e6
print(json.dumps(out))
"""


def encode_compare(ref: str | None, rounds: int, events: int, passes: int) -> dict:
    """Encode CPU per event (in process, least of ``passes``) of http, book and syslog lines
    (new-style, and stored with the four labels as before 17d4f60; and one in two a book packet,
    as a worker taking both stores them), this tree against ``ref``'s,
    alternating by round."""
    with tempfile.TemporaryDirectory(prefix="es-sink-encode-") as tmp_name:
        tmp = Path(tmp_name)
        syslog = syslog_events(events)
        old_syslog = [{**e, "labels": derive_syslog_labels(e["labels"])} for e in syslog]
        files = {}
        for shape, evs in (("http", [event(i) for i in range(events)]),
                           ("book", [book_event(i) for i in range(events)]),
                           ("syslog", syslog), ("syslog_stored_labels", old_syslog),
                           ("book_syslog", [book_event(i) if i % 2 else e for i, e in enumerate(syslog)])):
            store = Store(tmp / shape)
            store.write(evs)
            files[shape] = str(next((tmp / shape / layout.SEGMENTS_DIR).glob("*.ndjson")))
        trees = [("new", ROOT)]
        if ref:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True)
            if archive.returncode != 0:
                raise SystemExit(f"--baseline {ref}: not in this clone ({archive.stderr.decode().strip()})")
            (tmp / "old").mkdir()
            subprocess.run(["tar", "-x", "-C", str(tmp / "old")], input=archive.stdout, check=True)
            trees.append(("old", tmp / "old"))
        runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
        for r in range(rounds):
            for name, tree in (trees if r % 2 == 0 else trees[::-1]):
                got = subprocess.run([sys.executable, "-c", ENCODE_CHILD, str(passes), *files.values()],
                                     cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
                                     capture_output=True, text=True)
                by_file = json.loads(got.stdout)
                runs[name].append({shape: by_file[f] for shape, f in files.items()})
                print(f"round {r + 1}, {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[name][-1].items())
                      + " us/event", flush=True)
    result = {name: {shape: statistics.median(x[shape] for x in rs) for shape in files}
              for name, rs in runs.items()}
    print(f"medians of {rounds} rounds, {events} events a shape, least of {passes} passes, us/event:")
    for name, m in result.items():
        print(f"  {name:4} " + ", ".join(f"{k} {v:.2f}" for k, v in m.items())
              + f"; syslog/book {m['syslog'] / m['book']:.2f}x")
    return result


def write_store(data_dir: Path, events: int, shape: str, poison_every: int = 0) -> Store:
    store = Store(data_dir)
    make = book_event if shape == "book" else event
    for start in range(0, events, 50_000):
        store.write([poison(i) if poison_every and i % poison_every == 5 else make(i)
                     for i in range(start, min(events, start + 50_000))])
    return store


class FullCollections:
    """The oldest generation's collections while the sink runs: how many, and their pauses."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.by_generation = [0, 0, 0]
        self._t = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        self.by_generation[info["generation"]] += phase == "start"
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._t) * 1e3)

    def summary(self) -> dict:
        return {"count": len(self.pauses), "total_ms": sum(self.pauses), "max_ms": max(self.pauses, default=0.0),
                "by_generation": self.by_generation}


async def run(events: int, batch: int, shape: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="es-sink-bench-") as tmp:
        return await _run(Path(tmp), events, batch, shape)


async def _run(tmp: Path, events: int, batch: int, shape: str) -> dict:
    store = write_store(tmp / "data", events, shape)
    fake = fake_process(tmp / "fake.log")
    url = await fake.start()
    full = FullCollections()
    try:
        import elasticsearch  # noqa: F401  (a one-time 0.2-0.7 s import, not per event)

        config = ElasticsearchConfig(urls=url, batch_events=batch, poll_interval=0.05)
        sink = ElasticsearchSink(config, tmp / "data", 0, head_seq=lambda: store.last_seq)
        stalls: list[float] = []
        gc.callbacks.append(full)

        async def probe() -> None:  # how late a 1 ms timer fires: what an ingest request would wait
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                stalls.append(time.perf_counter() - t - 0.001)

        assert fake.proc is not None
        c0, f0, t0 = cpu(), proc_cpu(fake.proc.pid), time.perf_counter()
        sink.start()
        prober = asyncio.create_task(probe())
        while sink.state.position.last_seq != store.last_seq:
            await asyncio.sleep(0.01)
        wall, used, fake_used = time.perf_counter() - t0, cpu() - c0, proc_cpu(fake.proc.pid) - f0
        prober.cancel()
        await sink.close()
    finally:
        if full in gc.callbacks:
            gc.callbacks.remove(full)
        await fake.stop()
    stalls.sort()
    p = {"p50": stalls[len(stalls) // 2] * 1e3, "p99": stalls[int(len(stalls) * 0.99)] * 1e3,
         "max": stalls[-1] * 1e3}
    print(f"{events} events ({shape}), batch {batch}: {wall:.2f}s, {events / wall:,.0f} events/s, "
          f"sink CPU {used / events * 1e6:.1f} us/event ({used / wall * 100:.0f}% of one core), "
          f"fake CPU {fake_used / events * 1e6:.1f} us/event, event loop stalls p50 {p['p50']:.1f} ms, "
          f"p99 {p['p99']:.1f} ms, max {p['max']:.1f} ms; full collections {len(full.pauses)} "
          f"({sum(full.pauses):.0f} ms, max {max(full.pauses, default=0):.0f} ms; by generation "
          f"{full.by_generation})", flush=True)
    return {"events": events, "batch": batch, "shape": shape, "seconds": wall,
            "events_per_s": events / wall, "sink_cpu_us_per_event": used / events * 1e6,
            "fake_cpu_us_per_event": fake_used / events * 1e6, "loop_stall_ms": p,
            "full_collections": full.summary()}


# -- paired rounds against another commit --------------------------------------------------

def one_round(tree: Path, events: int, batch: int, shape: str | None) -> dict:
    """One run in a fresh process, with ``tree``'s bench script, sink and fake."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, "bench/es_sink.py", "--events", str(events), "--batch", str(batch),
                "--json", out.name] + (["--shape", shape] if shape else [])
        subprocess.run(argv, cwd=tree, check=True, env={**os.environ, "PYTHONPATH": str(tree)})
        return json.loads(Path(out.name).read_text())


def compare(ref: str, rounds: int, events: int, batch: int, base_batch: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="es-sink-baseline-") as tree:
        return _compare(Path(tree), ref, rounds, events, batch, base_batch)


def _compare(old_tree: Path, ref: str, rounds: int, events: int, batch: int, base_batch: int) -> dict:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True)
    if archive.returncode != 0:  # a shallow clone, or no git: say so, do not fake a comparison
        raise SystemExit(f"--baseline {ref}: not in this clone ({archive.stderr.decode().strip()}); "
                         "fetch the history or run without --baseline")
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
    runs: dict[str, list[dict]] = {"new": [], "old": [], "new_book": []}
    order = [("new", ROOT, batch, "http"), ("old", old_tree, base_batch, None),
             ("new_book", ROOT, batch, "book")]
    if "--shape" in (old_tree / "bench" / "es_sink.py").read_text():  # the baseline has book packets
        runs["old_book"] = []
        order.append(("old_book", old_tree, base_batch, "book"))
    for r in range(rounds):  # alternating, so a busy minute on a shared machine hits both
        for name, tree, b, shape in (order if r % 2 == 0 else order[::-1]):
            print(f"round {r + 1}, {name} ({ref if name.startswith('old') else 'this tree'}): ", end="",
                  flush=True)
            runs[name].append(one_round(tree, events, b, shape))

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] if key != "p99" else x["loop_stall_ms"]["p99"] for x in runs[name])

    summary = {name: {k: med(name, k) for k in ("events_per_s", "sink_cpu_us_per_event", "p99")}
               for name in runs}
    for name in runs:
        summary[name]["fake_cpu_us_per_event"] = statistics.median(
            x.get("fake_cpu_us_per_event", float("nan")) for x in runs[name])
    print(f"\nmedians of {rounds} rounds, {events} events each (old: {ref}, batch {base_batch}; "
          f"new: batch {batch}):")
    print(f"{'':28}{'events/s':>10}  {'sink us/event':>13}  {'fake us/event':>13}  {'loop p99 ms':>11}")
    for name, label in (("old", f"old ({ref}, http events)"), ("new", "new (http events)"),
                        ("old_book", f"old ({ref}, book packets)"), ("new_book", "new (book packets)")):
        if name not in summary:
            continue
        s = summary[name]
        print(f"{label:28}{s['events_per_s']:>10,.0f}  {s['sink_cpu_us_per_event']:>13.1f}  "
              f"{s['fake_cpu_us_per_event']:>13.1f}  {s['p99']:>11.1f}")
    print(f"new/old: {summary['new']['events_per_s'] / summary['old']['events_per_s']:.1f}x events/s, "
          f"{summary['old']['sink_cpu_us_per_event'] / summary['new']['sink_cpu_us_per_event']:.1f}x "
          "less sink CPU per event")
    if "old_book" in summary:
        o, n = summary["old_book"], summary["new_book"]
        print(f"book packets new/old: {n['events_per_s'] / o['events_per_s']:.2f}x events/s, loop p99 "
              f"{o['p99']:.1f} -> {n['p99']:.1f} ms")
    return {"rounds": rounds, "baseline": ref, "summary": summary, "runs": runs}


# -- a logs server's full collections, with and without gc.freeze() --------------------------

async def server_run(events: int, freeze: bool) -> dict:
    """A logs server in this process (book TCP ingest, the sink into the fake) while the
    loadgen sends ``events`` book packets over 4 connections: its full collections, their
    pauses and the 1 ms timer, until the sink has sent them all."""
    from logmesh.logs.server import LogsConfig, LogsServer, freeze_startup_heap

    with tempfile.TemporaryDirectory(prefix="es-sink-server-") as tmp:
        fake = fake_process(Path(tmp) / "fake.log")
        url = await fake.start()
        full = FullCollections()
        server = LogsServer(LogsConfig(host="127.0.0.1", port=0, http_port=0, data_dir=Path(tmp) / "data",
                                       distributor=None, extra={"sinks": {"elasticsearch": ElasticsearchConfig(
                                           urls=url, poll_interval=0.05)}}))
        await server.start()
        try:
            if freeze:  # what LogsServer.serve_forever does once the server has started
                freeze_startup_heap()
            stalls: list[float] = []

            async def probe() -> None:
                while True:
                    t = time.perf_counter()
                    await asyncio.sleep(0.001)
                    stalls.append(time.perf_counter() - t - 0.001)

            gc.callbacks.append(full)
            prober = asyncio.create_task(probe())
            t0, c0 = time.perf_counter(), cpu()
            load = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "bench" / "loadgen.py"), "--port", str(server.config.port),
                "-c", "4", "-n", str(events), stdout=subprocess.DEVNULL, cwd=ROOT)
            await load.wait()
            sink = server.sinks[0]
            while value(sink.sent) < events:
                await asyncio.sleep(0.02)
            wall, used = time.perf_counter() - t0, cpu() - c0
            prober.cancel()
        finally:
            if full in gc.callbacks:
                gc.callbacks.remove(full)
            try:
                await server.stop()
            except Exception as exc:  # noqa: BLE001  (the figures are taken; say it, go on)
                print(f"server.stop() failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            await fake.stop()
    stalls.sort()
    p99 = stalls[int(len(stalls) * 0.99)] * 1e3
    print(f"server, {events} book packets in and out{' after gc.freeze()' if freeze else ''}: "
          f"{wall:.2f}s, CPU {used / events * 1e6:.1f} us/event, full collections {len(full.pauses)} "
          f"({sum(full.pauses):.0f} ms, max {max(full.pauses, default=0):.0f} ms), by generation "
          f"{full.by_generation}, loop p99 {p99:.1f} ms, tracked objects {len(gc.get_objects())}, "
          f"frozen {gc.get_freeze_count()}", flush=True)
    return {"events": events, "gc_freeze": freeze, "seconds": wall, "cpu_us_per_event": used / events * 1e6,
            "full_collections": full.summary(), "loop_p99_ms": p99}


def server_compare(events: int, rounds: int) -> dict:
    """Fresh processes, with and without gc.freeze() in turn; the medians."""
    runs: dict[str, list[dict]] = {"plain": [], "frozen": []}
    for r in range(rounds):
        for name in (("plain", "frozen") if r % 2 == 0 else ("frozen", "plain")):
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                subprocess.run([sys.executable, "bench/es_sink.py", "--server", str(events), "--once",
                                "--json", out.name]
                               + (["--gc-freeze"] if name == "frozen" else []), cwd=ROOT, check=True)
                runs[name].append(json.loads(Path(out.name).read_text()))
    summary = {name: {"full_collections": statistics.median(x["full_collections"]["count"] for x in xs),
                      "full_ms": statistics.median(x["full_collections"]["total_ms"] for x in xs),
                      "full_max_ms": statistics.median(x["full_collections"]["max_ms"] for x in xs),
                      "loop_p99_ms": statistics.median(x["loop_p99_ms"] for x in xs),
                      "cpu_us_per_event": statistics.median(x["cpu_us_per_event"] for x in xs)}
               for name, xs in runs.items()}
    print(f"\nmedians of {rounds} rounds, {events} book packets each: {json.dumps(summary)}")
    return {"rounds": rounds, "summary": summary, "runs": runs}


# -- exactly once, with faults and kill -9 -------------------------------------------------

async def child(data_dir: Path, url: str, batch: int, last_seq: int) -> None:
    """The sink alone, as a logs worker runs it, until everything is sent (or SIGKILL)."""
    logging.getLogger("logmesh").setLevel(logging.ERROR)  # its retry warnings: expected here
    config = ElasticsearchConfig(urls=url, batch_events=batch, poll_interval=0.05,
                                 retry_initial=0.01, retry_max=0.2)
    sink = ElasticsearchSink(config, data_dir, 0, head_seq=lambda: last_seq)
    sink.start()
    while sink.state.position.last_seq != last_seq:
        await asyncio.sleep(0.02)
    await sink.close()


async def exactly_once(events: int, batch: int, kills: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="es-sink-once-") as tmp:
        return await _exactly_once(Path(tmp), events, batch, kills)


async def _exactly_once(tmp: Path, events: int, batch: int, kills: int) -> dict:
    import aiohttp

    data = tmp / "data"
    t0 = time.perf_counter()
    store = write_store(data, events, "http", poison_every=1000)
    seqs = [layout.make_seq(c, 0) for c in range(1, store.counter)]
    bad = {seqs[i] for i in range(events) if i % 1000 == 5}
    good_sum = sum(seqs) - sum(bad)
    print(f"wrote {events} events in {time.perf_counter() - t0:.1f}s; {len(bad)} will be refused",
          flush=True)
    fake = fake_process(tmp / "fake.log", faults=FAULTS)
    url = await fake.start()
    rnd = random.Random(21)
    killed = 0
    t0 = time.perf_counter()
    try:
        while True:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__)), "--child", str(data), url, str(batch),
                str(store.last_seq), cwd=ROOT)
            try:
                await asyncio.wait_for(proc.wait(), rnd.uniform(0.3, 1.5) if killed < kills else 600)
            except TimeoutError:
                proc.kill()  # SIGKILL, mid-bulk or wherever it is
                await proc.wait()
                killed += 1
                continue
            if proc.returncode != 0:
                raise SystemExit(f"the sink process failed ({proc.returncode})")
            break
        took = time.perf_counter() - t0
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/_fake/stats") as resp:
                stats = await resp.json()
    finally:
        await fake.stop()
    dead_path = deadletter_path(data, "elasticsearch-w00")
    dead = [json.loads(line)["event"]["seq"] for line in dead_path.read_bytes().splitlines()]
    ok = (stats["docs"] == events - len(bad) and stats["id_sum"] == good_sum
          and stats["created_max"] == 1 and stats["index_ops"] == 0
          and sorted(dead) == sorted(bad))
    print(f"{events} events through {killed} kill -9 of the sink and faults {FAULTS}: {took:.1f}s; "
          f"in the fake {stats['docs']} (expected {events - len(bad)}), each created at most "
          f"{stats['created_max']} time(s), {stats['conflicts']} resends answered 409, "
          f"{stats['bulks']} bulks; dead letters {len(dead)} (expected {len(bad)}, "
          f"{len(set(dead))} distinct): {'EXACTLY ONCE' if ok else 'FAILED'}", flush=True)
    if not ok:
        raise SystemExit(1)
    return {"events": events, "kills": killed, "seconds": took, "faults": FAULTS, **stats,
            "deadlettered": len(dead), "exactly_once": ok}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        data, url, batch, last = sys.argv[2:6]
        asyncio.run(child(Path(data), url, int(batch), int(last)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH_EVENTS)
    ap.add_argument("--shape", choices=("http", "book"), default="http")
    ap.add_argument("--baseline", default=None, help=f"compare with this commit (e.g. {BASELINE})")
    ap.add_argument("--baseline-batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--exactly-once", type=int, default=0, metavar="N",
                    help="the fault run with kill -9 over N events instead")
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--server", type=int, default=0, metavar="N",
                    help="a logs server with the sink, N book packets in: its full collections")
    ap.add_argument("--once", action="store_true", help="with --server: one run, not the paired rounds")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="with --server: gc.freeze() once the server has started, as `logmesh logs` does")
    ap.add_argument("--encode", type=int, default=0, metavar="PASSES",
                    help="encode CPU per event only (http, book, syslog lines; with --baseline: paired)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    if args.encode:
        result = encode_compare(args.baseline, args.rounds, args.events, args.encode)
    elif args.server and args.once:
        result = asyncio.run(server_run(args.server, args.gc_freeze))
    elif args.server:
        result = server_compare(args.server, args.rounds)
    elif args.exactly_once:
        result = asyncio.run(exactly_once(args.exactly_once, args.batch, args.kills))
    elif args.baseline:
        result = compare(args.baseline, args.rounds, args.events, args.batch, args.baseline_batch)
    else:
        result = asyncio.run(run(args.events, args.batch, args.shape))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
