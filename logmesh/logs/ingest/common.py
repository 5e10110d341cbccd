"""Shared by every ingest source: typed decoding of log packets into stored lines.

The hot path decodes with msgspec into typed structs (no dict per event),
keeps the request's ``params`` as the raw JSON bytes it arrived as
(``msgspec.Raw``: embedded unchanged, never re-encoded) and encodes each
event straight to the line the store appends.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from ...protocol import Node, loads, replace_lone_surrogates
from ..event import Event, as_text
from ..store import layout
from .field_limits import MAX_FIELD_NAME, MAX_FIELDS, fold

# The labels the Elasticsearch routes make of an action's `_id` and `_index` (es_bulk.py), which
# the `_id` window trusts at start (es_ids_store.py): a document's own is refused, so that
# every stored one is the service's (one that forged them was taken for a stored `_id`).
ID_LABEL = layout.ES_ID_LABEL
INDEX_LABEL = "es.index"


class Rejected(ValueError):
    """An event that some reader (recovery, DuckDB, compaction, a sink) could not read back.

    Raised per event before anything is acknowledged; ``reason`` is a short
    snake_case word for counters and replies (``bad_timestamp``, ``bad_number``,
    ``too_deep``, ...), the message says what to change.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def too_large_error(line: int, size: int) -> dict[str, Any]:
    """The reply's error for the event on the body's ``line`` (from 1; an array's item) refused
    since its stored line would take ``size`` bytes, more than layout.MAX_LINE_BYTES
    (store/segment.py: LineTooLong). The line, as every other error of the reply names it: the
    event's place among the good ones (its first form) told the sender nothing it could find."""
    return {"line": line, "reason": "too_large",
            "error": f"the event of line {line} would be stored as {size} bytes, more than the "
                     f"{layout.MAX_LINE_BYTES} a stored line may take; send it in parts"}


def not_json(raw: bytes, exc: ValueError, where: str) -> Rejected:
    """Why orjson could not read ``raw`` (its ``exc``), for a sender: bytes that are not UTF-8
    are named so, with the first bad byte's place in ``where`` ("line 3", "the body"), counted
    from 1 (``bad_utf8``); orjson's words for them, "str is not valid UTF-8: surrogates not
    allowed", sent senders looking for surrogates. Anything else in orjson's words (``bad_json``)."""
    text = str(exc)
    if "UTF-8" in text:
        try:
            raw.decode()
        except UnicodeDecodeError as bad:
            return Rejected("bad_utf8", f"invalid UTF-8 at byte {bad.start + 1} of {where}")
    return Rejected("bad_json", text)


# -- what may be stored ----------------------------------------------------------
# One rule for every ingest source: a stored line must read back in every reader
# (recovery and the sinks use orjson, DuckDB reads the segments and Parquet files).

MAX_TIMESTAMP_MS = layout.MAX_TIMESTAMP_MS
MAX_DEPTH = 256  # JSON nesting of params and labels; orjson stops at 1024, msgspec near 1000
# check_json's screen, one C pass: digits become "0", e/E "e", brackets "[", all else a space.
# Only text with "0e" (a number with an exponent, or a hex-like word), a 300-digit run or more
# than MAX_DEPTH brackets is parsed to be checked: 1e999 is infinite as a double, and orjson refuses it.
def _screen_table() -> bytes:
    table = bytearray(b" " * 256)
    for c in b"0123456789":
        table[c] = ord("0")
    table[ord("e")] = table[ord("E")] = ord("e")
    table[ord("[")] = table[ord("{")] = ord("[")
    return bytes(table)


_SCREEN = _screen_table()
_LONG_NUMBER = b"0" * 300  # a run of digits this long may be a number past a double's range


PARAMS_ERROR_LABEL = "logmesh.params_error"  # why a logged request's params were not stored parsed


# an event stored with bad parts of it replaced says which here (bad_utf8, bad_timestamp)
REPLACED_LABEL = "logmesh.replaced"


