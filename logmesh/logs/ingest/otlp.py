"""OpenTelemetry logs over HTTP (``POST /v1/logs``): OTLP protobuf (here) or OTLP JSON
(otlp_json.py) -> stored lines.

Sans-I/O: a body in, the stored lines (line_block.py, seqs given when stored)
and the refused records out. Both encodings walk one shape (resource, scope,
record) into one of two builders, so a field maps the same way whichever the
exporter sends: :func:`add_run`, a scope's records as columns (one run), for
the usual scope (string bodies, no record attributes, the same fields set on
every record), and :func:`otlp_event`, an Event per record, for any other.
The protobuf is parsed by the ``opentelemetry-proto`` package's generated
classes (upb: the parse is C) and read as columns (otlp_columns.py).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import Any

import msgspec
import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from ..event import Event, as_text
from . import otlp_columns
from .common import MAX_DEPTH, MAX_TIMESTAMP_MS, Rejected, apply_extra, depth
from .field_limits import MAX_FIELDS
from .line_block import LineBlock

ExportLogsServiceRequest = logs_service_pb2.ExportLogsServiceRequest
ExportLogsServiceResponse = logs_service_pb2.ExportLogsServiceResponse
_encode = msgspec.json.encode

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


# The deepest body or attribute value, in AnyValue levels ({"stringValue": "x"} is 1, an
# array of it 2), in either encoding: a body with a deeper one is refused whole (400,
# too_deep). The protobuf's parser (upb) stops at 100 nested messages, and an attribute's
# key-value lists cost three a level (KeyValueList, KeyValue, AnyValue) below the six above
# it, so 32 is the most it reads in every place a value goes; arrays in a body reached 49,
# and the JSON encoding read 100 and more, refusing past that per record or by orjson's words.
MAX_VALUE_DEPTH = 32


def too_deep() -> BadRequest:
    """The one refusal of a value nested past MAX_VALUE_DEPTH, whichever the encoding."""
    return BadRequest("too_deep", f"a body or attribute value is nested deeper than "
                                  f"{MAX_VALUE_DEPTH} levels (arrays and key-value lists)")


@dataclass
class Parsed:
    block: LineBlock = field(default_factory=LineBlock)  # the stored lines, seqs to be given
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
class Resource:
    """What every record of one resource shares, read once per resource, not per record."""

    service: Any = None
    instance: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # the other attributes: labels

    @classmethod
    def of(cls, attrs: dict[str, Any]) -> Resource:
        service, instance = attrs.get("service.name"), attrs.get("service.instance.id")
        return cls(service if service is None or isinstance(service, str) else as_text(service),
                   instance if instance is None or isinstance(instance, str) else as_text(instance),
                   {k: v for k, v in attrs.items() if k not in _RESOURCE_FIELDS})

    def labels(self) -> dict[str, Any] | None:
        """The resource's other attributes as every record's labels ({}: none), or None when
        one of them is an ECS name (it sets a field), too deep, or ``span.id``: then the
        records take the per-record path, where ``apply_extra`` is the rule."""
        if not self.extra:
            return {}
        ev = Event(timestamp=0)
        try:
            apply_extra(ev, self.extra)
        except Rejected:
            return None
        if ev.labels is None or list(ev.labels) != list(self.extra) or "span.id" in ev.labels \
                or "labels" in ev.labels or depth(ev.labels) > MAX_DEPTH or ev != Event(
                    timestamp=0, labels=ev.labels):
            return None
        return ev.labels


def add_run(out: Parsed, res: Resource, logger: str | None, received: int, stamps: list[int],
            levels: str | list[str], messages: list, trace_ids: list[str | None] | None,
            span_ids: list[str | None] | None, attrs: tuple[list[str], list[list]] = ([], [])) -> bool:
    """One scope's records as a run (line_block.py); False, and nothing added, if the
    resource's attributes, the records' or a timestamp need the per-record path.
    ``levels``: one for all or one per record; ids in lower-case hex (None: a record without
    one), or None (no record has one); ``attrs``:
    the records' attribute keys and a list of values per key (otlp_columns.attributes)."""
    labels = res.labels()
    if labels is None or min(stamps) < 0 or max(stamps) > MAX_TIMESTAMP_MS:
        return False
    if attrs[0]:
        label_col = _attribute_labels(labels, *attrs, span_ids)
        if label_col is None:
            return False
    elif span_ids is not None:  # {...the resource's, "span.id": id}, as the JSON text Event makes
        head = _encode({**labels, "span.id": ""})[:-2]  # ends with "span.id":"
        plain = msgspec.Raw(_encode(labels)) if labels else None  # a record without a span
        label_col: Any = [msgspec.Raw(head + s.encode() + b'"}') if s is not None else plain
                          for s in span_ids]
    else:
        label_col = msgspec.Raw(_encode(labels)) if labels else None
    out.block.add_run(stamps, received_at=received, service_name=res.service,
                      service_instance=res.instance, level=levels, logger=logger or None,
                      message=messages, trace_id=trace_ids, labels=label_col)
    return True


