"""What to do about a bulk answer: a total, pure function from response to action.

Two questions, two functions, both pure and tested against recorded ``_bulk``
JSON (tests/logs/sinks/test_retry.py):

* :func:`classify` — one item of a ``_bulk`` answer that came back (HTTP 200,
  maybe with ``"errors": true``): ``Done``, ``Retry`` or ``DeadLetter``.
* :func:`classify_response` — a request that failed as a whole (no 2xx, or
  no answer at all: status 0): ``Retry`` or ``Split``.

Nothing is ever dropped. ``DeadLetter`` is only for a document Elasticsearch
refused for its *content* (it would be refused again, forever); anything that
may pass later — overload, a node down, a block, missing credentials or
privileges, a missing index — is retried with backoff until it does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Done:
    """Elasticsearch has the document (just created, or already there: 409 on ``create``)."""

    reason: str = "created"


@dataclass(frozen=True)
class Retry:
    """Send it again after a backoff; the answer may change."""

    reason: str


@dataclass(frozen=True)
class DeadLetter:
    """Refused for its content: write it with the reason to the dead-letter file, move on."""

    reason: str


@dataclass(frozen=True)
class Split:
    """The request as a whole was refused (too large, unparseable): send halves.

    A batch of one that is still refused this way is dead-lettered by the sink.
    """

    reason: str


Action = Done | Retry | DeadLetter | Split

# Item-level statuses that a later attempt can pass: overload, timeouts, and
# problems an operator fixes without touching the documents (credentials,
# privileges, a deleted data stream).
_RETRY_ITEM_STATUS = {401: "unauthorized", 403: "forbidden", 404: "index not found",
                      408: "request timeout", 429: "too many requests"}
# Whole-request statuses: same idea; 413 and 400 are about this request's bytes.
_RETRY_REQUEST_STATUS = {0: "no response", 401: "unauthorized (check --es-api-key or "
                         "--es-user/--es-password)", 403: "forbidden (the credentials lack "
                         "the privilege to write to the target)", 404: "not found",
                         408: "request timeout", 409: "conflict", 429: "too many requests"}


def error_reason(error: Any) -> str:
    """``"error type: X, reason: Y"`` (+ the cause) from an ES error object or text."""
    if isinstance(error, Mapping):
        text = f"error type: {error.get('type', '?')}, reason: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, Mapping):
            text += f" (caused by {cause.get('type', '?')}: {cause.get('reason', '')})"
        return text
    return str(error)[:500] if error else ""


def classify(status: int, item: Mapping[str, Any] | None = None) -> Action:
    """One ``_bulk`` item: ``item`` is the object under its op name (``{"_id", "status", ...}``).

    ``status`` is the item's own status (``item["status"]``).
    """
    error = item.get("error") if item else None
    if 200 <= status < 300:
        return Done("created")
    if status == 409:  # `create` of an _id that exists: an earlier attempt got there
        return Done("already indexed")
    if status in _RETRY_ITEM_STATUS:
        return Retry(f"{status} {_RETRY_ITEM_STATUS[status]}: {error_reason(error)}".rstrip(": "))
    if status >= 500 or status < 100:
        return Retry(f"{status}: {error_reason(error)}".rstrip(": "))
    return DeadLetter(error_reason(error) or f"status {status}")


def classify_response(status: int, body: Any = None) -> Action:
    """A ``_bulk`` request that failed as a whole; ``status`` 0 means no answer arrived."""
    error = body.get("error") if isinstance(body, Mapping) else body
    reason = error_reason(error)
    if status == 413:
        return Split("413 request too large" + (f": {reason}" if reason else ""))
    if status == 400:  # a request ES could not parse: find the one document that does it
        return Split(f"400 bad request: {reason}")
    if status in _RETRY_REQUEST_STATUS:  # the status too: an operator searches for "429"
        return Retry((f"{status} " if status else "") + _RETRY_REQUEST_STATUS[status]
                     + (f": {reason}" if reason else ""))
    if status >= 500:
        return Retry(f"{status}" + (f": {reason}" if reason else ""))
    if 200 <= status < 300:  # a 2xx that could not be read as a bulk answer
        return Retry(f"{status} with an unreadable body: {reason}")
    return Retry(f"unexpected status {status}" + (f": {reason}" if reason else ""))


def backoff(attempt: int, initial: float, cap: float,
            rand: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, jittered.

    "Equal jitter": half the step is fixed, half random, so many workers that
    failed together do not come back together, and no wait is near zero.
    """
    step = min(cap, initial * (2 ** min(attempt, 32)))
    return step / 2 + rand(0.0, step / 2)


def deadletter_line(sink: str, at_ms: int, raw: bytes, status: int, reason: str,
                    error: Any = None) -> bytes:
    """One line of the dead-letter file: when, which sink, the answer, and the stored event
    (as JSON when it is, else as text)."""
    event: Any = orjson.Fragment(raw) if raw[:1] == b"{" else raw.decode("utf-8", "replace")
    entry = {"at": at_ms, "sink": sink, "status": status, "reason": reason, "error": error,
             "event": event}
    try:
        return orjson.dumps(entry)
    except (orjson.JSONEncodeError, TypeError):
        entry["event"] = raw.decode("utf-8", "replace")
        return orjson.dumps(entry)
