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

Syslog lines are stored with ``labels.log.syslog.priority`` and without the four
labels that follow from it (``log.syslog.facility.code``/``.name``,
``log.syslog.severity.code``/``.name``: ~125 of a line's ~550 bytes, written,
fsynced and loaded for nothing); readers put them back right after the priority,
as lines stored before kept them, in DuckDB (store/columns.py) and in Python
(:func:`derive_syslog_labels`), by one rule.
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


SYSLOG_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
                     "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
                     "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
SYSLOG_SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice",
                     "informational", "debug")
SYSLOG_PRIORITY = "log.syslog.priority"
SYSLOG_FACILITY_CODE = "log.syslog.facility.code"


def syslog_pri_labels(pri: int) -> dict[str, Any]:
    """What a priority (0-191) says, as the labels readers see after ``log.syslog.priority``."""
    return {SYSLOG_FACILITY_CODE: pri >> 3, "log.syslog.facility.name": SYSLOG_FACILITIES[pri >> 3],
            "log.syslog.severity.code": pri & 7, "log.syslog.severity.name": SYSLOG_SEVERITIES[pri & 7]}


def derive_syslog_labels(labels: Any) -> Any:
    """``labels`` with the facility and severity labels put back after the priority.

    The rule of store/columns.py's ``with_syslog_labels`` for readers in Python (the
    Elasticsearch sink): labels whose first key is ``log.syslog.priority``, an integer
    0-191, and whose second is not ``log.syslog.facility.code`` (a line stored before
    they were left out has it there). Anything else is returned as it is; a new dict
    otherwise, its keys in the order of a line that stored them.
    """
    if labels.__class__ is not dict or not labels:
        return labels
    keys = iter(labels)
    if next(keys) != SYSLOG_PRIORITY or next(keys, None) == SYSLOG_FACILITY_CODE:
        return labels
    pri = labels[SYSLOG_PRIORITY]
    if pri.__class__ is not int or not 0 <= pri < 192:
        return labels
    out = {SYSLOG_PRIORITY: pri, **syslog_pri_labels(pri)}
    out.update(labels)  # the priority keeps its place, first
    return out


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
