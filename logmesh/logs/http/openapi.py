"""The OpenAPI 3 description served at /api/v1/openapi.json (docs/api.md in machine form).

Hand-written: every parameter's limits here are the ones the handlers check
(query_api.py, params.py, tail.py), so a client generated from it, or a fuzzer, gets
400s with a message for anything outside them and never a 5xx.
"""

from __future__ import annotations

from typing import Any

from ..event import FIELD_TYPES

_JSON_TYPES = {"long": {"type": "integer"}, "date": {"type": "integer"}, "keyword": {"type": "string"},
               "text": {"type": "string"}, "object": {}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _q(name: str, description: str, schema: dict, *, required: bool = False,
       example: Any = None) -> dict:
    p = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if example is not None:
        p["example"] = example
    return p


_TIME = {"type": "string", "maxLength": 200}
Q = _q("q", "KQL query (empty: every event), e.g. `service.name:goods and POST`.",
       {"type": "string", "maxLength": 10000}, example="service.name:goods")
FROM = _q("from", "Start of the range: ISO-8601, epoch ms, or now-15m (units s m h d w). "
          "Default now-15m.", _TIME, example="now-1h")
TO = _q("to", "End of the range (inclusive), same forms. Default now.", _TIME, example="now")
BAD = {"description": "A bad parameter; `error` says what to send instead.",
       "content": {"application/json": {"schema": _ref("Error")}}}


LIMIT_ROUTES = _q("limit", "Routes (the busiest) per answer; the rest are counted in "
                  "`routes_left_off` and added up in `other`.", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})


# Every GET of /api/v1/* takes `_` and ignores it: the cache-busting `_=<ms>` that clients and
# proxies add (jQuery's cache: false). Any other name the route does not list is a 400.
CACHE_BUST = _q("_", "Ignored: a cache-busting value (`_=<ms>`) a client or proxy may add.",
                {"type": "string", "maxLength": 40})


def _ok(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Answers of every route that runs a query (the query limits of slots.py, docs/security.md).
BUSY = {
    "429": {"description": "This client already has its most queries running or waiting; "
                           "`Retry-After` says when to try again.",
            "content": {"application/json": {"schema": _ref("Error")}}},
    "503": {"description": "The query ran past --query-timeout (counted from its arrival, waiting "
                           "for a query thread included) and was stopped; `Retry-After` is set.",
            "content": {"application/json": {"schema": _ref("Error")}}},
}


def _get(summary: str, params: list[dict], ok: dict, *, extra: dict | None = None,
         operation_id: str) -> dict:
    responses = {"200": ok, "400": BAD, **BUSY, **(extra or {})}
    return {"get": {"summary": summary, "operationId": operation_id, "parameters": [*params, CACHE_BUST],
                    "responses": responses}}


def _with_post(ops: dict) -> dict:
    """The GET operation again as a POST whose JSON body carries the same parameters: for a
    ``q`` longer than the request line allows (8,190 bytes). It stays a read (read token)."""
    get = ops["get"]
    props = {}
    for p in get["parameters"]:
        schema = p["schema"]
        if schema.get("type") == "integer":  # "100" or 100, as in a query string
            schema = {"oneOf": [schema, {"type": "string", "maxLength": 40}]}
        props[p["name"]] = {**schema, "description": p["description"]}
    required = [p["name"] for p in get["parameters"] if p.get("required")]
    body = {"type": "object", "properties": props, "additionalProperties": False}  # else a 400
    if required:
        body["required"] = required
    post = {"summary": get["summary"] + " (parameters in a JSON body, for long queries; a read: "
                                        "needs a read token)",
            "operationId": get["operationId"] + "Post", "parameters": [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {**get["responses"],
                          "413": {"description": "A body over 64 KiB.",
                                  "content": {"application/json": {"schema": _ref("Error")}}}}}
    return {**ops, "post": post}


# GET /api/v1/routes: what it says of a route or a service (query/red.py)
_PERCENTILES = {"type": "string", "enum": ["exact", "estimated"],
                "description": "exact, or estimated from RED summaries: within 1% of the exact "
                               "values (a series' p95 within 4%)."}
_RED = ["requests", "rate_per_s", "errors", "server_errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"]
_RED_PROPS: dict[str, Any] = {
    "requests": {"type": "integer", "minimum": 0}, "rate_per_s": {"type": "number", "minimum": 0},
    "errors": {"type": "integer", "minimum": 0, "description": "Status >= 400."},
    "server_errors": {"type": "integer", "minimum": 0, "description": "Status >= 500."},
    "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
    **{f"p{p}_ms": {"type": "number", "nullable": True,
                    "description": f"The {p}th percentile of labels.event.duration_ms (null: no "
                                   "request with a duration)."} for p in (50, 95, 99)},
}


WARNINGS = {"type": "array", "items": {"type": "string"},
            "description": "What may make the answer other than meant, e.g. a field no event in "
                           "the range has (`field statuss is unknown: ...; did you mean "
                           "http.response.status_code?`); empty when nothing."}


_SAVED_BODY = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 200}, "q": {"type": "string", "maxLength": 10000},
    "from": _TIME, "to": _TIME, "by": {"type": "string", "maxLength": 256},
    "columns": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 256}}}}