def check_timestamp(ts: Any) -> int:
    """``ts`` as epoch ms if it is one every reader takes, else :class:`Rejected`."""
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts <= MAX_TIMESTAMP_MS:
        raise Rejected("bad_timestamp", f"@timestamp {str(ts)[:40]} is not epoch milliseconds "
                                        "between 1970 and 9999")
    return ts


def check_json(raw: bytes | msgspec.Raw) -> None:
    """Refuse JSON text that orjson (recovery, sinks) would not read back.

    The hot path pays a copy, a ``translate``, a ``count`` and a ``find`` (C,
    no parse; half a regex search's cost); only suspicious text is parsed.
    """
    raw = bytes(raw)
    screened = raw.translate(_SCREEN)
    if screened.count(b"[") <= MAX_DEPTH and b"0e" not in screened and _LONG_NUMBER not in screened:
        return
    try:
        value = loads(raw)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "recursion" in text:
            raise Rejected("too_deep", f"nested deeper than {MAX_DEPTH} levels") from None
        if "infinity" in text or "number" in text:
            raise Rejected("bad_number", f"a number out of range: {text[:80]}") from None
        raise Rejected("bad_json", text[:120]) from None
    if depth(value) > MAX_DEPTH:
        raise Rejected("too_deep", f"nested deeper than {MAX_DEPTH} levels")


def check_json_all(raws: list[bytes | msgspec.Raw]) -> None:
    """:func:`check_json` of each of ``raws``, screened together (joined by a space, which the
    screen reads as nothing): only when the whole is suspect is each one checked, and when only
    its brackets are, only those long enough to hold more than MAX_DEPTH of them."""
    screened = b" ".join(raws).translate(_SCREEN)
    if b"0e" in screened or _LONG_NUMBER in screened:
        suspects = raws
    elif screened.count(b"[") > MAX_DEPTH:
        suspects = [raw for raw in raws if len(raw) > MAX_DEPTH]
    else:
        return
    for raw in suspects:
        check_json(raw)


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, list):
            continue
        deepest = max(deepest, d)
        stack.extend((x, d + 1) for x in v)
    return deepest


# -- what arrives ---------------------------------------------------------------


class Envelope(msgspec.Struct):
    """A packet sent to the logs service; ``params`` is decoded on demand."""

    uri: Any = None
    method: Any = None
    key: Any = None
    params: msgspec.Raw = msgspec.Raw(b"")
    ack: bool = False
    service: Any = msgspec.field(default=None, name="service.name")
    event_id: Any = msgspec.field(default=None, name="event.id")
    timestamp: Any = msgspec.field(default=None, name="@timestamp")


class Request(msgspec.Struct):
    """The request packet a service received (the log's ``params`` string)."""

    uri: Any = None
    method: Any = None
    params: msgspec.Raw = msgspec.Raw(b"")
    key: Any = None
    trace_id: Any = msgspec.field(default=None, name="trace.id")


class BatchEvent(msgspec.Struct, array_like=True):
    """One event of a logmesh shipper batch: ``[n, ts_ms, raw_packet, extra, instance]``.

    ``raw`` may be a list: the gateway's access log as a row (logmesh/access_log.py), stored
    as the record it stands for. ``instance`` is set for events replayed from a spool written
    by an earlier boot of the shipper: they keep the ``event.id`` they were born with.
    """

    n: int
    ts: int
    raw: str | list[Any]
    extra: dict[str, Any] | None = None
    instance: str | None = None


class Batch(msgspec.Struct):
    """The opt-in extension: many events, acknowledged once durable.

    ``node``: ``[host, port]`` of the mesh node the shipper serves (the service it is attached
    to), so the logs service can tell which registered node an instance is (logs/health.py);
    ``heartbeat``: the seconds of quiet after which the shipper sends an empty batch, so
    quiet is told apart from dead. Both are absent from older shippers' batches: any value
    here is read by the ledger, which keeps only a well-formed one.
    """

    service: str = ""
    instance: str = ""
    events: list[BatchEvent] = []
    node: Any = None
    heartbeat: Any = None


