"""The event model (DESIGN.md §3): one event per log packet, ECS-aligned names.

Events are stored as flat JSON objects whose keys are the ECS dotted names,
so the same lines load into DuckDB and Elasticsearch data streams unchanged.

Columns every event may have (the query engine's schema; anything else an
ingest source sends is kept under ``labels``, an object of extra fields):

=========================  ======  =============================================
name                       type    meaning
=========================  ======  =============================================
seq                        long    unique within the store, increasing per worker
@timestamp                 date    epoch milliseconds (UTC): when the service got the request
received_at                date    epoch milliseconds: when the logs service got it
service.name               keyword the shipping service (registration or packet field)
service.instance           keyword the shipping process's instance id
source.address             keyword address of the connection the log came over
source.port                long    its port
http.request.method        keyword the request packet's ``method``
url.path                   keyword the request packet's ``uri``
http.response.status_code long    when known (gateway logs, HTTP ingest)
key                        keyword the request's correlation key
log.level                  keyword info | warning | error | ...
log.logger                 keyword logger name (logging.Handler records)
message                    text    the original packet text, verbatim (or the log message)
params                     object  the request's ``params`` when it is JSON
error.stack_trace          text    a traceback, for records with an exception
event.id                   keyword "<instance>:<n>": shipper instance + per-boot number
trace.id                   keyword the gateway's request id, same across services
labels                     object  any other fields; ``logmesh.params_error`` says why a
                                   logged request's params are in ``message`` only
                                   (``bad_number``, ``too_deep``: no reader could parse them);
                                   ``logmesh.replaced: "bad_utf8"``: bytes of the packet that
                                   were not UTF-8 are stored as U+FFFD
=========================  ======  =============================================

The book's packets are stored with the request text in ``message`` only
(ingest/book_block.py: parsing it cost half of the ingest's CPU); readers
derive the request's method, path, params, key and trace id from it, in
DuckDB (store/columns.py) and in Python (:func:`derive_request`), by one rule.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from ..protocol import loads

FIELD_TYPES: dict[str, str] = {
    "seq": "long",
    "@timestamp": "date",
    "received_at": "date",
    "service.name": "keyword",
    "service.instance": "keyword",
    "source.address": "keyword",
    "source.port": "long",
    "http.request.method": "keyword",
    "url.path": "keyword",
    "http.response.status_code": "long",
    "key": "keyword",
    "log.level": "keyword",
    "log.logger": "keyword",
    "message": "text",
    "params": "object",
    "error.stack_trace": "text",
    "event.id": "keyword",
    "trace.id": "keyword",
    "labels": "object",
}


def as_text(value: Any) -> str | None:
    """A JSON value as DuckDB's ``json_extract_string`` gives it: strings bare, the rest as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def derive_request(event: dict[str, Any]) -> dict[str, Any]:
    """Fill the logged request's fields from ``message`` where the line holds it unparsed.

    The book's packets are stored with the request packet as ``message`` only
    (ingest/book_block.py); this is the rule of store/columns.py's
    ``with_request_fields`` for readers in Python (the Elasticsearch sink).
    ``event`` is changed in place and returned.
    """
    message = event.get("message")
    if event.get("http.request.method") is not None or event.get("url.path") is not None \
            or not isinstance(message, str) or not message.startswith("{"):
        return event
    try:
        req = loads(message)
    except orjson.JSONDecodeError:
        return event
    if not isinstance(req, dict):
        return event
    params = req.get("params")
    key = req.get("key")
    if key is None and isinstance(params, dict):
        key = params.get("key")  # the book's gateway keeps the key inside params
    for name, value in (("http.request.method", req.get("method")), ("url.path", req.get("uri")),
                        ("trace.id", req.get("trace.id")), ("key", key)):
        if event.get(name) is None and value is not None:
            event[name] = as_text(value)
    if event.get("params") is None and params is not None:
        event["params"] = params
    return event


class Event(msgspec.Struct, omit_defaults=True, kw_only=True):
    """One stored event as ingest builds it; msgspec encodes it to the stored line with the
    ECS names of the table above (``seq`` is filled in by the store's writer)."""

    seq: int = 0  # given by the store's writer
    timestamp: int = msgspec.field(name="@timestamp")
    received_at: int = 0
    service_name: str | None = msgspec.field(default=None, name="service.name")
    service_instance: str | None = msgspec.field(default=None, name="service.instance")
    source_address: str | None = msgspec.field(default=None, name="source.address")
    source_port: int | None = msgspec.field(default=None, name="source.port")
    method: str | None = msgspec.field(default=None, name="http.request.method")
    path: str | None = msgspec.field(default=None, name="url.path")
    status: int | None = msgspec.field(default=None, name="http.response.status_code")
    key: str | None = None
    level: str | None = msgspec.field(default=None, name="log.level")
    logger: str | None = msgspec.field(default=None, name="log.logger")
    message: str | msgspec.Raw | None = None  # Raw: a JSON string literal, embedded unchanged
    params: msgspec.Raw = msgspec.Raw(b"")
    stack_trace: str | None = msgspec.field(default=None, name="error.stack_trace")
    event_id: str | None = msgspec.field(default=None, name="event.id")
    trace_id: str | None = msgspec.field(default=None, name="trace.id")
    labels: dict[str, Any] | None = None
