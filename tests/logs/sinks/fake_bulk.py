"""The ``_bulk`` request as Elasticsearch reads it, for the fake cluster (fake_es.py).

Parsing is as strict as Elasticsearch's (whole-request errors raise
:class:`BulkFormatError` with its words); documents are checked against the
template's mapping by a msgspec type made from it, so the fake keeps up
with the sink in the benchmark; the answer is cut to ``filter_path``.
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import attrgetter
from typing import Any

import msgspec
import orjson

CONTENT_TYPES = {"application/json", "application/x-ndjson", "application/vnd.elasticsearch+json",
                 "application/vnd.elasticsearch+x-ndjson"}
META_KEYS = {"_index", "_id", "routing", "pipeline", "require_alias", "require_data_stream",
             "if_seq_no", "if_primary_term", "version", "version_type", "dynamic_templates",
             "retry_on_conflict", "_source", "list_executed_pipelines"}
OPS = ("index", "create", "update", "delete")
MAX_ID_BYTES = 512
SIMPLE_ACTION = re.compile(rb'\{"(create|index)":\{"_id":"([^"\\]{1,512})"\}\}')  # parsed without JSON
SHARDS = {"total": 2, "successful": 1, "failed": 0}
REJECTED = {"status": 429, "error": {
    "type": "es_rejected_execution_exception",
    "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
              "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=108, "
              "max_coordinating_and_primary_bytes=107374182]"}}


class BulkFormatError(Exception):
    """A request Elasticsearch refuses as a whole (400), before any document."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class Creates:
    """A body of nothing but ``{"create":{"_id":"..."}}`` actions (the sink's): parsed in C."""

    __slots__ = ("index", "ids", "sources")

    def __init__(self, index: str, ids: list[str], sources: list[bytes]) -> None:
        self.index, self.ids, self.sources = index, ids, sources

    def __len__(self) -> int:
        return len(self.ids)

    def pop(self) -> None:
        self.ids.pop()
        self.sources.pop()

    def ops(self) -> list[Op]:
        return [Op("create", {"_id": i}, self.index, i, s) for i, s in zip(self.ids, self.sources, strict=True)]


class Op:
    __slots__ = ("op", "meta", "index", "id", "source")

    def __init__(self, op: str, meta: dict, index: str, doc_id: str | None, source: bytes | None) -> None:
        self.op, self.meta, self.index, self.id, self.source = op, meta, index, doc_id, source


def _invalid(reason: str) -> BulkFormatError:
    return BulkFormatError("action_request_validation_exception", f"Validation Failed: 1: {reason};")


CREATE_HEAD, CREATE_TAIL = b'{"create":{"_id":"', b'"}}'


def _creates(lines: list[bytes], path_index: str | None) -> Creates | None:
    """The whole body as simple creates, checked with bytes operations over all lines at once."""
    actions, sources = lines[0::2], lines[1::2]
    if not path_index or len(actions) != len(sources) or \
            not all(map(bytes.startswith, actions, repeat(CREATE_HEAD))) or \
            not all(map(bytes.endswith, actions, repeat(CREATE_TAIL))):
        return None
    ids = [a[18:-3] for a in actions]
    joined = b"".join(ids)
    if b'"' in joined or b"\\" in joined or min(map(len, ids)) < 1 or max(map(len, ids)) > MAX_ID_BYTES \
            or min(map(len, sources)) < 1:
        return None
    try:
        return Creates(path_index, joined.decode() and [i.decode() for i in ids], sources)
    except UnicodeDecodeError:
        return None


def bulk_ops(body: bytes, path_index: str | None) -> list[Op] | Creates:
    """The ops of a ``_bulk`` body, or BulkFormatError with what Elasticsearch says."""
    if not body:
        raise BulkFormatError("parse_exception", "request body is required")
    if not body.endswith(b"\n"):
        raise BulkFormatError("illegal_argument_exception",
                              "The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")
    lines.pop()
    creates = _creates(lines, path_index)
    if creates is not None:
        return creates
    ops: list[Op] = []
    i, n = 0, len(lines)
    simple = SIMPLE_ACTION.fullmatch
    while i < n:
        line = lines[i]
        m = simple(line)
        if m is not None:  # the sink's own action lines: no JSON parse needed
            op, doc_id = m.group(1).decode(), m.group(2).decode()
            meta: dict[str, Any] = {"_id": doc_id}
        else:
            op, meta = _action(line, i + 1)
            raw_id = meta.get("_id")
            if raw_id is not None and not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
                raise BulkFormatError("illegal_argument_exception", f"Malformed action/metadata line "
                                      f"[{i + 1}], expected a simple value for field [_id] but found "
                                      f"[{type(raw_id).__name__}]")
            doc_id = None if raw_id is None else str(raw_id)
            if doc_id is not None and not doc_id:
                raise _invalid("if _id is specified it must not be empty")
            if doc_id is not None and len(doc_id.encode()) > MAX_ID_BYTES:
                raise _invalid(f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: "
                               f"{len(doc_id.encode())}")
        index = meta.get("_index") or path_index
        if not index:
            raise _invalid("index is missing")
        if op == "delete":
            ops.append(Op(op, meta, index, doc_id, None))
            i += 1
            continue
        if i + 1 >= n:
            raise _invalid(f"no document after the action line [{i + 1}]")
        ops.append(Op(op, meta, index, doc_id, lines[i + 1]))
        i += 2
    if not ops:
        raise _invalid("no requests added")
    return ops


