"""The gateway's access log as its shipper queues it: a row of the request's values.

The gateway builds an access log for every request, on the path that bounds the mesh's GET
throughput. Built as the book's kind of record -- a message such as ``GET /goods 200
1.234ms`` and a dict of nine ECS fields -- then queued and encoded, it cost ~17k
instructions a request; queued as one tuple of the values it is ~7k (docs/benchmarks.md,
issue 22, "the access log as a row"). The message and the fields are built from the row
where the line is stored, by the logs service, into the same stored line byte for byte
(tests/logs/ingest/test_shipped.py).

A row goes on the wire only to a logs node that said it reads rows (``FEATURE`` in its
acks); to any other -- an older logmesh, the book's service, the spool, the terminal -- the
shipper sends the record the row stands for (:func:`record`).

The row: ``(method, path, status, trace_id, level, took_us, errorcode, upstream, address)``.
"""

from __future__ import annotations

from typing import Any

FEATURE = "access_rows"  # said in a logs node's acks: it stores rows as their records
FIELDS = 9

# ".0", ".001", ..., ".01", ..., ".999": the fraction as repr writes a float k/1000, k < 1000.
# The message says the duration as repr(us / 1000); below EXACT_US µs (12.7 days) that text
# is us // 1000 then this fraction: the doubles there are far closer than 0.001 apart, so the
# shortest text that reads back as us / 1000 is that decimal itself, trailing zeros dropped
# (tests/mesh/test_gateway_status.py). It saves the float's shortest-repr conversion.
MS_FRACTIONS = tuple(repr(k / 1000)[1:] for k in range(1000))
EXACT_US = 2**40


def message(method: Any, path: Any, status: Any, took_us: int) -> str:
    """The access log's text: ``GET /goods 200 1.234ms`` (the duration in ms to the µs)."""
    took = (f"{took_us // 1000}{MS_FRACTIONS[took_us % 1000]}" if 0 <= took_us < EXACT_US
            else repr(took_us / 1000))
    return f"{method} {path} {status} {took}ms"


def record(row: tuple | list) -> tuple[str, dict[str, Any]]:
    """``(message, extra)``: the record a row stands for, as the gateway built it before rows.

    Raises ValueError for a list that is no row (the logs service refuses such an event)."""
    if len(row) != FIELDS or row[5].__class__ is not int:
        raise ValueError(f"an access row is {FIELDS} values, the 6th the duration in whole µs")
    method, path, status, trace_id, level, took_us, errorcode, upstream, address = row
    return message(method, path, status, took_us), {
        "http.request.method": method, "url.path": path, "http.response.status_code": status,
        "trace.id": trace_id, "log.level": level, "event.duration_ms": took_us / 1000,
        "errorcode": errorcode, "upstream": upstream, "upstream.address": address}
