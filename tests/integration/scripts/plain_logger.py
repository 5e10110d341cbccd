"""A plain Python program that logs through ``logmesh.LogHandler`` and registers nowhere.

    python plain_logger.py PORT SERVICE

Logs one record, prints ``logged``, then stays alive (quiet: only the shipper's heartbeats)
until it is killed.
"""

from __future__ import annotations

import logging
import sys
import time

from logmesh import LogHandler

port, service = int(sys.argv[1]), sys.argv[2]
log = logging.getLogger(service)
log.setLevel(logging.INFO)
handler = LogHandler(service, "127.0.0.1", port)
log.addHandler(handler)
log.info("a plain program, registered nowhere")
handler.flush()
print("logged", flush=True)
while True:
    time.sleep(1)
