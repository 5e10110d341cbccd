"""JSON lines over TCP (``--jsonl-port``): one JSON object per line, as Vector's ``socket``
sink (``encoding.codec = "json"``, ``framing.method = "newline_delimited"``) and Logstash's
``tcp`` output (``codec => json_lines``) send them.

Each object is read by the HTTP NDJSON path's own decoder
(:func:`logmesh.logs.ingest.http_ndjson.record_event`), so a line means the
same on both. The protocol has no answer: a line is stored by the --fsync
policy like any other, but the sender learns nothing beyond TCP's own
delivery (use ``POST /api/v1/logs`` when it must know).
"""

from __future__ import annotations

import orjson

from ...protocol import loads_exact
from ..event import Event
from .common import Rejected, not_json
from .http_ndjson import record_event


def line_event(line: bytes, received: int, source: tuple[str, int] | None) -> Event:
    """One line -> its event; :class:`Rejected` (reason ``bad_json``, ``not_object``, ...) if not."""
    try:
        obj = loads_exact(line)
    except orjson.JSONDecodeError as exc:
        why = not_json(line, exc, "the line")
        raise Rejected(why.reason, why.detail[:120]) from None
    if not isinstance(obj, dict):
        raise Rejected("not_object", f"expected a JSON object, got {type(obj).__name__}")
    try:
        ev = record_event(obj, received)
    except Rejected:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise Rejected("bad_event", str(exc)[:120]) from None
    if source is not None and ev.source_address is None:
        ev.source_address, ev.source_port = source
    return ev