def _attribute_labels(labels: dict[str, Any], keys: list[str], values: list[list],
                      span_ids: list[str | None] | None) -> list[dict[str, Any]] | None:
    """Each record's labels: the resource's, its attributes (renamed as :func:`otlp_event`
    renames them), its ``span.id``, made by ``map`` (C); None when a key would set a field
    (an ECS name: ``apply_extra`` is the rule, on the per-record path) or meets another."""
    names = [_RENAMED.get(key, key) for key in keys]
    if len(labels) + len(names) >= MAX_FIELDS:  # apply_extra folds them, on the per-record path
        return None
    ev = Event(timestamp=0)
    try:
        apply_extra(ev, dict.fromkeys(names, ""))
    except Rejected:
        return None
    if ev != Event(timestamp=0, labels=ev.labels) or list(ev.labels or ()) != names or \
            "span.id" in names or "labels" in names or not labels.keys().isdisjoint(names):
        return None
    columns: list[Any] = [*map(repeat, labels.values()), *values]
    names = [*labels, *names]
    if span_ids is not None:
        columns.append(span_ids)
        names.append("span.id")
    rows = list(map(dict, map(zip, repeat(names), zip(*columns, strict=False))))  # repeat()s: endless
    if span_ids is not None and None in span_ids:  # records without a span have no span.id
        for row in rows:
            if row["span.id"] is None:
                del row["span.id"]
    return rows


def level_pieces(keys: list, level: Callable[[Any], str | None]) -> str | list[str] | None:
    """The ``log.level`` of each record from its severity ``keys`` (``level`` of a key; None:
    info), worked out once per distinct key; None if a key is no severity (Rejected)."""
    try:
        if keys.count(keys[0]) == len(keys):  # the usual body: one severity (no set's hashing)
            return level(keys[0]) or "info"
        table = {k: level(k) or "info" for k in set(keys)}
    except Rejected:
        return None
    if len(table) == 1:
        return table.popitem()[1]
    return list(map(table.__getitem__, keys))


def otlp_event(received: int, res: Resource, logger: str | None, *, time_ns: int, observed_ns: int,
           level: str | None, body: Any, attrs: dict[str, Any] | None, trace_id: str,
           span_id: str) -> Event:
    ns = time_ns or observed_ns
    ts = ns // 1_000_000 if ns else received
    if not 0 <= ts <= MAX_TIMESTAMP_MS:  # in the field and unit the client sent, not ours
        raise Rejected("bad_timestamp", f"{'timeUnixNano' if time_ns else 'observedTimeUnixNano'} "
                                        f"{str(ns)[:40]} is not epoch nanoseconds between 1970 and 9999")
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
        kinds = set(map(type, extra.values()))  # walked only when a value nests (a third of
        if (dict in kinds or list in kinds) and depth(extra) > MAX_DEPTH:  # the SDK's cost)
            raise Rejected("too_deep", f"attributes nested deeper than {MAX_DEPTH} levels")
        apply_extra(ev, extra)
    return ev


# -- protobuf -------------------------------------------------------------------