_NEEDS_WRITE = {"401": {"description": "No token; a change needs a write token.",
                        "content": {"application/json": {"schema": _ref("Error")}}},
                "403": {"description": "A read-only token; a change needs a write token.",
                        "content": {"application/json": {"schema": _ref("Error")}}}}
# http/saved_searches.py and http/export.py
SAVED_AND_EXPORT = {
    "/api/v1/saved-searches": {
        "get": {"summary": "The saved searches of this data directory (shared by everyone who uses "
                           "the service), by name.", "operationId": "savedSearches",
                "parameters": [CACHE_BUST],
                "responses": {"200": _ok("Saved searches.", {"type": "object", "required": ["saved_searches"],
                                         "properties": {"saved_searches": {"type": "array",
                                                                           "items": _ref("SavedSearch")}}})}},
        "post": {"summary": "Save a search: a name, its query, range, columns and stack-by field (a "
                            "name that exists is replaced, keeping its id). Needs a write token.",
                 "operationId": "saveSearch", "parameters": [],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": _SAVED_BODY}}},
                 "responses": {"200": _ok("Replaced.", {"type": "object"}), "201": _ok("Saved.", {"type": "object"}),
                               "400": BAD, **_NEEDS_WRITE,
                               "413": {"description": "A body over 64 KiB.",
                                       "content": {"application/json": {"schema": _ref("Error")}}}}}},
    "/api/v1/saved-searches/{id}": {"delete": {
        "summary": "Delete a saved search. Needs a write token.", "operationId": "deleteSavedSearch",
        "parameters": [{"name": "id", "in": "path", "required": True, "description": "Its id.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64}}],
        "responses": {"200": _ok("Deleted.", {"type": "object"}), "400": BAD, **_NEEDS_WRITE,
                      "404": {"description": "No saved search with this id.",
                              "content": {"application/json": {"schema": _ref("Error")}}}}}},
    "/api/v1/export": {"get": {
        "summary": "The events of a search as a file (NDJSON or CSV), streamed, newest first; CSV "
                   "cells that start like a spreadsheet formula get a leading '.",
        "operationId": "export",
        "parameters": [Q, FROM, TO,
                       _q("limit", "At most this many events.",
                          {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 10000}),
                       _q("order", "desc: newest first; asc: oldest first.",
                          {"type": "string", "enum": ["desc", "asc"], "default": "desc"}),
                       _q("format", "ndjson (one event per line) or csv.",
                          {"type": "string", "enum": ["ndjson", "csv"], "default": "ndjson"}),
                       _q("columns", "CSV only: field names separated by commas (default @timestamp, "
                          "service.name, log.level, method, path, status, trace.id, message).",
                          {"type": "string", "maxLength": 10000}, example="@timestamp,service.name,message"),
                       _q("filename", "The download's name, kept to letters, digits and . - _.",
                          {"type": "string", "maxLength": 200}),
                       CACHE_BUST],
        "responses": {"200": {"description": "The events, as an attachment.", "content": {
            "application/x-ndjson": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}}}},
            "400": BAD, **BUSY}}},
}


