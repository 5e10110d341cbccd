#!/usr/bin/env python3
"""The socket ingest path counted in instructions a line (callgrind), which the load does not move.

    .venv/bin/python bench/ingest_count.py [--paths book,syslog,jsonl,es-bulk,es-bulk-ids] [-c 16]
        [--events 20000,60000] [--code TREE ...]

One ``logmesh logs`` worker (``--standalone --no-supervise --fsync batch``, one segment) run
under ``valgrind --tool=callgrind --separate-threads=yes``, fed by bench/loadgen.py (not under
valgrind, unpaced) over ``-c`` connections: book packets on the book port, RFC 5424 lines on the
syslog port, or the book's packets as JSON lines on the JSON-lines port; or Elasticsearch
bulk bodies (bench/ingest_http.py's, without and with ``_id``, ``--body-bytes`` each) posted
one at a time to /_bulk on the HTTP port, each answer checked. The server is
stopped (SIGTERM) once every event is stored, and callgrind's counts are read per thread:
the event loop's (the main thread: reads, the turn budget, decoding, appending) and all.
Each tree runs at two lengths, and the difference over the difference in events is the
count a line, without start-up and stop. Under callgrind the server is ~50x slower than its
senders, so every connection has a full read waiting each turn: the regime of a saturated
worker (bench/sustained.py), where the turn budget (logs/ingest/turns.py) keeps reads.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_http import HTTP, frames  # noqa: E402
from ingest_peers import free_port, start_server  # noqa: E402

PATHS = ("book", "syslog", "jsonl", "es-bulk", "es-bulk-ids")
_TOTALS = re.compile(rb"^(?:totals|summary): (\d+)", re.M)
_STORED = re.compile(r"^logmesh_stored_events_total(?:\{[^}]*\})? ([0-9.e+-]+)$", re.M)


def _stored(http_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as r:
            return int(sum(float(v) for v in _STORED.findall(r.read().decode())))
    except OSError:
        return -1


def post_bulk(path: str, http_port: int, events: int, body_bytes: int) -> None:
    """``events`` events as ES bulk bodies of ~``body_bytes``, posted in turn, each answer checked."""
    route, ctype, build, created = HTTP[path]
    evs = frames(events, seed=1)
    per = max(1, body_bytes // max(1, len(build(evs[:200])) // 200))
    for i in range(0, events, per):
        body = build(evs[i:i + per])
        req = urllib.request.Request(f"http://127.0.0.1:{http_port}{route}", data=body,
                                     headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=1200) as r:
            got = created(r.status, r.read())
        if got != len(evs[i:i + per]):
            raise RuntimeError(f"{path}: {got} of {len(evs[i:i + per])} created")


def count(tree: Path, path: str, events: int, connections: int,
          keep: Path | None = None, body_bytes: int = 2 << 20) -> tuple[int, int]:
    """(main thread's instructions, all threads') for one run of ``events`` events; the
    main thread's callgrind output copied into ``keep`` (for callgrind_annotate) if given."""
    port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="ingest-count-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
               f"--callgrind-out-file={out}.%p", sys.executable, "-m", "logmesh", "logs",
               "--standalone", "--no-supervise", "--http-port", str(http_port),
               "--data-dir", str(Path(tmp) / "data"), "--fsync", "batch",
               "--max-segment-size", "8GB"]
        gen = [sys.executable, str(HERE / "loadgen.py"), "-c", str(connections), "-n", str(events),
               "--timeout", "1200", "--stall-timeout", "600"]
        if path == "book" or path.startswith("es-"):
            cmd += ["--port", str(port)]
        else:
            cmd += ["--port", str(free_port()), f"--{'syslog' if path == 'syslog' else 'jsonl'}-port",
                    str(port)]
            gen += ["--syslog"] if path == "syslog" else ["--lines"]
        gen += ["--port", str(port)]
        proc = start_server(cmd, port, cwd=tree, ready_timeout=900)
        try:
            if path.startswith("es-"):
                deadline = time.monotonic() + 600
                while _stored(http_port) < 0 and time.monotonic() < deadline:  # the HTTP port is up last
                    time.sleep(1)
                post_bulk(path, http_port, events, body_bytes)
            else:
                subprocess.run(gen, check=True, stdout=subprocess.DEVNULL, timeout=1500)
            deadline = time.monotonic() + 900
            while _stored(http_port) < events:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: {_stored(http_port)} of {events} stored")
                time.sleep(1)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(300)
        main = total = 0
        for name in glob.glob(f"{out}.*"):
            got = _TOTALS.search(Path(name).read_bytes())
            n = int(got.group(1)) if got else 0
            total += n
            if name.endswith("-01"):
                main = n
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(name, keep / f"callgrind.{path}.{tree.name}.{events}")
        return main, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paths", default="book", help="comma list of " + ", ".join(PATHS))
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("--events", default="20000,60000", help="the two lengths")
    ap.add_argument("--code", type=Path, action="append", default=None,
                    help="a checkout to run the server from (repeatable; default this one)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="a directory to copy the main thread's callgrind outputs into")
    ap.add_argument("--body-bytes", type=int, default=2 << 20, help="an ES bulk body's size")
    a = ap.parse_args(argv)
    short, long_ = (int(x) for x in a.events.split(","))
    trees = a.code or [HERE.parent]
    for path in a.paths.split(","):
        for tree in trees:
            m1, t1 = count(tree, path, short, a.connections, a.keep, a.body_bytes)
            m2, t2 = count(tree, path, long_, a.connections, a.keep, a.body_bytes)
            per = long_ - short
            print(f"{path:6} {str(tree):40} main thread {(m2 - m1) / per:8,.0f} instructions a line, "
                  f"all threads {(t2 - t1) / per:8,.0f}  (main {m1:,} / {m2:,})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
