"""Elasticsearch's single-document API, ``POST /{index}/_doc``, ``PUT|POST /{index}/_doc/{id}``
and ``PUT|POST /{index}/_create/{id}``, as a bulk body of one action (sans-I/O).

Clients that send one document at a time (the Python client's ``index()`` and
``create()``, some shippers) got 404. The request is turned into the one-action bulk
body it means (:func:`bulk_body`), which es_bulk.py parses and http_routes.py stores as
any bulk body -- the same field rules, the same ``_id`` window (es_ids.py: a ``create``
of an ``_id`` stored within it is a 409, an ``index`` a 200 ``updated``, neither stored
again), acked once durable -- and the bulk answer's one item becomes the single-document
answer (:func:`answer`): 201 ``created``, 200 ``updated``, or the item's error with its
status in Elasticsearch's error shape.
"""

from __future__ import annotations

import re

import orjson

from .es_names import invalid_index_reason

# What the single-document answer leaves out of a bulk item (Elasticsearch's own shape)
_ITEM_ONLY = ("status", "error")
_BODY_LINE = re.compile(r"line [12]: ")  # where the bulk parser says the action or document was


class BadDocRequest(Exception):
    """The request as a whole is refused: ``status``, Elasticsearch's ``kind`` and ``reason``;
    ``counted``: the reason in ``logmesh_ingest_rejected_total``."""

    def __init__(self, status: int, kind: str, reason: str, counted: str = "bad_action") -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason, self.counted = status, kind, reason, counted


def action_of(create_route: bool, op_type: str | None, doc_id: str | None) -> str:
    """``create`` or ``index``: ``_create/{id}``, or ``op_type=create`` with an ``_id``."""
    if op_type not in (None, "", "index", "create"):
        raise BadDocRequest(400, "illegal_argument_exception",
                            f"opType must be 'create' or 'index', found: [{op_type[:40]}]")
    if create_route or op_type == "create":
        if doc_id is None:  # Elasticsearch: an auto-generated id is never a conflict to check
            raise BadDocRequest(400, "action_request_validation_exception",
                                "Validation Failed: 1: an id must be provided if version type or "
                                "value are set;")
        return "create"
    return "index"


def bulk_body(action: str, index: str, doc_id: str | None, body: bytes) -> bytes:
    """The bulk body of this one document: its action line, then the document on one line.

    A pretty-printed document is put on one line by turning its line breaks into spaces:
    JSON allows a raw CR or LF only between tokens (inside a string they are escaped), so
    that is exact and the document's bytes are otherwise kept as sent.
    """
    bad_index = invalid_index_reason(index)
    if bad_index is not None:
        raise BadDocRequest(400, "invalid_index_name_exception", bad_index, "bad_index")
    doc = body.strip()
    if not doc:
        raise BadDocRequest(400, "parse_exception", "request body is required", "empty_body")
    if b"\n" in doc or b"\r" in doc:
        doc = doc.replace(b"\r", b" ").replace(b"\n", b" ")
    meta = {"_index": index} if doc_id is None else {"_index": index, "_id": doc_id}
    return orjson.dumps({action: meta}) + b"\n" + doc + b"\n"


def answer(bulk_answer: bytes | bytearray, action: str) -> tuple[int, bytes]:
    """The single-document status and body from the bulk answer of :func:`bulk_body`'s body."""
    item = orjson.loads(bulk_answer)["items"][0][action]
    status = int(item["status"])
    error = item.get("error")
    if error is not None:  # the item's error (its index, shard... too), as Elasticsearch's
        reason = error.get("reason")
        if isinstance(reason, str) and _BODY_LINE.match(reason):  # the bulk body's line: not the client's
            error = {**error, "reason": _BODY_LINE.sub("", reason, count=1)}
        return status, orjson.dumps({"error": {"root_cause": [error], **error}, "status": status})
    return status, orjson.dumps({k: v for k, v in item.items() if k not in _ITEM_ONLY})
