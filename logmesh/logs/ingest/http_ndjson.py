"""HTTP ingest: ``POST /api/v1/logs`` with NDJSON or a JSON array, for any program.

Each line is judged alone: a bad line is reported with its number and the
reason, the good ones are stored; the request fails (400) only when no line
could be used (VictoriaLogs' rule).
"""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any

import msgspec
import orjson

from ...protocol import loads_exact, wide_digits
from ..event import Event
from .common import (
    MAX_DEPTH,
    MAX_TIMESTAMP_MS,
    Rejected,
    apply_extra,
    check_timestamp,
    depth,
    flatten_ecs,
    not_json,
    now_ms,
)
from .line_block import json_strings

MAX_ERRORS_REPORTED = 20
_Status = Annotated[int, msgspec.Meta(ge=0, le=999)]
_Millis = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMESTAMP_MS)]
# FlatEvent's "no labels": omit_defaults omits a field whose value *is* its default object, and
# another Raw(b"") would be written as `"labels":}`, a line no reader can parse
NO_LABELS = msgspec.Raw(b"")


class FlatEvent(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, gc=False):
    """A document of the ECS names :func:`record_event` maps onto columns, and nothing else.

    Positional (no ``kw_only``): :func:`ecs_events` builds one per document, and keyword
    arguments cost as much as the rest of that loop.

    Bodies whose documents all fit are decoded by one ``decode_lines`` call (C) and stored as
    these structs, which encode to the same line an :class:`Event` would; any other body takes
    the per-document path. ``seq`` and ``received_at`` are read only to be overwritten, as
    :func:`record_event` drops them; ``labels`` is set by callers (es_bulk's index, as JSON
    text), and a document that sends it goes the per-document way.
    """

    seq: int = 0
    # RFC 3339 parsed by msgspec (C); absent: None, the time received; a null, or any other
    # string, does not decode, and record_event refuses it or reads it
    timestamp: _Millis | datetime = msgspec.field(default=None, name="@timestamp")  # type: ignore[assignment]
    received_at: int = 0
    service_name: str | None = msgspec.field(default=None, name="service.name")
    method: str | None = msgspec.field(default=None, name="http.request.method")
    path: str | None = msgspec.field(default=None, name="url.path")
    status: _Status | None = msgspec.field(default=None, name="http.response.status_code")
    level: str | None = msgspec.field(default=None, name="log.level")
    logger: str | None = msgspec.field(default=None, name="log.logger")
    # the JSON string as it came (Raw: not made a str, copied into the line as is), checked by
    # flat_events; ecs_events sets a str here (either encodes the same JSON string)
    message: msgspec.Raw = msgspec.Raw(b"")
    stack_trace: str | None = msgspec.field(default=None, name="error.stack_trace")
    trace_id: str | None = msgspec.field(default=None, name="trace.id")
    # Raw, not a dict: a struct holding no container stays out of the garbage collector's
    # lists, and a body's 30,000 tracked structs made every collection slower (ES bulk cost
    # twice the CPU of NDJSON per event until this); absent (NO_LABELS itself), it is omitted
    labels: msgspec.Raw = NO_LABELS


_flat_lines = msgspec.json.Decoder(FlatEvent).decode_lines
_message = attrgetter("message")



def flat_events(docs: bytes | memoryview, received: int,
                labels: msgspec.Raw | None = None) -> list[FlatEvent] | None:
    """Every line of ``docs`` as a :class:`FlatEvent`, or None if any line does not fit one;
    ``labels`` (a labels object's JSON text: es_bulk's index) given to each, in the same pass.

    What the per-document path would refuse (a document without a message, a bad
    timestamp) also gives None, so that path reports it with its line number.
    """
    try:
        events = _flat_lines(docs)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    # messages kept as they came (a str each, decoded and encoded again, cost 11 of the 35 ms a
    # 30,000-document bulk body took to parse and encode): checked in C passes instead, as
    # OTLP JSON's and Loki's are; absent (empty), null or not a string: the per-document path
    messages = list(map(_message, events))
    if messages and not json_strings(messages):
        return None
    for ev in events:
        ev.received_at = received
        ts = ev.timestamp
        if ts is None:
            ev.timestamp = received
        elif ts.__class__ is not int:  # a datetime
            if ts.tzinfo is None:
                return None
            ts = ev.timestamp = int(ts.timestamp() * 1000)  # parse_timestamp's arithmetic
            if not 0 <= ts <= MAX_TIMESTAMP_MS:
                return None
        if ev.labels:
            return None
        if labels is not None:
            ev.labels = labels  # one Raw for all: the encoder copies its bytes into each line
        if ev.level is None:
            ev.level = "info"
    return events


# -- nested ECS documents (Filebeat's shape) in one C pass -----------------------------------
# Each object takes exactly the leaves record_event maps onto a column; a null where
# record_event would store something else, an empty inner object (a label there), a number
# where it wants text or any other leaf makes the document fail to decode, so its body
# takes the per-document path, which knows every rule. Absent objects are these defaults.