_ES_BULK = {  # POST /_bulk and /{index}/_bulk (ingest/es_bulk.py)
    "summary": "Elasticsearch bulk API: index/create actions become events; an answer item per "
               "action. A write token (Bearer, Basic with the token as password, or ApiKey).",
    "operationId": "esBulk",
    "requestBody": {"required": True, "content": {
        "application/x-ndjson": {"schema": {"type": "string"}},
        # Elasticsearch takes its NDJSON under this type too, as do these endpoints
        "application/json": {"schema": {"type": "string"}}}},
    "responses": {
        "200": _ok("Stored (on disk): Elasticsearch's bulk response, a status per item.",
                   {"type": "object", "required": ["took", "errors", "items"], "properties": {
                       "took": {"type": "integer"}, "errors": {"type": "boolean"},
                       "items": {"type": "array", "items": {"type": "object"}}}}),
        "400": {"description": "No action in the body (Elasticsearch's error form)."},
        "413": {"description": "Body larger than --max-body-size."},
        "503": {"description": "The store cannot write now; retry after Retry-After."},
    },
}

_INDEX = {"name": "index", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "The document's index (kept as the label es.index); a name Elasticsearch "
                         "refuses (.., upper case, \\ / * ? \" < > | , # : or a space, _ - + first, "
                         "over 255 bytes) is a 400 invalid_index_name_exception."}
_DOC_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 512},
           "description": "The document's _id (kept as the label es.id)."}


def _es_doc(summary: str, operation_id: str, params: list[dict]) -> dict:
    """One of Elasticsearch's single-document operations (ingest/es_doc.py)."""
    error = {"description": "Elasticsearch's error form.",
             "content": {"application/json": {"schema": {"type": "object"}}}}
    return {"summary": summary + " A write token, as for _bulk.", "operationId": operation_id,
            "parameters": params, "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object"}}}},
            "responses": {"201": _ok("Stored (on disk).", {"type": "object", "required": ["_id", "result"]}),
                          "200": _ok("An index of an _id stored before: not stored again (result updated).",
                                     {"type": "object"}),
                          "400": error, "409": error, "413": error, "503": error}}


_OP_TYPE = _q("op_type", "create: a 409 when the _id was stored before; index (default): a 200.",
              {"type": "string", "enum": ["index", "create"]})
_ES_DOC = {
    "/{index}/_doc": {"post": _es_doc("Elasticsearch index() with no id: one document, its _id the "
                                      "stored event's seq.", "esDoc", [_INDEX])},
    "/{index}/_doc/{id}": {m: _es_doc("Elasticsearch index() with an id.", f"esDocId{m.title()}",
                                      [_INDEX, _DOC_ID, _OP_TYPE]) for m in ("put", "post")},
    "/{index}/_create/{id}": {m: _es_doc("Elasticsearch create(): a 409 when the _id was stored before.",
                                         f"esCreate{m.title()}", [_INDEX, _DOC_ID]) for m in ("put", "post")},
}

EVENT = {
    "type": "object",
    "description": "An event: flat, ECS dotted names; times are epoch ms.",
    "properties": {name: {**_JSON_TYPES[kind], "description": kind} for name, kind in FIELD_TYPES.items()},
    "additionalProperties": True,
}
_COUNT = {"type": "integer", "minimum": 0}
_MS = {"type": "integer", "nullable": True}

