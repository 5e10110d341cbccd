"""HTTP ingest: ``POST /api/v1/logs`` with NDJSON or a JSON array, for any program.

Each line is judged alone: a bad line is reported with its number and the
reason, the good ones are stored; the request fails (400) only when no line
could be used (VictoriaLogs' rule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ..event import Event
from .common import (
    MAX_DEPTH,
    MAX_TIMESTAMP_MS,
    Rejected,
    apply_extra,
    check_timestamp,
    depth,
    flatten_ecs,
    now_ms,
)

MAX_ERRORS_REPORTED = 20


def parse_timestamp(value: Any) -> int:
    """Epoch ms from an int/float (ms) or an ISO-8601 string; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("@timestamp must be epoch milliseconds or ISO-8601")
    if isinstance(value, int):
        return check_timestamp(value)
    if isinstance(value, float):  # orjson reads no NaN or infinity
        if not 0 <= value <= MAX_TIMESTAMP_MS:
            raise Rejected("bad_timestamp", f"@timestamp {value!r} is not epoch milliseconds "
                                            "between 1970 and 9999")
        return check_timestamp(int(value))
    if isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            raise ValueError(f"@timestamp {value!r} has no timezone; add Z or +00:00")
        return check_timestamp(int(dt.timestamp() * 1000))
    raise ValueError("@timestamp must be epoch milliseconds or ISO-8601")


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


def parse_body(body: bytes) -> tuple[list[Event], list[dict]]:
    """Body -> (events, errors). JSON array or NDJSON, decided by the first byte."""
    received = now_ms()
    lines: list[Event] = []
    errors: list[dict] = []
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            return [], [{"line": 1, "error": f"cannot parse JSON array: {exc}"}]
        numbered: list[tuple[int, Any]] = list(enumerate(items, 1))
    else:
        numbered = []
        for no, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                numbered.append((no, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                errors.append({"line": no, "error": f"cannot parse line: {exc}"})
    deep = stripped.count(b"[") + stripped.count(b"{") >= MAX_DEPTH  # else no object can be
    for no, obj in numbered:
        try:
            lines.append(record_event(obj, received, deep=deep))
        except (ValueError, KeyError, TypeError) as exc:
            errors.append({"line": no, "error": str(exc)})
    errors.sort(key=lambda e: e["line"])  # parse errors and event errors were found in two passes
    return lines, errors
