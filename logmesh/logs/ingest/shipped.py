"""A shipper's acked batch to stored lines with few calls, for the two shapes a mesh ships.

A mesh's shippers send two kinds of event, half each: the gateway's access log
(text such as ``GET /goods 200 1.2ms`` with its ECS fields in ``extra``,
mesh/gateway.py) and the services' request packets (a JSON object, no
``extra``). :func:`~logmesh.logs.ingest.common.request_event` builds each
event field by field: a dict decoded per ``extra``, the packet decoded on
its own, each ECS field checked and set through ``apply_extra``: ~2.3-3 µs an
event, against ~1-2 for bulk ingest (bench/acked_batch.py, docs/benchmarks.md).

Here the whole batch is one msgspec decode into typed structs (the gateway's
fields and types are the struct's: a field of another name or kind fails the
decode), a batch of request packets one more ``decode_lines`` of their texts
and one screen of their params (``check_json``'s), and each event one
positional :class:`ShippedLine` (the stored line, encoded by the store in the
block's one ``encode_lines`` call like an :class:`~logmesh.logs.event.Event`).
Anything else -- another shape of ``extra``, a replayed event (its own
``instance``), a timestamp out of range, a batch mixing both kinds, params a
reader could not read back, a packet that is not one JSON object -- gets None,
and the batch takes ``request_event`` per event, which handles, rejects and
labels every case. Both ways store the same lines (tests/logs/ingest/test_shipped.py);
the labels of an access log are in the gateway's order (``event.duration_ms``,
``errorcode``, ``upstream``, ``upstream.address``) whatever order they came in.

A batch of request packets is stored as the book's packets are (ingest/book_block.py):
the packet's text as ``message`` and nothing parsed from it beside it; readers derive
the request's method, path, key, trace id and params from ``message`` where a line
has neither method nor path (store/columns.py in DuckDB, event.derive_request in
Python). That takes a packet whose fields read back as the parsed ones would be
stored: :class:`PlainRequest`'s types (strings, a key that is a string or an integer
of 64 bits), params any reader reads, its own key. Any other batch of packets is
stored parsed, its fields beside ``message``, as before; both forms read alike
(tests/logs/store/test_shipped_packets.py).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ... import access_log
from ...protocol import INT_MIN, UINT_MAX
from .common import (
    _OBJECT_STARTS,
    MAX_TIMESTAMP_MS,
    Rejected,
    Routes,
    check_json_all,
    json_text,
    request_decoder,
    request_key,
)

Status = Annotated[int, Meta(ge=0, le=999)]
Scalar = str | int | float | bool | None  # a label value of the gateway's kinds (JSON null kept)


class AccessFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The ``extra`` of the gateway's access log (mesh/gateway.py ``_account``): its ECS fields,
    typed as ``apply_extra`` stores them, and its labels; any other field fails the decode."""

    method: str | None = msgspec.field(default=None, name="http.request.method")
    path: str | None = msgspec.field(default=None, name="url.path")
    status: Status | None = msgspec.field(default=None, name="http.response.status_code")
    trace_id: str | None = msgspec.field(default=None, name="trace.id")
    level: str | None = msgspec.field(default="info", name="log.level")
    duration: Scalar | UnsetType = msgspec.field(default=UNSET, name="event.duration_ms")
    errorcode: Scalar | UnsetType = UNSET
    upstream: Scalar | UnsetType = UNSET
    address: Scalar | UnsetType = msgspec.field(default=UNSET, name="upstream.address")


class AccessLabels(msgspec.Struct, gc=False):
    """An access log's ``labels``; UNSET ones are left out of the line (logs/gateway_counts.py
    reads ``duration`` and ``address`` of it where it reads a labels dict's names)."""

    duration: Scalar | UnsetType = msgspec.field(default=UNSET, name="event.duration_ms")
    errorcode: Scalar | UnsetType = UNSET
    upstream: Scalar | UnsetType = UNSET
    address: Scalar | UnsetType = msgspec.field(default=UNSET, name="upstream.address")


_NO_LABELS = AccessLabels()


class AccessRow(msgspec.Struct, array_like=True, forbid_unknown_fields=True, gc=False):
    """The gateway's access log as a row (logmesh/access_log.py), typed as its record's
    fields are when the gateway sends a row (a service's reply: an int errorcode, an
    upstream); a row of any other types fails the decode and takes the per-event path."""

    method: str
    path: str
    status: Status
    trace_id: str
    level: str
    took_us: Annotated[int, Meta(ge=0, lt=access_log.EXACT_US)]
    errorcode: int
    upstream: str
    address: str | None


