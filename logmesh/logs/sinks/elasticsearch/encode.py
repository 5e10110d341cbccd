"""Stored event line -> ``_bulk`` action: deterministic ``_id``, ``create``, bounded fields.

Stored events already carry ECS dotted names (logs/event.py), so a document
is the stored line itself, sent as the bytes it is on disk (no decode and
re-encode: measured with bench/es_sink.py, that halves the sink's CPU per
event). Only two facts are decoded from each line, with msgspec skipping the
rest:

* ``seq`` -> ``_id`` (unique in the store), and the op is ``create``, so a
  resend after a crash answers 409 instead of making a duplicate;
* whether ``params`` / ``labels`` are JSON objects: a ``flattened`` field
  takes only objects, so the rare line where a service logged a string or a
  list there is re-encoded with it wrapped as ``{"value": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from ...event import derive_request

FREE_FORM_FIELDS = ("params", "labels")  # mapped flattened / flat_object


class BadLine(ValueError):
    """A stored line that is not a JSON object with an integer ``seq``."""


class _Head(msgspec.Struct):
    seq: int
    received_at: Any = None
    timestamp: Any = msgspec.field(default=None, name="@timestamp")
    params: msgspec.Raw = msgspec.Raw(b"")
    labels: msgspec.Raw = msgspec.Raw(b"")
    method: Any = msgspec.field(default=None, name="http.request.method")
    path: Any = msgspec.field(default=None, name="url.path")
    key: Any = None
    trace_id: Any = msgspec.field(default=None, name="trace.id")
    message: msgspec.Raw = msgspec.Raw(b"")


_decode_head = msgspec.json.Decoder(_Head).decode


@dataclass
class Encoded:
    seq: int
    received_ms: int | None  # when the logs service got it: lag in seconds
    header: dict[str, Any]  # {"create": {"_index", "_id"}}
    body: bytes  # the document's JSON


def doc_id(seq: int) -> str:
    return str(seq)


def _fits(raw: msgspec.Raw) -> bool:
    """Absent, null or an object: what a flattened field takes as it is."""
    head = bytes(memoryview(raw)[:1])
    return head in (b"", b"{") or bytes(raw) == b"null"


def document(event: dict[str, Any]) -> dict[str, Any]:
    """The ``_source`` for one stored event whose free-form fields need wrapping."""
    for name in FREE_FORM_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, dict):
            event[name] = {"value": value}
    return event


def encode_line(line: bytes, target: str) -> Encoded:
    """One stored line (without its newline) -> its bulk action; raises BadLine."""
    try:
        head = _decode_head(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadLine(f"not an event object with an integer seq: {exc}") from None
    body = line
    if head.method is None and head.path is None and memoryview(head.message)[:2] == b'"{':
        # a book packet stored unparsed (ingest/book_block.py): send the request's fields too
        if not head.params and head.key is None and head.trace_id is None and _fits(head.labels):
            # none of them on the line yet: append them, leave the stored bytes as they are
            fields = derive_request({"message": orjson.loads(memoryview(head.message))})
            del fields["message"]
            if fields:
                body = line[:-1] + b"," + orjson.dumps(document(fields))[1:]
        else:
            body = orjson.dumps(document(derive_request(orjson.loads(line))))
    elif not (_fits(head.params) and _fits(head.labels)):
        body = orjson.dumps(document(orjson.loads(line)))
    received = head.received_at if isinstance(head.received_at, int) else head.timestamp
    return Encoded(head.seq, received if isinstance(received, int) else None,
                   {"create": {"_index": target, "_id": doc_id(head.seq)}}, body)
