#!/usr/bin/env python3
"""What storing book packets unparsed costs later: compaction and the Elasticsearch encoder.

    .venv/bin/python bench/derive.py [-n 500000] [--json bench/out/derive.json]

The ingest hot path (logs/ingest/book_block.py) stores a book packet's request
text as ``message`` and leaves its fields (method, path, params, key, trace id)
to readers. This measures, in one run and on the same events (the load
generator's request packets), the two readers that turn every stored line into
something else:

* compaction of a segment to Parquet (DuckDB derives the fields in SQL),
* the Elasticsearch sink's per-line encoder (derives them in Python),

once over lines as the book path writes them and once over lines with the
fields already parsed at ingest (``request_event``, the path the book packets
took before). CPU seconds per million events; the ratio is new/old.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import msgspec  # noqa: E402
import orjson  # noqa: E402
from loadgen import _request_frame  # noqa: E402

from logmesh.logs.ingest.book_block import block_head, encode_block  # noqa: E402
from logmesh.logs.ingest.common import Routes, request_event  # noqa: E402
from logmesh.logs.sinks.elasticsearch.encode import encode_line  # noqa: E402
from logmesh.logs.store import layout  # noqa: E402
from logmesh.logs.store.compact import compact_segment, new_connection  # noqa: E402
from logmesh.logs.store.reader import SegmentInfo  # noqa: E402

BLOCK = 300  # events per read, about what a 64 KB read holds
SOURCE = ("127.0.0.1", 41000)


def book_lines(texts: list[str], t0: int) -> bytes:
    """The segment bytes the book-block path writes."""
    out = []
    for i in range(0, len(texts), BLOCK):
        chunk = texts[i:i + BLOCK]
        messages = [orjson.dumps(t) for t in chunk]
        seqs = range((i + 1) << layout.WORKER_BITS, (i + 1 + len(chunk)) << layout.WORKER_BITS,
                     1 << layout.WORKER_BITS)  # counters start at 1, as the writer's do
        out.append(encode_block(messages, seqs, block_head(t0 + i, SOURCE, "goods")))
    return b"".join(out)


def parsed_lines(texts: list[str], t0: int) -> bytes:
    """The same events with their fields parsed at ingest (request_event)."""
    routes = Routes()
    events = []
    for i, t in enumerate(texts):
        ev = request_event(t, ts=t0 + i - i % BLOCK, received_at=t0 + i - i % BLOCK, service="goods",
                           instance=None, event_id=None, source=SOURCE, routes=routes)
        ev.seq = (i + 1) << layout.WORKER_BITS
        events.append(ev)
    return msgspec.json.Encoder().encode_lines(events)


def measure(name: str, data: bytes, n: int, workdir: Path, threads: int) -> dict:
    d = workdir / name
    seg_dir = d / layout.SEGMENTS_DIR
    seg_dir.mkdir(parents=True)
    path = seg_dir / layout.segment_name(0, 0)
    path.write_bytes(data)
    seg = SegmentInfo(path, 0, 0, {"count": n})
    con = new_connection(threads=threads)
    c0, w0 = time.process_time(), time.perf_counter()
    compact_segment(con, seg, d / layout.PARQUET_DIR)
    compact_cpu, compact_wall = time.process_time() - c0, time.perf_counter() - w0
    con.close()
    rows = data.splitlines()
    c0 = time.process_time()
    for line in rows:
        encode_line(line)
    es_cpu = time.process_time() - c0
    return {"lines": name, "events": n, "compact_cpu_s_per_M": round(compact_cpu / n * 1e6, 3),
            "compact_wall_s": round(compact_wall, 3), "compact_events_per_s": round(n / compact_wall),
            "es_encode_us_per_event": round(es_cpu / n * 1e6, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--events", type=int, default=500_000)
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads for compaction")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    a = ap.parse_args(argv)
    rng = random.Random(12)
    texts = [_request_frame(rng, i) for i in range(a.events)]
    t0 = 1_795_539_600_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="logmesh-derive-") as tmp:
        for name, make in (("book block (fields derived on read)", book_lines),
                           ("parsed at ingest", parsed_lines)):
            rows.append(measure(name.split(" (")[0].replace(" ", "-"), make(texts, t0), a.events,
                                Path(tmp), a.threads))
            rows[-1]["lines"] = name
    new, old = rows
    ratio = {k: round(new[k] / old[k], 2) for k in ("compact_cpu_s_per_M", "es_encode_us_per_event")}
    print("| stored lines | compaction CPU s/M | compaction events/s | ES encode µs/event |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['lines']} | {r['compact_cpu_s_per_M']} | {r['compact_events_per_s']:,} "
              f"| {r['es_encode_us_per_event']} |")
    print(f"| ratio (book block / parsed) | {ratio['compact_cpu_s_per_M']}x | | "
          f"{ratio['es_encode_us_per_event']}x |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"events": a.events, "rows": rows, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