class ShippedEvent(msgspec.Struct, array_like=True, gc=False):
    """``[n, ts_ms, raw, extra]`` of common.BatchEvent; an ``instance`` (a replayed event) fails."""

    n: int
    ts: Annotated[int, Meta(ge=0, le=MAX_TIMESTAMP_MS)]
    raw: str | AccessRow
    extra: AccessFields | None = None
    instance: None = None


class ShippedBatch(msgspec.Struct, gc=False):
    service: str = ""
    instance: str = ""
    events: list[ShippedEvent] = []
    node: Any = None
    heartbeat: Any = None


class ShippedPacket(msgspec.Struct, gc=False):
    """An acked batch's packet, its ``params`` decoded as this path takes them: one pass over
    the frame, where common.Envelope's ``Raw`` params were skipped over and then decoded
    again (~0.2 µs an event, docs/benchmarks.md "eighth part"). A frame of any other shape
    fails the decode and takes the per-packet path (tcp.py), which reads every shape."""

    uri: Any = None
    method: Any = None
    key: Any = None
    params: ShippedBatch | None = None
    ack: bool = False


EMPTY = msgspec.Raw(b"")  # no params: the default, left out of the line


class ShippedLine(msgspec.Struct, omit_defaults=True, gc=False):
    """A stored line: :class:`~logmesh.logs.event.Event`'s fields, names and order, positional
    so each event is one call (the store encodes and observes it as it does an Event)."""

    seq: int
    timestamp: int = msgspec.field(name="@timestamp")
    received_at: int = 0
    service_name: str | None = msgspec.field(default=None, name="service.name")
    service_instance: str | None = msgspec.field(default=None, name="service.instance")
    source_address: str | None = msgspec.field(default=None, name="source.address")
    source_port: int | None = msgspec.field(default=None, name="source.port")
    method: str | None = msgspec.field(default=None, name="http.request.method")
    path: str | None = msgspec.field(default=None, name="url.path")
    status: int | None = msgspec.field(default=None, name="http.response.status_code")
    key: str | None = None
    level: str | None = msgspec.field(default=None, name="log.level")
    logger: str | None = msgspec.field(default=None, name="log.logger")
    message: str | None = None
    params: msgspec.Raw = EMPTY
    stack_trace: str | None = msgspec.field(default=None, name="error.stack_trace")
    event_id: str | None = msgspec.field(default=None, name="event.id")
    trace_id: str | None = msgspec.field(default=None, name="trace.id")
    labels: AccessLabels | None = None


class PacketLine(msgspec.Struct, omit_defaults=True, gc=False):
    """A request packet's stored line, unparsed: :class:`ShippedLine`'s fields that such a
    line holds, in its order (so the same bytes as a ShippedLine with the rest None), ten
    positional arguments a line instead of nineteen."""

    seq: int
    timestamp: int = msgspec.field(name="@timestamp")
    received_at: int = 0
    service_name: str | None = msgspec.field(default=None, name="service.name")
    service_instance: str | None = msgspec.field(default=None, name="service.instance")
    source_address: str | None = msgspec.field(default=None, name="source.address")
    source_port: int | None = msgspec.field(default=None, name="source.port")
    level: str | None = msgspec.field(default=None, name="log.level")
    message: str | None = None
    event_id: str | None = msgspec.field(default=None, name="event.id")
    # read by the store's observer (gateway_counts: only the gateway's service name matters)
    # and by tcp.py's error count (a packet: "info", no status)
    labels = None
    status = None


class PlainRequest(msgspec.Struct, gc=False):
    """A request packet whose fields readers derive from its text exactly as ingest would
    store them parsed: any value of another type fails the decode (the packet is then
    stored parsed). A packet without its own key is refused too: readers look inside params."""

    uri: str | None = None
    method: str | None = None
    params: msgspec.Raw = EMPTY
    key: str | Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | UnsetType = UNSET
    trace_id: str | None = msgspec.field(default=None, name="trace.id")


_plain_requests = msgspec.json.Decoder(PlainRequest).decode_lines
packet_decoder = msgspec.json.Decoder(ShippedPacket)
# A key that is an int orjson can write is its decimal text: json_text's answer, without its call.
_requests = request_decoder.decode_lines
_key, _params, _n = attrgetter("key"), attrgetter("params"), attrgetter("n")
_NULL = msgspec.Raw(b"null")


def batch_lines(batch: ShippedBatch, received: int, source: tuple[str, int],
                routes: Routes) -> list[ShippedLine] | list[PacketLine] | None:
    """The batch's stored lines, one per event in order, if it is a whole batch of one shape
    this path takes (its own instance's events, numbered from 1, all access logs or all
    request packets); else None: the caller takes the per-event path."""
    events = batch.events
    if not events or not batch.instance or min(map(_n, events)) < 1:
        return None  # n < 1: a number the ledger would take for a resend, refused by name there
    if events[0].extra is not None or events[0].raw.__class__ is AccessRow:
        return _access_logs(batch, received, source)
    return _request_packets(batch, received, source, routes)