# GET /api/v1/mesh's instances (logs/health.py): a process, as a node of the distributor's list
# and/or a shipping instance; docs/api.md says the rules of its states.
INSTANCE = {
    "type": "object",
    "required": ["name", "instance", "instances", "address", "host", "port", "registered", "state",
                 "reason", "since_ms", "last_seen_ms", "first_seen_ms", "restarts", "events",
                 "errors", "missing", "heartbeat", "timeouts", "unended"],
    "properties": {
        "name": {"type": "string", "description": "The service's name (the node's, or the shipper's)."},
        "instance": {"type": "string", "nullable": True,
                     "description": "The newest shipping instance id (service.instance); null for a "
                                    "node with no logmesh shipper (the book's services)."},
        "instances": {"type": "array", "items": {"type": "string"},
                      "description": "Every instance id seen on this address, oldest first."},
        "address": {"type": "string", "nullable": True,
                    "description": "host:port of the node; null for an unregistered instance."},
        "host": {"type": "string", "nullable": True}, "port": {"type": "integer", "nullable": True},
        "registered": {"type": "boolean", "description": "In the distributor's list now."},
        "state": {"type": "string", "enum": ["up", "slow", "silent", "down", "unregistered"]},
        "reason": {"type": "string", "description": "Why it is in that state (empty when up)."},
        "since_ms": {"type": "integer", "description": "When it entered the state (epoch ms), as "
                                                     "this logs service saw it."},
        "last_seen_ms": {**_MS, "description": "Its newest event or heartbeat (epoch ms)."},
        "first_seen_ms": {**_MS, "description": "When its newest instance was first heard (its "
                                                "start), else when the node was first listed."},
        "restarts": {**_COUNT, "description": "New instance ids on the same address."},
        "events": {**_COUNT, "description": "Events its instances shipped (this logs service's ledger)."},
        "errors": {**_COUNT, "description": "Of them, errors: log.level error or worse, status >= 500."},
        "missing": {**_COUNT, "description": "Events the loss ledger found missing."},
        "heartbeat": {"type": "boolean", "description": "Its shipper sends heartbeats: it can be "
                                                       "told silent."},
        "timeouts": {**_COUNT, "description": "Gateway timeouts (504) charged to its address in the "
                                              "last minute, none answered since."},
        "unended": {**_COUNT, "description": "Of those timeouts, replies it began and never ended "
                                             "with ¶ (the gateway answered 504 naming it): broken, "
                                             "not slow."},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "logmesh logs service",
        "version": "1",
        "description": "Search, count and follow the events of the logs service (docs/api.md).",
    },
    "paths": {
        "/api/v1/search": _with_post(_get(
            "Events matching a query, newest (or oldest) first, a page at a time.",
            [Q, FROM, TO,
             _q("limit", "Events per page.", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}),
             _q("order", "desc: newest first; asc: oldest first.",
                {"type": "string", "enum": ["desc", "asc"], "default": "desc"}),
             _q("cursor", "next_cursor of the previous page (same q, from, to, order).",
                {"type": "string", "maxLength": 1000}),
             _q("brief", "1: each event as the web UI's list shows it: every field, each text "
                "longer than 300 characters cut to them (a member of params or labels too, an "
                "object or array by its JSON text); `cut`: the whole length of each text cut, by "
                "field name (labels.k); `cut_lines`: the lines of each of several. "
                "GET /api/v1/events/{seq}?context=0 reads one whole.",
                {"type": "integer", "minimum": 0, "maximum": 1, "default": 0})],
            _ok("A page of events.", _ref("SearchResult")), operation_id="search")),
        "/api/v1/histogram": _with_post(_get(
            "Counts of matching events per time interval, optionally stacked by a field.",
            [Q, FROM, TO,
             _q("interval", "Bucket width, e.g. 1m, 5m, 1h (chosen from the range when absent). "
                "At most 10000 buckets.", {"type": "string", "maxLength": 40}, example="1m"),
             _q("by", "Stack each bucket by this field's 10 most frequent values "
                "(the rest under `(other)`, missing under `(none)`).",
                {"type": "string", "maxLength": 256}, example="service.name")],
            _ok("Buckets from the start of the range.", _ref("Histogram")), operation_id="histogram")),
        "/api/v1/top": _with_post(_get(
            "The most frequent values of a field among matching events (facets).",
            [_q("field", "A field name: an ECS column, labels.KEY or params.A.B.",
                {"type": "string", "minLength": 1, "maxLength": 256}, required=True, example="url.path"),
             Q, FROM, TO,
             _q("limit", "How many values.", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10})],
            _ok("Values by count, highest first.", _ref("Top")), operation_id="top")),
        "/api/v1/routes": _with_post(_get(
            "RED per route and per service from the gateway's access logs: requests, rate, errors "
            "(status >= 400), server errors (>= 500), p50/p95/p99 duration; per service also the "
            "requests its own logs show.",
            [Q, FROM, TO, LIMIT_ROUTES],
            _ok("Routes, busiest first, and services.", _ref("Routes")), operation_id="routes")),
        "/api/v1/routes/series": _with_post(_get(
            "Per route and time bucket: requests, errors, server errors and p95 duration (sparklines).",
            [Q, FROM, TO, LIMIT_ROUTES,
             _q("interval", "Bucket width, e.g. 1m (chosen from the range when absent). "
                "At most 1000 buckets.", {"type": "string", "maxLength": 40}, example="1m")],
            _ok("Buckets from the start of the range, and per route one value per bucket.",
                _ref("RouteSeries")), operation_id="routeSeries")),
        "/api/v1/fields": _get(
            "Field names with types: the schema's columns and the labels/params keys seen in the "
            "range among the events q matches (up to 20,000 of them).",
            [Q, FROM, TO], _ok("Known fields.", _ref("Fields")), operation_id="fields"),
        **SAVED_AND_EXPORT,
        "/api/v1/tail": _with_post({"get": {
            "summary": "Server-Sent Events: each new matching event as `data: <event JSON>` (id: its seq).",
            "operationId": "tail",
            "parameters": [
                Q,
                _q("last", "First send the newest N matching events (oldest first).",
                   {"type": "integer", "minimum": 0, "maximum": 1000, "default": 0}),
                _q("timeout", "End the stream after this many seconds (0: when the client leaves).",
                   {"type": "integer", "minimum": 0, "maximum": 86400, "default": 0}),
                _q("brief", "1: each event as /api/v1/search?brief=1 sends it (texts past 300 "
                   "characters cut; `cut`, `cut_lines`), as the web UI's live tail asks.",
                   {"type": "integer", "minimum": 0, "maximum": 1, "default": 0}),
                CACHE_BUST,
            ],
            "responses": {
                "200": {"description": "An event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                "400": BAD, **BUSY,
            },
        }}),
        "/api/v1/events/{seq}": {"get": {
            "summary": "One event with its context: events of the same service around it, and its trace.",
            "operationId": "event",
            "parameters": [
                {"name": "seq", "in": "path", "required": True, "description": "The event's seq.",
                 "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}},
                _q("context", "Events before and after from the same service.",
                   {"type": "integer", "minimum": 0, "maximum": 1000, "default": 10}),
                _q("brief", "1: the before, after and trace events hold only seq, @timestamp, "
                   "service.name, http.request.method, url.path, log.level, trace.id and "
                   "message, each text cut to 300 characters (`cut`: the whole length of each "
                   "text cut).", {"type": "integer", "minimum": 0, "maximum": 1, "default": 0}),
                CACHE_BUST,
            ],
            "responses": {
                "200": _ok("The event, context and trace (each in time order).", _ref("EventContext")),
                "400": BAD, **BUSY,
                "404": {"description": "No such event.",
                        "content": {"application/json": {"schema": _ref("Error")}}},
            },
        }},
        "/api/v1/mesh": _get(
            "The distributor's node list with request counts, rates and errors from the logs, "
            "and the health of every instance now (`instances`; not limited by from/to).",
            [FROM, TO], _ok("Nodes, per-service counts and instances.", _ref("Mesh")),
            operation_id="mesh"),
        "/api/v1/stats": {"get": {
            "summary": "What the store holds: events, disk use, time span, per-service counts, shipper loss.",
            "operationId": "stats", "parameters": [CACHE_BUST],
            "responses": {"200": _ok("Store statistics.", _ref("Stats")), **BUSY},
        }},
        "/api/v1/logs": {"post": {
            "summary": "Ingest events: NDJSON, or a JSON array of objects.",
            "operationId": "ingest",
            "requestBody": {"required": True, "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            }},
            "responses": {
                "200": _ok("Stored (on disk) and rejected lines.", _ref("IngestResult")),
                "400": {"description": "No line could be used.",
                        "content": {"application/json": {"schema": _ref("Error")}}},
                "413": {"description": "Body larger than the service's --max-body-size."},
            },
        }},
        # Foreign ingest protocols (docs/ingest.md): each answers in its own protocol's form.
        "/v1/logs": {"post": {
            "summary": "OpenTelemetry logs (OTLP/HTTP): ExportLogsServiceRequest as protobuf or JSON; "
                       "gzip with Content-Encoding. A write token.",
            "operationId": "otlpLogs",
            "requestBody": {"required": True, "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            }},
            "responses": {
                "200": {"description": "Stored (on disk): ExportLogsServiceResponse, with "
                                       "partial_success when records were refused.",
                        "content": {"application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                                    "application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "Not an ExportLogsServiceRequest: a google.rpc.Status."},
                "413": {"description": "Body larger than --max-body-size."},
                "415": {"description": "Neither protobuf nor JSON."},
                "503": {"description": "The store cannot write now; retry after Retry-After."},
            },
        }},
        "/_bulk": {"post": _ES_BULK},
        "/{index}/_bulk": {"post": {**_ES_BULK, "operationId": "esBulkIndex", "parameters": [
            {"name": "index", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The index of actions that name none (kept as the label es.index)."}]}},
        **_ES_DOC,
        "/loki/api/v1/push": {"post": {
            "summary": "Loki push: snappy-compressed PushRequest protobuf, or its JSON form. "
                       "A write token.",
            "operationId": "lokiPush",
            "requestBody": {"required": True, "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object", "properties": {
                    "streams": {"type": "array", "items": {"type": "object"}}}}},
            }},
            "responses": {
                "204": {"description": "Every entry stored (on disk)."},
                "400": {"description": "The push, or some of its entries, refused (text/plain; "
                                       "the good entries are stored)."},
                "413": {"description": "Body larger than --max-body-size."},
                "503": {"description": "The store cannot write now; retry after Retry-After."},
            },
        }},
        "/api/v1/openapi.json": {"get": {
            "summary": "This description.", "operationId": "openapi", "parameters": [],
            "responses": {"200": _ok("OpenAPI 3 document.", {"type": "object"})},
        }},
        "/healthz": {"get": {
            "summary": "Liveness.", "operationId": "healthz", "parameters": [],
            "responses": {"200": _ok("Alive.", {"type": "object", "properties": {"ok": {"type": "boolean"}},
                                                "required": ["ok"]})},
        }},
        "/metrics": {"get": {
            "summary": "Prometheus text exposition.", "operationId": "metrics", "parameters": [],
            "responses": {"200": {"description": "Metrics.",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "required": ["ok", "error", "status"], "properties": {
            "ok": {"type": "boolean"}, "error": {"type": "string"}, "status": {"type": "integer"},
            "position": {"type": "integer", "description": "0-based offset of a query syntax error"},
            "terms": {"type": "integer", "description": "a query refused for its number of terms"},
            "scans": {"type": "integer",
                      "description": "a query refused for its terms that search inside every event"}}},
        "Event": EVENT,
        "SearchResult": {"type": "object", "required": ["events", "next_cursor", "took_ms", "query", "warnings"],
                         "properties": {
                             "warnings": WARNINGS,
                             "events": {"type": "array", "items": _ref("Event")},
                             "next_cursor": {"type": "string", "nullable": True},
                             "took_ms": {"type": "number"},
                             "query": {"type": "object", "required": ["kql", "sentence"], "properties": {
                                 "kql": {"type": "string"}, "sentence": {"type": "string"}}}}},
        "Histogram": {"type": "object", "required": ["interval_ms", "from", "to", "total", "buckets", "warnings"],
                      "properties": {
                          "warnings": WARNINGS,
                          "interval_ms": {"type": "integer", "minimum": 1}, "from": {"type": "integer"},
                          "to": {"type": "integer"}, "total": _COUNT, "took_ms": {"type": "number"},
                          "buckets": {"type": "array", "items": {
                              "type": "object", "required": ["t", "count"], "properties": {
                                  "t": {"type": "integer"}, "count": _COUNT,
                                  "by": {"type": "object", "additionalProperties": _COUNT}}}}}},
        "Top": {"type": "object", "required": ["field", "total", "values", "warnings"], "properties": {
            "warnings": WARNINGS,
            "field": {"type": "string"}, "type": {"type": "string"}, "total": _COUNT,
            "took_ms": {"type": "number"},
            "values": {"type": "array", "items": {"type": "object", "required": ["value", "count"],
                                                   "properties": {"value": {}, "count": _COUNT}}}}},
        "Routes": {"type": "object", "required": ["from", "to", "seconds", "routes", "routes_left_off",
                                                  "services"], "properties": {
            "from": {"type": "integer"}, "to": {"type": "integer"}, "seconds": {"type": "number"},
            "routes": {"type": "array", "items": _ref("RouteRED")},
            "routes_left_off": {**_COUNT, "description": "Routes past `limit`, not listed."},
            "other": _ref("OtherRoutes"),
            "services": {"type": "object", "additionalProperties": _ref("ServiceRED"),
                         "description": "By service: its requests from the gateway's view "
                                        "(labels.upstream) and `logged_requests`, from its own logs."},
            "percentiles": _PERCENTILES, "took_ms": {"type": "number"}}},
        "RouteRED": {"type": "object", "required": ["route", "method", "path", "upstream", *_RED,
                                                     "durations_ignored"],
                     "properties": {
                         "route": {"type": "string", "description": "METHOD /path"},
                         "method": {"type": "string", "nullable": True},
                         "path": {"type": "string", "nullable": True},
                         "upstream": {"type": "string", "nullable": True,
                                      "description": "The service that answered most of its requests; "
                                                     "null when only the gateway answered (404, 503)."},
                         **_RED_PROPS,
                         "durations_ignored": {**_COUNT, "description": "Access logs whose duration no "
                                               "bucket holds (negative, NaN, infinite, > 1e15 ms): left "
                                               "out of the percentiles."}}},
        "OtherRoutes": {"type": "object", "required": ["routes", *_RED[:5]],
                        "description": "The routes past `limit` added up (no percentiles).",
                        "properties": {"routes": _COUNT, **{k: _RED_PROPS[k] for k in _RED[:5]}}},
        "ServiceRED": {"type": "object", "required": [*_RED, "logged_requests"],
                       "properties": {**_RED_PROPS, "logged_requests": _COUNT}},
        "RouteSeries": {"type": "object", "required": ["interval_ms", "from", "to", "buckets", "routes",
                                                       "routes_left_off"], "properties": {
            "interval_ms": {"type": "integer", "minimum": 1}, "from": {"type": "integer"},
            "to": {"type": "integer"}, "took_ms": {"type": "number"}, "routes_left_off": _COUNT,
            "other": _ref("OtherRoutes"),
            "percentiles": _PERCENTILES, "buckets": {"type": "array", "items": {"type": "integer"},
                        "description": "Each bucket's start (epoch ms)."},
            "routes": {"type": "array", "items": {
                "type": "object",
                "required": ["route", "method", "path", "upstream", "requests_total", "requests", "errors",
                             "server_errors", "p95_ms"],
                "properties": {
                    "route": {"type": "string"}, "method": {"type": "string", "nullable": True},
                    "path": {"type": "string", "nullable": True},
                    "upstream": {"type": "string", "nullable": True}, "requests_total": _COUNT,
                    "requests": {"type": "array", "items": _COUNT},
                    "errors": {"type": "array", "items": _COUNT},
                    "server_errors": {"type": "array", "items": _COUNT},
                    "p95_ms": {"type": "array", "items": {"type": "number", "nullable": True}}}}}}},
        "SavedSearch": {"type": "object", "required": ["id", "name", "q", "from", "to", "columns"],
                        "properties": {**_SAVED_BODY["properties"], "id": {"type": "string"},
                                       "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}}},
        "Fields": {"type": "object", "required": ["fields"], "properties": {"fields": {
            "type": "array", "items": {"type": "object", "required": ["name", "type"], "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["keyword", "text", "long", "date", "object"]}}}}}},
        "EventContext": {"type": "object", "required": ["event", "before", "after", "trace"], "properties": {
            "event": _ref("Event"), "before": {"type": "array", "items": _ref("Event")},
            "after": {"type": "array", "items": _ref("Event")},
            "trace": {"type": "array", "items": _ref("Event")}}},
        "Mesh": {"type": "object", "required": ["nodes", "instances"], "properties": {
            "nodes": {"type": "array", "items": {"type": "object", "required": [
                "name", "host", "port", "urls", "requests", "rate_per_s", "errors"], "properties": {
                "name": {"type": "string"}, "host": {}, "port": {},
                "urls": {"type": "array"}, "requests": _COUNT, "rate_per_s": {"type": "number"},
                "errors": _COUNT}}},
            "services": {"type": "object", "additionalProperties": {"type": "object"}},
            "instances": {"type": "array", "items": _ref("Instance")},
            "sinks": {"type": "array", "items": _ref("Sink")},
            "from": {"type": "integer"}, "to": {"type": "integer"}}},
        "Instance": INSTANCE,
        "Sink": {"type": "object", "description": "A forwarding sink of one worker "
                 "(docs/elasticsearch.md): how far behind the store it is, and its counts.",
                 "required": ["sink", "worker", "lag_events", "lag_seconds"], "properties": {
                     "sink": {"type": "string"}, "worker": {"type": "integer"},
                     "lag_events": _COUNT, "lag_seconds": {"type": "number"},
                     **{k: _COUNT for k in ("sent", "deadlettered", "retries", "errors")}}},
        "Stats": {"type": "object", "required": ["events", "bytes", "segments", "from", "to", "services",
                                                 "shippers"], "properties": {
            "events": _COUNT, "bytes": _COUNT, "segments": _COUNT,
            "from": {"type": "integer", "nullable": True}, "to": {"type": "integer", "nullable": True},
            "services": {"type": "object", "additionalProperties": _COUNT},
            "shippers": {"type": "array", "items": {"type": "object"}},
            "sinks": {"type": "array", "items": _ref("Sink")},
            "quarantine": {"type": "object", "description": "Damaged bytes set aside "
                           "(docs/durability.md): files and bytes in quarantine/, damaged lines "
                           "recovery skipped, unreadable Parquet files and their events.",
                           "properties": {k: _COUNT for k in (
                               "files", "bytes", "damaged_lines", "damaged_parquet_files",
                               "damaged_parquet_events")}}}},
        "IngestResult": {"type": "object", "required": ["accepted", "rejected", "errors"], "properties": {
            "accepted": _COUNT, "rejected": _COUNT,
            "errors": {"type": "array", "items": {"type": "object"}}}},
    }},
}


def query_names(path: str, method: str) -> frozenset[str]:
    """The query parameters ``method`` on ``path`` takes, as described above: the API refuses
    any other (http/params.check_names), so this description and the handlers cannot drift."""
    op = OPENAPI["paths"][path][method.lower()]
    return frozenset(p["name"] for p in op.get("parameters", ()) if p["in"] == "query")
