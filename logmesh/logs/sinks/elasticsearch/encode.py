"""Stored event line -> ``_bulk`` action: deterministic ``_id``, ``create``, bounded fields.

Stored events already carry ECS dotted names (logs/event.py), so a document
is the stored object itself with two adjustments that keep it indexable by
the template (template.py):

* ``params`` / ``labels`` that are not JSON objects (a service may log a
  string or a list) are wrapped as ``{"value": ...}``: a ``flattened`` field
  takes only objects;
* ``_id`` is the event's ``seq`` (unique in the store), and the op is
  ``create``, so a resend after a crash answers 409 instead of making a
  duplicate.
"""

from __future__ import annotations

from typing import Any

import orjson

FREE_FORM_FIELDS = ("params", "labels")  # mapped flattened / flat_object


class BadLine(ValueError):
    """A stored line that is not a JSON object with an integer ``seq``."""


def doc_id(seq: int) -> str:
    return str(seq)


def document(event: dict[str, Any]) -> dict[str, Any]:
    """The ``_source`` for one stored event (the event is changed in place)."""
    for name in FREE_FORM_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, dict):
            event[name] = {"value": value}
    return event


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
        raise BadLine("not an event object with an integer seq")
    return event


def action(event: dict[str, Any], target: str) -> dict[str, Any]:
    """The bulk helpers' action form: ``expand_action`` turns it into header + source."""
    return {"_op_type": "create", "_index": target, "_id": doc_id(event["seq"]),
            "_source": document(event)}