def _access_logs(batch: ShippedBatch, received: int,
                 source: tuple[str, int]) -> list[ShippedLine] | None:
    instance, service = batch.instance, batch.service or None
    address, port = source
    prefix = instance + ":"
    lines = []
    message = access_log.message
    for ev in batch.events:
        x = ev.extra
        raw = ev.raw
        if raw.__class__ is AccessRow:
            if x is not None:
                return None  # refused by the per-event path
            took = raw.took_us
            lines.append(ShippedLine(
                0, ev.ts, received, service, instance, address, port, raw.method, raw.path,
                raw.status, None, raw.level, None,
                message(raw.method, raw.path, raw.status, took), EMPTY, None,
                prefix + str(ev.n), raw.trace_id,
                AccessLabels(took / 1000, raw.errorcode, raw.upstream, raw.address)))
            continue
        if x is None or raw[:1] in _OBJECT_STARTS:  # a packet: request_event decodes it
            return None
        labels = AccessLabels(x.duration, x.errorcode, x.upstream, x.address)
        lines.append(ShippedLine(
            0, ev.ts, received, service, instance, address, port, x.method, x.path, x.status,
            None, x.level, None, raw, EMPTY, None, prefix + str(ev.n), x.trace_id,
            None if labels == _NO_LABELS else labels))
    return lines


def _request_packets(batch: ShippedBatch, received: int, source: tuple[str, int],
                     routes: Routes) -> list[ShippedLine] | list[PacketLine] | None:
    events = batch.events
    raws = [raw for ev in events if ev.extra is None and (raw := ev.raw).__class__ is str]
    if len(raws) != len(events):
        return None
    # No raw newline inside a packet, and each starts with "{": memchr over their text and one
    # count, ~0.5k instructions a packet where a count of "\n" and a step a packet took ~1.4k
    if "\n" in "".join(raws):
        return None  # one by one
    joined = "\n".join(raws)
    if joined[:1] != "{" or joined.count("\n{") != len(raws) - 1:
        return None  # text, not a packet: one by one
    if batch.service:
        lines = _unparsed_packets(batch, joined, raws, received, source)
        if lines is not None:
            return lines
    return _parsed_packets(batch, joined, raws, received, source, routes)


def _unparsed_packets(batch: ShippedBatch, joined: str, raws: list[str], received: int,
                      source: tuple[str, int]) -> list[PacketLine] | None:
    """The packets as ``message`` alone (readers derive their fields), if every one is a
    :class:`PlainRequest` whose params every reader reads back; else None."""
    try:
        reqs = _plain_requests(joined)
        if len(reqs) != len(raws) or UNSET in map(_key, reqs):
            return None
        params = list(map(_params, reqs))
        if _NULL in params:  # stored parsed as "params":null; readers derive no params from null
            return None
        check_json_all([p for p in params if p])
    except (msgspec.DecodeError, UnicodeError, RecursionError, Rejected):
        return None
    instance, service = batch.instance, batch.service
    address, port = source
    prefix = instance + ":"
    return [PacketLine(0, ev.ts, received, service, instance, address, port, "info", ev.raw,
                       prefix + str(ev.n)) for ev in batch.events]


def _parsed_packets(batch: ShippedBatch, joined: str, raws: list[str], received: int,
                    source: tuple[str, int], routes: Routes) -> list[ShippedLine] | None:
    events = batch.events
    try:
        reqs = _requests(joined)
        check_json_all([req.params for req in reqs if req.params])
    except (msgspec.DecodeError, UnicodeError, RecursionError, Rejected):
        return None  # request_event keeps it as text, or labels the params it leaves out
    if len(reqs) != len(raws):
        return None
    instance, service = batch.instance, batch.service or None
    address, port = source
    prefix = instance + ":"
    lines = []
    for ev, req in zip(events, reqs, strict=True):
        method, uri, trace_id = req.method, req.uri, req.trace_id
        key = request_key(req)
        lines.append(ShippedLine(
            0, ev.ts, received,
            service if service is not None else routes.service_for(method, uri),
            instance, address, port,
            method if method is None or method.__class__ is str else json_text(method),
            uri if uri is None or uri.__class__ is str else json_text(uri),
            None,
            key if key is None or key.__class__ is str else str(key)
            if key.__class__ is int and INT_MIN <= key <= UINT_MAX else json_text(key),
            "info", None, ev.raw, req.params or EMPTY, None, prefix + str(ev.n),
            trace_id if trace_id is None or trace_id.__class__ is str else json_text(trace_id),
            None))
    return lines
