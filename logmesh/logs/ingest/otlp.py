"""OpenTelemetry logs over HTTP (``POST /v1/logs``): OTLP protobuf or OTLP JSON -> events.

Sans-I/O: a body in, events and the refused records out. Both encodings
walk one shape (resource, scope, record) into one builder, so a field maps
the same way whichever the exporter sends. The protobuf is decoded by the
``opentelemetry-proto`` package's generated classes (upb: the parse is C);
the JSON by orjson, since OTLP JSON writes trace and span ids as hex, not as
protobuf JSON's base64.

Mapping (docs/ingest.md): the resource's ``service.name`` and
``service.instance.id`` set the event's; the scope's name is ``log.logger``;
``severityText`` (or the number's range) is ``log.level``; a string body is
``message`` (any other body its JSON text); ``traceId`` is ``trace.id`` in
hex, the way the gateway's trace view joins on it; ``spanId`` the label
``span.id``; record and resource attributes are labels (a record's wins),
but an attribute with a known ECS name sets that field
(``exception.stacktrace`` is ``error.stack_trace``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from ..event import Event, as_text
from .common import MAX_DEPTH, Rejected, apply_extra, check_timestamp, depth

ExportLogsServiceRequest = logs_service_pb2.ExportLogsServiceRequest
ExportLogsServiceResponse = logs_service_pb2.ExportLogsServiceResponse

# severityNumber ranges of the OTel data model, 1-4 TRACE ... 21-24 FATAL.
_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")
_RENAMED = {"exception.stacktrace": "error.stack_trace", "exception.message": "error.message",
            "exception.type": "error.type"}
_RESOURCE_FIELDS = {"service.name", "service.instance.id"}


class BadRequest(Exception):
    """The body as a whole cannot be read: nothing of it is stored. ``reason`` is the counter's."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Parsed:
    events: list[Event] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> records refused
    first_error: str = ""

    def refuse(self, exc: Rejected) -> None:
        self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
        self.first_error = self.first_error or str(exc)