def _pb_value(v: Any, level: int = 1) -> Any:
    if level > MAX_VALUE_DEPTH:
        raise too_deep()
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value, level + 1) for kv in v.kvlist_value.values}
    if kind == "array_value":
        return [_pb_value(x, level + 1) for x in v.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def parse_protobuf(body: bytes, received: int) -> Parsed:
    """An ``ExportLogsServiceRequest`` -> stored lines; raises :class:`BadRequest` if it is not one.

    The generated classes parse the body (so what they refuse is refused) and give the
    resources, scopes and record counts; each scope's records are read as columns from a
    parse of what they write back (otlp_columns.py) and stored as one run. A scope the
    columns do not cover (a body that is not a string, attributes or fields on some records
    only...) is walked a record at a time.
    """
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(body)
    except DecodeError as exc:
        if "MaxDepth" in str(exc):  # upb: "Exceeded upb_DecodeOptions_MaxDepth"
            raise too_deep() from None
        raise BadRequest("bad_protobuf", f"cannot parse ExportLogsServiceRequest: {exc}") from None
    out = Parsed()
    columns = views = None  # the column view and the others, parsed once a scope has records
    levels: dict[tuple[str, int], str | None] = {}
    for i, rl in enumerate(req.resource_logs):
        res = Resource.of(_pb_attrs(rl.resource.attributes))
        for j, sl in enumerate(rl.scope_logs):
            n = len(sl.log_records)
            if not n:
                continue
            logger = sl.scope.name
            if columns is None:
                canonical = otlp_columns.canonical(req)
                columns, views = otlp_columns.parse(canonical) or False, _Views(canonical)
            if columns and _pb_run(out, res, logger, received, n,
                                   columns.resource_logs[i].scope_logs[j].log_records, views, i, j):
                continue
            events = []
            for rec in sl.log_records:
                key = (rec.severity_text, rec.severity_number)
                level = levels.get(key)
                if level is None:
                    level = levels[key] = level_of(*key)
                body_value = rec.body
                kind = body_value.WhichOneof("value")
                try:
                    events.append(otlp_event(
                        received, res, logger, time_ns=rec.time_unix_nano,
                        observed_ns=rec.observed_time_unix_nano, level=level,
                        body=body_value.string_value if kind == "string_value" else _pb_value(body_value),
                        attrs=_pb_attrs(rec.attributes) if len(rec.attributes) else None,
                        trace_id=rec.trace_id.hex(), span_id=rec.span_id.hex()))
                except Rejected as exc:
                    out.refuse(exc)
            out.block.add_events(events)
    return out


class _Views:
    """The other views of a body (otlp_columns.py), each parsed the first time it is asked."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.views: dict[bool, Any] = {}

    def _view(self, kinds: bool) -> Any:
        view = self.views.get(kinds)
        if view is None:
            view = self.views[kinds] = otlp_columns.parse_view(self.body, kinds) or False
        return view

    def kinds(self, i: int, j: int) -> list[bytes] | None:
        view = self._view(True)
        return list(view.resource_logs[i].scope_logs[j].log_records.attributes.value) if view else None

    def records(self, i: int, j: int) -> list[bytes] | None:
        view = self._view(False)
        return list(view.resource_logs[i].scope_logs[j].log_records) if view else None


def _pb_run(out: Parsed, res: Resource, logger: str, received: int, n: int, recs: Any,
            views: _Views, i: int, j: int) -> bool:
    """Scope ``j`` of resource ``i``: its ``n`` records from their columns as one run, if
    they fit one."""
    if not otlp_columns.plain_bodies(recs, n):
        return False
    records = partial(views.records, i, j)
    attrs = otlp_columns.attributes(recs, n, partial(views.kinds, i, j), records)
    if attrs is None:
        return False
    times = otlp_columns.stamps(recs, n)
    texts, numbers = recs.severity_text, recs.severity_number
    if len(texts) == n:
        levels = level_pieces(list(texts), str.lower)
    elif not texts and len(numbers) in (0, n):
        levels = level_pieces(list(numbers), lambda num: level_of("", num)) if numbers else "info"
    else:
        return False
    traces = otlp_columns.hex_ids(recs.trace_id, n, otlp_columns.TRACE_ID, records)
    spans = otlp_columns.hex_ids(recs.span_id, n, otlp_columns.SPAN_ID, records)
    if times is None or levels is None or traces is False or spans is False:
        return False
    stamps = [ns // 1_000_000 for ns in times] if times else [received] * n
    return add_run(out, res, logger, received, stamps, levels, list(recs.body.string_value),
                   traces, spans, attrs)


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
