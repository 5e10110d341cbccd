#!/usr/bin/env python3
"""Elasticsearch sink throughput: store -> sink -> a fake cluster in its own process.

Writes N events (the shape HTTP ingest stores) into a fresh data directory,
starts tests/logs/sinks/fake_es.py as a separate process (so its work is not
counted), runs the sink in this process until the cursor reaches the last
event, and prints wall time, events/s and this process's CPU per event (the
cost the sink adds to a logs worker while it catches up)::

    .venv/bin/python bench/es_sink.py --events 200000 [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logmesh.logs.sinks.elasticsearch.config import ElasticsearchConfig  # noqa: E402
from logmesh.logs.sinks.elasticsearch.sink import ElasticsearchSink  # noqa: E402
from tests.logs.sinks.helpers import Store, event  # noqa: E402
from tests.logs.sinks.procs import fake_process  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads: the reader thread counts too
    return r.ru_utime + r.ru_stime


async def run(events: int, batch: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="es-sink-bench-"))
    store = Store(tmp / "data")
    for start in range(0, events, 50_000):
        store.write([event(i) for i in range(start, min(events, start + 50_000))])
    fake = fake_process(tmp / "fake.log")
    url = await fake.start()
    try:
        import elasticsearch  # noqa: F401  (a one-time 0.2-0.7 s import, not per event)

        config = ElasticsearchConfig(urls=url, batch_events=batch, poll_interval=0.05)
        sink = ElasticsearchSink(config, tmp / "data", 0, head_seq=lambda: store.last_seq)
        stalls: list[float] = []

        async def probe() -> None:  # how late a 1 ms timer fires: what an ingest request would wait
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                stalls.append(time.perf_counter() - t - 0.001)

        c0, t0 = cpu(), time.perf_counter()
        sink.start()
        prober = asyncio.create_task(probe())
        while sink.state.position.last_seq != store.last_seq:
            await asyncio.sleep(0.01)
        wall, used = time.perf_counter() - t0, cpu() - c0
        prober.cancel()
        await sink.close()
    finally:
        await fake.stop()
    stalls.sort()
    print(f"{events} events, batch {batch}: {wall:.2f}s, {events / wall:,.0f} events/s, "
          f"sink CPU {used / events * 1e6:.1f} us/event ({used / wall * 100:.0f}% of one core), "
          f"event loop stalls p50 {stalls[len(stalls) // 2] * 1e3:.1f} ms, "
          f"p99 {stalls[int(len(stalls) * 0.99)] * 1e3:.1f} ms, max {stalls[-1] * 1e3:.1f} ms")
    return {"events": events, "batch": batch, "seconds": wall, "events_per_s": events / wall,
            "sink_cpu_us_per_event": used / events * 1e6,
            "loop_stall_ms": {"p50": stalls[len(stalls) // 2] * 1e3,
                              "p99": stalls[int(len(stalls) * 0.99)] * 1e3, "max": stalls[-1] * 1e3}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    result = asyncio.run(run(args.events, args.batch))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
