"""OTLP JSON (``POST /v1/logs`` with ``application/json``) -> stored lines, mapped as otlp.py maps.

The usual shape (string bodies, no record attributes) is decoded by msgspec
into structs (C) and stored as runs (``otlp.add_run``), each body as
the JSON literal it came as, checked in one pass; any other scope, or a body
msgspec's structs do not fit, is read by orjson and walked a record at a
time. OTLP JSON writes trace and span ids as hex, not as protobuf JSON's
base64.
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import attrgetter, floordiv
from typing import Any

import msgspec
import orjson
from opentelemetry.proto.logs.v1 import logs_pb2

from ...protocol import loads_exact
from .common import Rejected, not_json
from .line_block import json_strings
from .otlp import (
    MAX_VALUE_DEPTH,
    BadRequest,
    Parsed,
    Resource,
    add_run,
    level_of,
    level_pieces,
    otlp_event,
    too_deep,
)


def _json_value(v: Any, level: int = 1) -> Any:
    if level > MAX_VALUE_DEPTH:
        raise too_deep()
    if not isinstance(v, dict):
        return v
    for kind, inner in v.items():
        if kind == "stringValue" or kind == "boolValue" or kind == "doubleValue":
            return inner
        if kind == "intValue":
            return _int64(inner)
        if kind == "kvlistValue":
            return _json_attrs((inner or {}).get("values") or [], level + 1)
        if kind == "arrayValue":
            return [_json_value(x, level + 1) for x in (inner or {}).get("values") or []]
        if kind == "bytesValue":
            return inner
    return None


def _int64(inner: Any) -> int:
    """An ``intValue`` (int64, a string in OTLP JSON) as an int; past int64 a ValueError, which
    refuses the record (Python's int would keep it, orjson could not write it)."""
    value = int(inner)
    if not -(2 ** 63) <= value < 2 ** 63:
        raise ValueError(f"intValue {str(inner)[:40]} is past int64")
    return value


def _json_attrs(kvs: Any, level: int = 1) -> dict[str, Any]:
    """Attributes (a kvlist's values at ``level``) as a dict."""
    if not isinstance(kvs, list):
        raise Rejected("bad_field", "attributes must be a list of {key, value}")
    return {kv["key"]: _json_value(kv.get("value"), level) for kv in kvs
            if isinstance(kv, dict) and "key" in kv}


def _unreadable(raw: bytes, exc: ValueError, where: str) -> BadRequest:
    """A body orjson cannot read, refused whole: nested past its limit (far past
    MAX_VALUE_DEPTH) is the too_deep of any deep value, anything else in orjson's words."""
    text = str(exc)
    if "depth limit" in text or "ecursion" in text:
        return too_deep()
    why = not_json(raw, exc, where)
    return BadRequest(why.reason, f"cannot parse JSON: {why.detail}")


def _hex_id(value: Any, size: int, name: str) -> str:
    if not value:
        return ""
    if not isinstance(value, str) or len(value) != size or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise Rejected("bad_field", f"{name} must be {size} hex digits")
    return value.lower()


class _JsonBody(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    stringValue: msgspec.Raw = msgspec.Raw(b"")  # the JSON literal, stored as it came


_NO_BODY = _JsonBody()  # a record without a body: its empty stringValue sends it per record


class _JsonRecord(msgspec.Struct, gc=False):
    timeUnixNano: int | str = 0
    observedTimeUnixNano: int | str = 0
    severityNumber: int | str = 0
    severityText: str = ""
    body: _JsonBody | None = _NO_BODY  # None: "body": null
    attributes: tuple[msgspec.Raw, ...] = ()  # a tuple: absent or empty, no object per record
    traceId: str = ""
    spanId: str = ""


class _JsonScopeLogs(msgspec.Struct, gc=False):
    scope: msgspec.Raw = msgspec.Raw(b"null")
    logRecords: list[_JsonRecord] = []


class _JsonResourceLogs(msgspec.Struct, gc=False):
    resource: msgspec.Raw = msgspec.Raw(b"null")
    scopeLogs: list[_JsonScopeLogs] = []


class _JsonRequest(msgspec.Struct):
    """The usual shape of OTLP JSON, decoded by msgspec (C); any other body (a body of another
    kind, a null, a wrong type) is read by orjson and walked a record at a time."""

    resourceLogs: list[_JsonResourceLogs] = []


_json_request = msgspec.json.Decoder(_JsonRequest).decode
_int_array = msgspec.json.Decoder(list[int]).decode
_HEX = re.compile(r"[0-9a-fA-F]*")
_time, _observed, _body = attrgetter("timeUnixNano"), attrgetter("observedTimeUnixNano"), attrgetter("body")
_severity_text, _severity_number = attrgetter("severityText"), attrgetter("severityNumber")
_attributes = attrgetter("attributes")
_trace, _span, _string = attrgetter("traceId"), attrgetter("spanId"), attrgetter("stringValue")


def parse_json(body: bytes, received: int) -> Parsed:
    """OTLP JSON (protobuf's JSON mapping, ids in hex) -> stored lines.

    Scopes of string bodies without attributes are stored as runs, their bodies as
    the JSON literals they came as; any other scope is walked a record at a time (orjson).
    """
    try:
        req = _json_request(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return _parse_json_slow(body, received)
    out = Parsed()
    slow = None  # the body read by orjson, once a scope needs it
    for i, rl in enumerate(req.resourceLogs):
        res = _json_resource(_raw_json(rl.resource))
        for j, sl in enumerate(rl.scopeLogs):
            scope = _raw_json(sl.scope)
            logger = scope.get("name") if isinstance(scope, dict) else None
            logger = logger if isinstance(logger, str) else None
            if not sl.logRecords or _json_run(out, res, logger, received, sl.logRecords):
                continue
            if slow is None:
                try:
                    slow = loads_exact(body)
                except orjson.JSONDecodeError as exc:  # bad UTF-8 in a body: refused whole
                    raise _unreadable(body, exc, "the body") from None
            _json_records(out, res, logger, received, slow["resourceLogs"][i]["scopeLogs"][j]["logRecords"])
    return out


def _raw_json(raw: msgspec.Raw) -> Any:
    """A resource or a scope kept raw by msgspec, which does not check its UTF-8: bad bytes
    there refuse the body whole, as they do in a record (they were a 500)."""
    try:
        return loads_exact(bytes(raw))
    except orjson.JSONDecodeError as exc:
        raise _unreadable(bytes(raw), exc, "a resource or scope") from None


def _json_run(out: Parsed, res: Resource, logger: str | None, received: int, recs: list) -> bool:
    """A scope's records as one run, if they fit one (else False, nothing added)."""
    if any(map(_attributes, recs)):
        return False
    try:
        messages = list(map(_string, map(_body, recs)))
    except AttributeError:  # "body": null
        return False
    if not json_strings(messages):
        return False  # a body without stringValue (an empty Raw), or one that is no string
    try:
        times = _ints(list(map(_time, recs)))
        if 0 in times:  # int(""): ValueError, and the per-record path says so
            times = [t or o for t, o in zip(times, _ints(list(map(_observed, recs))), strict=True)]
    except ValueError:
        return False
    stamps = list(map(floordiv, times, repeat(1_000_000))) if 0 not in times else \
        [t // 1_000_000 if t else received for t in times]
    texts, numbers = list(map(_severity_text, recs)), list(map(_severity_number, recs))
    try:
        for number in set(numbers):  # a name that is no severity refuses its record
            _severity(number)
    except (Rejected, ValueError, TypeError):
        return False
    if "" not in texts:  # the text is the level
        levels = level_pieces(texts, str.lower)
    else:
        levels = level_pieces(list(zip(texts, numbers, strict=True)),
                              lambda k: level_of(k[0], _severity(k[1])))
    traces, spans = _json_ids(list(map(_trace, recs)), 32), _json_ids(list(map(_span, recs)), 16)
    if levels is None or traces is False or spans is False:
        return False
    return add_run(out, res, logger, received, stamps, levels, messages, traces, spans)


def _ints(values: list[int | str]) -> list[int]:
    """``int()`` of each value (a number, or the string of digits OTLP JSON writes an int64
    as), the strings read as one JSON array by msgspec (C); ValueError as ``int()`` raises.

    The strings joined by commas give exactly ``len(values)`` numbers only when no string
    holds a comma, so then each number is one string's; anything else (an int among them,
    a sign or space msgspec reads otherwise) is left to ``int()``."""
    try:
        ints = _int_array("[" + ",".join(values) + "]")  # type: ignore[arg-type]
    except (TypeError, msgspec.DecodeError):
        return list(map(int, values))
    return ints if len(ints) == len(values) else list(map(int, values))


def _json_ids(ids: list[str], size: int) -> list[str | None] | None | bool:
    """Hex ids in lower case (None for a record without one); None if no record has one;
    False if one is no id of ``size`` hex digits."""
    if not any(ids):
        return None
    present = ids if all(ids) else [x for x in ids if x]
    if set(map(len, present)) != {size} or not _HEX.fullmatch("".join(present)):
        return False
    lowered = "\n".join(present).lower().split("\n")  # hex holds no newline
    if present is ids:
        return lowered
    it = iter(lowered)
    return [next(it) if x else None for x in ids]


def _json_resource(resource: Any) -> Resource:
    try:
        return Resource.of(_json_attrs(((resource or {}).get("attributes")) or []))
    except (Rejected, AttributeError, TypeError, ValueError) as exc:  # ValueError: intValue "x"
        raise BadRequest("bad_json", f"resource: {exc}") from None


def _parse_json_slow(body: bytes, received: int) -> Parsed:
    try:
        req = loads_exact(body)
    except orjson.JSONDecodeError as exc:
        raise _unreadable(body, exc, "the body") from None
    if not isinstance(req, dict):
        raise BadRequest("bad_json", "expected an ExportLogsServiceRequest object")
    out = Parsed()
    for rl in _list(req.get("resourceLogs")):
        if not isinstance(rl, dict):
            raise BadRequest("bad_json", "each of resourceLogs must be an object")
        res = _json_resource(rl.get("resource"))
        for sl in _list(rl.get("scopeLogs")):
            if not isinstance(sl, dict):
                raise BadRequest("bad_json", "each of scopeLogs must be an object")
            scope = sl.get("scope")  # as the fast path reads it: no object, no logger
            logger = scope.get("name") if isinstance(scope, dict) else None
            _json_records(out, res, logger if isinstance(logger, str) else None, received,
                          sl.get("logRecords"))
    return out


def _json_records(out: Parsed, res: Resource, logger: str | None, received: int, recs: Any) -> None:
    events = []
    for rec in _list(recs):
        try:
            if not isinstance(rec, dict):
                raise Rejected("bad_field", "a log record must be an object")
            attrs = rec.get("attributes")
            events.append(otlp_event(
                received, res, logger, time_ns=int(rec.get("timeUnixNano") or 0),
                observed_ns=int(rec.get("observedTimeUnixNano") or 0),
                level=level_of(rec.get("severityText") or "", _severity(rec.get("severityNumber"))),
                body=_json_value(rec.get("body")), attrs=_json_attrs(attrs) if attrs else None,
                trace_id=_hex_id(rec.get("traceId"), 32, "traceId"),
                span_id=_hex_id(rec.get("spanId"), 16, "spanId")))
        except Rejected as exc:
            out.refuse(exc)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            out.refuse(Rejected("bad_field", str(exc)[:200]))
    out.block.add_events(events)


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