class _KeyOnly(msgspec.Struct):
    key: Any = None


key_decoder = msgspec.json.Decoder(_KeyOnly)
envelope_decoder = msgspec.json.Decoder(Envelope)
request_decoder = msgspec.json.Decoder(Request)
batch_decoder = msgspec.json.Decoder(Batch)
str_decoder = msgspec.json.Decoder(str)


def decode(decoder: msgspec.json.Decoder, data: bytes | str | msgspec.Raw) -> Any:
    """``decoder.decode(data)``, reading a lone surrogate escape as U+FFFD (protocol.py says why)."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        fixed = replace_lone_surrogates(raw)
        if fixed is None:
            raise
        return decoder.decode(fixed)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def json_text(value: Any) -> str | None:
    """A request's field as stored: strings bare, any other value as its JSON text, the way
    DuckDB reads it (``event.as_text``). msgspec decodes an integer of any size; orjson writes
    none over 64 bits, and that TypeError would have failed the whole connection's read (a
    shipper resending the batch for ever): such a value is written by the standard library."""
    try:
        return as_text(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)



@dataclass
class Routes:
    """``"METHOD/path"`` -> service name, from the distributor's list.

    The book's services send no name with their logs, and the log
    connection's port is ephemeral, so the route of the logged request is
    what identifies the service that received it.
    """

    by_route: dict[str, str] = field(default_factory=dict)

    def update(self, nodes: list[Node]) -> None:
        table: dict[str, str] = {}
        for node in nodes:
            for url in node.urls:
                if url != "POST/logs":
                    table.setdefault(url, node.name)
        self.by_route = table

    def service_for(self, method: Any, uri: Any) -> str | None:
        if isinstance(method, str) and isinstance(uri, str):
            return self.by_route.get(method + uri)
        return None


# The first characters a JSON object may have (JSON's whitespace before its "{").
_OBJECT_STARTS = frozenset("{ \t\r\n")


def request_event(raw: str, *, ts: int, received_at: int, service: str | None,
                  instance: str | None, event_id: str | None, source: tuple[str, int] | None,
                  routes: Routes, extra: dict | None = None) -> Event:
    """Build the event for one logged request packet ``raw`` (kept verbatim as message).

    Raises :class:`Rejected` for an event no reader could read back (and
    ``RecursionError`` for a request nested deeper than msgspec goes). The
    request text itself is always storable (a JSON string): request params
    that are not are left out of ``params``, and the label
    ``logmesh.params_error`` says why, so the book's packets are all kept.
    """
    check_timestamp(ts)
    req = None
    # Only a JSON object decodes as a request: text such as the gateway's access-log line
    # ("GET /goods 200 1ms", half the events of a mesh) skips a DecodeError raised and caught
    # (1.1 of its 3.4 µs). JSON may start with whitespace, so that is still tried.
    if raw[:1] in _OBJECT_STARTS:
        try:
            req = decode(request_decoder, raw)
        except (msgspec.DecodeError, UnicodeEncodeError):
            req = None
    ev = Event(timestamp=ts, received_at=received_at, message=raw, level="info",
               service_name=service, service_instance=instance, event_id=event_id)
    if source is not None:
        ev.source_address, ev.source_port = source
    if req is not None:
        ev.method = json_text(req.method)
        ev.path = json_text(req.uri)
        if req.params:  # absent: an empty Raw, which would encode as `"params":}` (a torn line)
            try:
                check_json(req.params)
                ev.params = req.params
            except Rejected as exc:  # the request's text is kept whole in message; only the
                extra = {**(extra or {}), PARAMS_ERROR_LABEL: exc.reason}  # parsed copy goes
        ev.trace_id = json_text(req.trace_id)
        ev.key = json_text(request_key(req))
        if service is None:
            ev.service_name = routes.service_for(req.method, req.uri)
    if extra:
        apply_extra(ev, extra)
    return ev


def request_key(req: Request) -> Any:
    """A logged request's key: its own, else the one the book's gateway keeps inside params."""
    key = req.key
    if key is None and memoryview(req.params)[:1] == b"{":
        try:
            key = key_decoder.decode(req.params).key
        except msgspec.DecodeError:
            key = None
    return key


_EXTRA_FIELDS = {"log.level": "level", "log.logger": "logger", "message": "message",
                 "error.stack_trace": "stack_trace", "trace.id": "trace_id",
                 "http.response.status_code": "status", "service.name": "service_name",
                 "url.path": "path", "http.request.method": "method"}


# ECS objects a sender may nest (``{"service": {"name": ...}}``) instead of dotting their names.
ECS_OBJECTS = frozenset({"service", "http", "url", "log", "trace", "span", "error", "event",
                         "source", "host", "client", "user_agent"})


def flatten_ecs(obj: dict[str, Any]) -> dict[str, Any]:
    """Nested ECS objects -> their dotted names, so ``{"service": {"name": "x"}}`` is stored as
    ``service.name``, not as a label named ``service``; other objects (``user``) stay labels.

    ``obj`` is returned unchanged (no copy) when it nests none of :data:`ECS_OBJECTS`. Callers
    refuse documents nested past MAX_DEPTH first, which bounds the recursion.
    """
    for key, value in obj.items():
        if value.__class__ is dict and key in ECS_OBJECTS:
            break
    else:
        return obj
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        if value.__class__ is dict and key in ECS_OBJECTS:
            _flatten_into(flat, key, value)
        else:
            flat[key] = value
    return flat


def _flatten_into(flat: dict[str, Any], prefix: str, obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        if value.__class__ is dict and value:
            _flatten_into(flat, f"{prefix}.{key}", value)
        else:
            flat[f"{prefix}.{key}"] = value


def refuse_es_labels(labels: dict[str, Any]) -> None:
    """:class:`Rejected` (``reserved_label``) for labels a sender named :data:`ID_LABEL` or
    :data:`INDEX_LABEL`: only the Elasticsearch routes set them, so the ``_id`` window read
    back from the store at start holds the ids of ``_id``s alone (docs/ingest.md)."""
    if ID_LABEL in labels or INDEX_LABEL in labels:
        raise Rejected("reserved_label", f"the labels {ID_LABEL} and {INDEX_LABEL} are the logs service's "
                       "own (an Elasticsearch action's _id and _index): send the _id as the action's, "
                       "or name the field otherwise")


def apply_extra(ev: Event, extra: dict[str, Any]) -> None:
    """Known ECS names set their field; anything else goes to ``labels``.

    A known field with a value of the wrong kind is refused (:class:`Rejected`),
    not stored as something else: ``service.name`` as an object would become
    a name nobody searches for. Labels past field_limits' bounds are folded into one.
    """
    labels = ev.labels
    check = labels is not None  # whether fold must look: labels came from elsewhere, or a long name
    for name, value in extra.items():
        attr = _EXTRA_FIELDS.get(name)
        if attr is None:
            if labels is None:
                labels = {}
            if len(name) > MAX_FIELD_NAME or name == "labels":
                check = True
            if isinstance(value, (dict, list)) and depth(value) >= MAX_DEPTH:
                raise Rejected("too_deep", f"{name} is nested deeper than {MAX_DEPTH} levels")
            if name == "labels" and isinstance(value, dict):
                labels.update(value)  # the stored field itself, not a label named "labels"
            else:
                labels[name] = value
        elif attr == "status":
            ev.status = _status(value)
        elif attr == "message" or value is None or isinstance(value, (str, int, float)):
            setattr(ev, attr, json_text(value))
        else:
            raise Rejected("bad_field", f"{name} must be a string, not {type(value).__name__}")
    if labels is not None:
        refuse_es_labels(labels)
    ev.labels = fold(labels) if labels is not None and (check or len(labels) > MAX_FIELDS) else labels


def _status(value: Any) -> int | None:
    """An HTTP status code from an int or a digit string; anything else is refused."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 999):
        return value
    raise Rejected("bad_field", f"http.response.status_code {str(value)[:40]} is not a status code")
