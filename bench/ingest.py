#!/usr/bin/env python3
"""Ingest side by side: logmesh's logs service beside the chapter's Node service and rsyslog.

    .venv/bin/python bench/ingest.py [-n 1000000] [--repeat 3] [--json bench/out/ingest.json]

The same stream of ~200-byte book log packets from one load generator process
(bench/loadgen.py) over 1, 4 and 16 TCP connections, each peer writing to
local disk, every event counted on disk by its number. Peers:

* logmesh ``logs --fsync batch`` with 1 and 2 workers;
* the chapter's Node.js logs service (bench/peers/book_logs.js) as written
  (printing every event; its framing loses events under load) and with its
  framing fixed and printing off;
* rsyslog (imptcp -> omfile): the brief's Direct queue with asynchronous
  writing, and the best setting found here (LinkedList queue, a write at the
  end of each batch).

The measuring is bench/ingest_peers.py's; this file only picks the line-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_peers import main  # noqa: E402

PEERS = "logmesh,logmesh-w2,node-book,node-fixed,rsyslog,rsyslog:linkedlist-txflush"

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a.startswith("--peers") for a in args):
        args = ["--peers", PEERS, *args]
    sys.exit(main(args))