class _Service(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str | None = None


class _Log(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: str = "info"  # record_event's default; a null (no level) is not a str: refused here
    logger: str | None = None
    # labels, as Filebeat sends them: log.file.* (kept as sent) and log.offset (absent: None;
    # a null is not an int, refused here)
    file: msgspec.Raw = msgspec.Raw(b"")
    offset: int = None  # type: ignore[assignment]


class _Url(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str | None = None


class _Trace(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str | None = None


class _Error(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    stack_trace: str | None = None


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    method: str | None  # required: {"request": {}} is a label "http.request" for record_event


class _Response(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status_code: _Status | None


class _Http(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    request: _Request = _Request(None)
    response: _Response = _Response(None)


class EcsDocument(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A document of nested ECS objects (``{"service": {"name": ...}, "log": {"level": ...},
    "host": {...}}``, as Filebeat sends) whose leaves all map onto columns, but for the
    objects Filebeat adds (``host``, ``agent``, ``ecs``, ``input``, ``log.file``): their JSON
    is kept as sent and made into labels once per distinct value in a body."""

    timestamp: _Millis | datetime = msgspec.field(default=None, name="@timestamp")  # type: ignore[assignment]
    message: str
    service: _Service = _Service()
    log: _Log = _Log()
    http: _Http = _Http()
    url: _Url = _Url()
    trace: _Trace = _Trace()
    error: _Error = _Error()
    host: msgspec.Raw = msgspec.Raw(b"")
    agent: msgspec.Raw = msgspec.Raw(b"")
    ecs: msgspec.Raw = msgspec.Raw(b"")
    input: msgspec.Raw = msgspec.Raw(b"")


_ecs_lines = msgspec.json.Decoder(EcsDocument).decode_lines


def ecs_events(docs: bytes | memoryview, received: int,
               labels: dict[str, Any] | None = None) -> list[FlatEvent] | None:
    """Every line of ``docs`` as an :class:`EcsDocument`, stored as the :class:`FlatEvent`
    record_event's line equals; ``labels`` are added to each (es_bulk's index). None if any
    line does not fit, or would be refused: the per-document path then says why, by line."""
    try:
        decoded = _ecs_lines(docs)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    by_parts: dict[tuple[bytes, ...], bytes] = {}
    last_parts: tuple | None = None
    tags = NO_LABELS
    after = b""  # what follows log.offset in the labels: ",<the others>}"
    out: list[FlatEvent] = []
    append = out.append
    try:
        for d in decoded:
            ts = d.timestamp
            if ts is None:
                ts = received
            elif ts.__class__ is not int:  # a datetime, parsed by msgspec (RFC 3339)
                if ts.tzinfo is None:
                    return None
                ts = int(ts.timestamp() * 1000)  # parse_timestamp's arithmetic
                if not 0 <= ts <= MAX_TIMESTAMP_MS:
                    return None
            lg = d.log
            parts = (d.host, d.agent, d.ecs, d.input, lg.file)
            if parts != last_parts:  # a body's documents mostly come from one host and file
                key = tuple(map(bytes, parts))
                members = by_parts.get(key)
                if members is None:
                    members = by_parts[key] = _label_members(key, labels)
                tags = msgspec.Raw(b"{%s}" % members) if members else NO_LABELS
                after = b",%s}" % members if members else b"}"
                last_parts = parts
            http = d.http
            # positional (FlatEvent's field order): keywords cost twice as much here
            append(FlatEvent(0, ts, received, d.service.name, http.request.method, d.url.path,
                             http.response.status_code, lg.level, lg.logger, d.message,
                             d.error.stack_trace, d.trace.id,
                             tags if lg.offset is None else
                             msgspec.Raw(b'{"log.offset":%d%s' % (lg.offset, after))))
    except (ValueError, TypeError):  # a label no reader could store (Rejected: too deep)
        return None
    return out


def _label_members(parts: tuple[bytes, ...], extra: dict[str, Any] | None) -> bytes:
    """The labels record_event makes of these objects as sent (``host``, ``agent``, ``ecs``,
    ``input``, ``log.file``), then ``extra``, as JSON object members (no braces)."""
    host, agent, ecs, input_, file = parts
    doc: dict[str, Any] = {"message": ""}
    for name, raw in (("host", host), ("agent", agent), ("ecs", ecs), ("input", input_)):
        if raw:
            doc[name] = loads_exact(raw)
    if file:
        doc["log"] = {"file": loads_exact(file)}
    tags = record_event(doc, 0).labels or {}
    for name, value in (extra or {}).items():
        tags.setdefault(name, value)
    return orjson.dumps(tags)[1:-1] if tags else b""


def parse_timestamp(value: Any) -> int:
    """Epoch ms from an int/float (ms) or an ISO-8601 string; raises ValueError."""
    if isinstance(value, bool):
        raise Rejected("bad_timestamp", "@timestamp must be epoch milliseconds or ISO-8601")
    if isinstance(value, int):
        return check_timestamp(value)
    if isinstance(value, float):  # orjson reads no NaN or infinity
        if not 0 <= value <= MAX_TIMESTAMP_MS:
            raise Rejected("bad_timestamp", f"@timestamp {value!r} is not epoch milliseconds "
                                            "between 1970 and 9999")
        return check_timestamp(int(value))
    if isinstance(value, str):
        try:  # RFC 3339 as msgspec reads it (ecs_events): digits past the microsecond rounded
            dt = msgspec.convert(value, datetime)
        except msgspec.ValidationError:  # the rest of ISO 8601
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:  # "99999-01-01", "year 0 is out of range", "yesterday"
                raise Rejected("bad_timestamp", f"@timestamp {value[:40]!r} is no ISO-8601 date "
                                                f"between 1970 and 9999 ({exc})") from None
        if dt.tzinfo is None:
            raise Rejected("bad_timestamp", f"@timestamp {value[:40]!r} has no timezone; add Z or +00:00")
        return check_timestamp(int(dt.timestamp() * 1000))
    raise Rejected("bad_timestamp", "@timestamp must be epoch milliseconds or ISO-8601")


def record_event(obj: Any, received: int, *, deep: bool = True) -> Event:
    """One JSON object -> an event; raises ValueError saying what is wrong.

    ``deep`` False: the caller knows the object cannot be nested past MAX_DEPTH.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    original = obj
    if deep and depth(obj) >= MAX_DEPTH:
        raise Rejected("too_deep", f"the event is nested deeper than {MAX_DEPTH} levels")
    obj = flatten_ecs(obj)
    obj = dict(obj) if obj is original else obj
    ts = parse_timestamp(obj.pop("@timestamp")) if "@timestamp" in obj else received
    params = obj.pop("params", None)
    obj.pop("seq", None)  # the store assigns it
    obj.pop("received_at", None)
    ev = Event(timestamp=ts, received_at=received, level="info")
    if params is not None:
        import msgspec

        ev.params = msgspec.Raw(orjson.dumps(params))
    apply_extra(ev, obj)
    if ev.message is None and not obj:
        raise ValueError("empty event: send at least a message")
    return ev


def parse_body(body: bytes) -> tuple[list[Event | FlatEvent], list[dict]]:
    """Body -> (events, errors). JSON array or NDJSON, decided by the first byte; NDJSON of
    flat documents in one C pass (:func:`flat_events`), any other a line at a time."""
    received = now_ms()
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        fast = flat_events(body, received)
        if fast is None:
            fast = ecs_events(body, received)
        if fast is not None:
            return fast, []
    lines: list[Event] = []
    errors: list[dict] = []
    if stripped[:1] == b"[":
        try:
            items = loads_exact(stripped)
        except orjson.JSONDecodeError as exc:
            why = not_json(stripped, exc, "the body")
            return [], [{"line": 1, "error": f"cannot parse JSON array: {why.detail}", "reason": why.reason}]
        deep = stripped.count(b"[") + stripped.count(b"{") >= MAX_DEPTH  # else no object can be
        numbered: list[tuple[int, Any, bool]] = [(no, item, deep) for no, item in enumerate(items, 1)]
    else:
        numbered = []
        read = loads_exact if wide_digits(body) else orjson.loads  # one screen for the body
        for no, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            try:  # a line with fewer brackets than MAX_DEPTH cannot nest that deep: no walk
                numbered.append((no, read(line),
                                 line.count(b"[") + line.count(b"{") >= MAX_DEPTH))
            except orjson.JSONDecodeError as exc:
                why = not_json(line, exc, f"line {no}")
                errors.append({"line": no, "error": f"cannot parse line: {why.detail}", "reason": why.reason})
    for no, obj, deep in numbered:
        try:
            lines.append(record_event(obj, received, deep=deep))
        except (ValueError, KeyError, TypeError) as exc:  # reason: the counters' word (common.Rejected)
            errors.append({"line": no, "error": str(exc), "reason": getattr(exc, "reason", "bad_event")})
    errors.sort(key=lambda e: e["line"])  # parse errors and event errors were found in two passes
    return lines, errors


def event_lines(body: bytes, errors: list[dict], indexes: list[int]) -> list[int]:
    """The body's line (an array's item) of each of ``indexes``, places in the events
    :func:`parse_body` made of ``body`` with these ``errors``: its events are the body's
    non-blank lines (items) in order, less those the errors name. Read again only when an event
    is refused after parsing (too_large), so parsing keeps no number per event."""
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        numbers = range(1, len(loads_exact(stripped)) + 1)
    else:
        numbers = [no for no, line in enumerate(body.split(b"\n"), 1) if line.strip()]
    named = {e["line"] for e in errors}
    kept = [no for no in numbers if no not in named]
    return [kept[i] for i in indexes]
