"""Ship a plain script's logging records to the logs service.

Start the logs service first (``logmesh logs`` or ``make run``), then:

    .venv/bin/python examples/log_handler.py [PORT]
    .venv/bin/logmesh query 'service.name:billing AND log.level:error' --since 5m

Records arrive with their level, logger, message, traceback and extra fields,
acknowledged by the logs service; with ``spool_dir`` they wait on disk while it is down.
"""

import logging
import sys

import logmesh

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9040  # the logs service's TCP port
handler = logmesh.LogHandler("billing", "127.0.0.1", port, spool_dir="data/spool/billing")
log = logging.getLogger("billing.invoices")
log.addHandler(handler)
log.setLevel(logging.INFO)

log.info("invoice created", extra={"invoice": 1042, "customer": "acme"})
lines = []
try:
    total = sum(lines) / len(lines)
except ZeroDivisionError:
    log.exception("cannot compute the invoice total")

handler.flush()  # wait for the acknowledgements before the script ends
handler.close()
print(f"shipped {handler.shipper.stats['acked']} record(s)")