def level_of(text: str, number: int) -> str | None:
    if text:
        return text.lower()
    if 1 <= number <= 24:
        return _LEVELS[(number - 1) // 4]
    return None


@dataclass
class _Resource:
    """What every record of one resource shares, read once per resource, not per record."""

    service: Any = None
    instance: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # the other attributes: labels

    @classmethod
    def of(cls, attrs: dict[str, Any]) -> _Resource:
        service, instance = attrs.get("service.name"), attrs.get("service.instance.id")
        return cls(service if service is None or isinstance(service, str) else as_text(service),
                   instance if instance is None or isinstance(instance, str) else as_text(instance),
                   {k: v for k, v in attrs.items() if k not in _RESOURCE_FIELDS})


def _event(received: int, res: _Resource, logger: str | None, *, time_ns: int, observed_ns: int,
           level: str | None, body: Any, attrs: dict[str, Any] | None, trace_id: str,
           span_id: str) -> Event:
    ns = time_ns or observed_ns
    ts = check_timestamp(ns // 1_000_000) if ns else received
    ev = Event(timestamp=ts, received_at=received, level=level or "info", logger=logger or None,
               message=body if body is None or isinstance(body, str) else as_text(body),
               service_name=res.service, service_instance=res.instance, trace_id=trace_id or None)
    if attrs or span_id or res.extra:  # most records of most exporters have none of these
        extra = dict(res.extra)
        if attrs:
            for name, value in attrs.items():
                extra[_RENAMED.get(name, name)] = value
        if span_id:
            extra["span.id"] = span_id
        if depth(extra) > MAX_DEPTH:
            raise Rejected("too_deep", f"attributes nested deeper than {MAX_DEPTH} levels")
        apply_extra(ev, extra)
    return ev


# -- protobuf -------------------------------------------------------------------


def _pb_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def parse_protobuf(body: bytes, received: int) -> Parsed:
    """An ``ExportLogsServiceRequest`` -> events; raises :class:`BadRequest` if it is not one."""
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(body)
    except DecodeError as exc:
        raise BadRequest("bad_protobuf", f"cannot parse ExportLogsServiceRequest: {exc}") from None
    out = Parsed()
    levels: dict[tuple[str, int], str | None] = {}
    for rl in req.resource_logs:
        res = _Resource.of(_pb_attrs(rl.resource.attributes))
        for sl in rl.scope_logs:
            logger = sl.scope.name
            for rec in sl.log_records:
                key = (rec.severity_text, rec.severity_number)
                level = levels.get(key)
                if level is None:
                    level = levels[key] = level_of(*key)
                body = rec.body
                kind = body.WhichOneof("value")
                try:
                    out.events.append(_event(
                        received, res, logger, time_ns=rec.time_unix_nano,
                        observed_ns=rec.observed_time_unix_nano, level=level,
                        body=body.string_value if kind == "string_value" else _pb_value(body),
                        attrs=_pb_attrs(rec.attributes) if len(rec.attributes) else None,
                        trace_id=rec.trace_id.hex(), span_id=rec.span_id.hex()))
                except Rejected as exc:
                    out.refuse(exc)
    return out


# -- JSON -----------------------------------------------------------------------


def _json_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for kind, inner in v.items():
        if kind == "stringValue" or kind == "boolValue" or kind == "doubleValue":
            return inner
        if kind == "intValue":
            return int(inner)  # int64 is a string in OTLP JSON
        if kind == "kvlistValue":
            return _json_attrs((inner or {}).get("values") or [])
        if kind == "arrayValue":
            return [_json_value(x) for x in (inner or {}).get("values") or []]
        if kind == "bytesValue":
            return inner
    return None


def _json_attrs(kvs: Any) -> dict[str, Any]:
    if not isinstance(kvs, list):
        raise Rejected("bad_field", "attributes must be a list of {key, value}")
    return {kv["key"]: _json_value(kv.get("value")) for kv in kvs if isinstance(kv, dict) and "key" in kv}


def _hex_id(value: Any, size: int, name: str) -> str:
    if not value:
        return ""
    if not isinstance(value, str) or len(value) != size or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise Rejected("bad_field", f"{name} must be {size} hex digits")
    return value.lower()


def parse_json(body: bytes, received: int) -> Parsed:
    """OTLP JSON (protobuf's JSON mapping, ids in hex) -> events."""
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("bad_json", f"cannot parse JSON: {exc}") from None
    if not isinstance(req, dict):
        raise BadRequest("bad_json", "expected an ExportLogsServiceRequest object")
    out = Parsed()
    for rl in _list(req.get("resourceLogs")):
        try:
            res = _Resource.of(_json_attrs(((rl.get("resource") or {}).get("attributes")) or []))
        except (Rejected, AttributeError, TypeError) as exc:
            raise BadRequest("bad_json", f"resource: {exc}") from None
        for sl in _list(rl.get("scopeLogs")):
            logger = (sl.get("scope") or {}).get("name") if isinstance(sl, dict) else None
            for rec in _list(sl.get("logRecords") if isinstance(sl, dict) else None):
                try:
                    if not isinstance(rec, dict):
                        raise Rejected("bad_field", "a log record must be an object")
                    attrs = rec.get("attributes")
                    out.events.append(_event(
                        received, res, logger if isinstance(logger, str) else None,
                        time_ns=int(rec.get("timeUnixNano") or 0),
                        observed_ns=int(rec.get("observedTimeUnixNano") or 0),
                        level=level_of(rec.get("severityText") or "", _severity(rec.get("severityNumber"))),
                        body=_json_value(rec.get("body")), attrs=_json_attrs(attrs) if attrs else None,
                        trace_id=_hex_id(rec.get("traceId"), 32, "traceId"),
                        span_id=_hex_id(rec.get("spanId"), 16, "spanId")))
                except Rejected as exc:
                    out.refuse(exc)
                except (ValueError, TypeError, AttributeError, KeyError) as exc:
                    out.refuse(Rejected("bad_field", str(exc)[:200]))
    return out


def _severity(value: Any) -> int:
    """A severityNumber as OTLP JSON may write it: a number, or the enum's name."""
    if isinstance(value, str) and value.startswith("SEVERITY_NUMBER_"):
        try:
            return logs_pb2.SeverityNumber.Value(value)
        except ValueError:
            raise Rejected("bad_field", f"severityNumber {value[:40]!r} is no severity") from None
    return int(value or 0)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def response_body(parsed: Parsed, protobuf: bool) -> bytes:
    """ExportLogsServiceResponse, with ``partial_success`` when records were refused."""
    refused = sum(parsed.rejected.values())
    if protobuf:
        resp = ExportLogsServiceResponse()
        if refused:
            resp.partial_success.rejected_log_records = refused
            resp.partial_success.error_message = parsed.first_error
        return resp.SerializeToString()
    if not refused:
        return b"{}"
    return orjson.dumps({"partialSuccess": {"rejectedLogRecords": str(refused),
                                            "errorMessage": parsed.first_error}})