def _action(line: bytes, number: int) -> tuple[str, dict]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BulkFormatError("illegal_argument_exception", f"Malformed action/metadata line "
                              f"[{number}], expected START_OBJECT or END_OBJECT but found "
                              f"[{line[:20]!r}]") from None
    if not isinstance(header, dict) or len(header) != 1:
        raise BulkFormatError("illegal_argument_exception", f"Malformed action/metadata line "
                              f"[{number}], expected one field, the action")
    (op, meta), = header.items()
    if op not in OPS:
        raise BulkFormatError("illegal_argument_exception", f"Malformed action/metadata line "
                              f"[{number}], expected field [create], [delete], [index] or [update] "
                              f"but found [{op}]")
    if not isinstance(meta, dict):
        raise BulkFormatError("illegal_argument_exception", f"Malformed action/metadata line "
                              f"[{number}], expected START_OBJECT but found [{type(meta).__name__}]")
    for key in meta:
        if key not in META_KEYS:
            raise BulkFormatError("illegal_argument_exception", f"Action/metadata line [{number}] "
                                  f"contains an unknown parameter [{key}]")
    return op, meta


def item_fields(spec: str | None) -> set[str] | None:
    """The item fields ``filter_path`` keeps (``items.*.<field>``); None: all of them."""
    if not spec:
        return None
    paths = {p.strip() for p in spec.split(",")}
    if "items" in paths:
        return None
    return {p[len("items.*."):] for p in paths if p.startswith("items.*.")}


def filter_path(answer: dict[str, Any], spec: str | None) -> dict[str, Any]:
    """Elasticsearch's ``filter_path`` for the bulk answer: ``errors``, ``took``, ``items``
    and ``items.*.<field>`` (the items are already cut to those fields: :func:`item_fields`)."""
    if not spec:
        return answer
    paths = {p.strip() for p in spec.split(",")}
    out = {k: answer[k] for k in ("errors", "took") if k in paths}
    if "items" in paths or any(p.startswith("items.*.") for p in paths):
        out["items"] = answer["items"]
    return out


def cut(item: dict[str, Any], fields: set[str] | None) -> dict[str, Any]:
    return item if fields is None else {k: v for k, v in item.items() if k in fields}


def one_conflict(doc_id: str, backing: str) -> dict[str, Any]:
    return {"status": 409, "error": {
        "type": "version_conflict_engine_exception",
        "reason": f"[{doc_id}]: version conflict, document already exists (current version [1])",
        "index_uuid": "aBcDeFgHiJkLmNoPqRsTuV", "shard": "0", "index": backing}}


_KIND_TYPES: dict[str, Any] = {"keyword": str | None, "text": str | None, "long": int | None,
                               "date": int | str | None}
_FLAT = ("flattened", "flat_object")


def doc_type(leaves: dict[str, dict], objects: set[str], data_stream: bool) -> type:
    """A msgspec type that takes exactly the documents that need no closer look: every mapped
    leaf of its plain JSON type (or null), free-form fields as raw JSON (checked after), and
    no object written nested (``{"service": {...}}``): those go the per-document way."""
    fields: list[tuple] = []
    for n, (name, node) in enumerate(sorted(leaves.items())):
        kind = node.get("type", "")
        if kind in _FLAT:
            fields.append((f"flat_{n}", msgspec.Raw, msgspec.field(default=msgspec.Raw(b"{}"), name=name)))
        elif name == "@timestamp" and data_stream:
            fields.append((f"f{n}", int | str, msgspec.field(name=name)))
        else:
            fields.append((f"f{n}", _KIND_TYPES.get(kind, Any), msgspec.field(default=None, name=name)))
    for n, name in enumerate(sorted(objects)):
        fields.append((f"o{n}", None, msgspec.field(default=None, name=name)))
    depth = min((node.get("depth_limit", 20) for node in leaves.values() if node.get("type") in _FLAT),
                default=20)
    flat = tuple(f[0] for f in fields if f[0].startswith("flat_"))
    return msgspec.defstruct("Doc", fields, kw_only=True, namespace={"depth_limit": depth,
                                                                     "flat_fields": flat})


def look_closer(docs: list[Any], doc_type: Any) -> bool:
    """A free-form field that is not an object, or may nest deeper than its limit (counted
    as brackets, anywhere in it: never too few): those documents go the per-document way."""
    for name in doc_type.flat_fields:
        raws = list(map(bytes, map(attrgetter(name), docs)))
        if not all(map(bytes.startswith, raws, repeat((b"{", b"null")))):
            return True
        if max(map(bytes.count, raws, repeat(b"{"))) + max(map(bytes.count, raws, repeat(b"["))) \
                > doc_type.depth_limit:
            return True
    return False


class Docs(dict):
    """``_id`` -> the document as sent (bytes); read back as a dict."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        return orjson.loads(super().__getitem__(key))
