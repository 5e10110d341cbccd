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
labels                     object  any other fields
=========================  ======  =============================================
"""

from __future__ import annotations

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
