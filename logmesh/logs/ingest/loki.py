"""Loki push (``POST /loki/api/v1/push``): JSON, or snappy-compressed protobuf -> stored lines.

Sans-I/O. The protobuf messages are Loki's ``push.proto`` (PushRequest,
StreamAdapter, EntryAdapter, LabelPairAdapter), built here from a descriptor
with the protobuf library: the wire format is all a client sees, and no
package on PyPI ships Loki's generated classes. ``google.protobuf.Timestamp``
is declared as a message of the same two fields (same wire form), which keeps
the file free of imports.

Mapping (docs/ingest.md): the line is ``message``; the stream's labels and an
entry's structured metadata are labels; ``service.name`` is taken from
the first of ``service_name``, ``service``, ``app``, ``job`` (the names Loki
and its agents use; all but ``service_name`` stay labels too), and ``log.level``
from ``level`` (or ``detected_level``, ``severity``), else, as Loki does, from the line's
own ``level``/``lvl``/``severity`` when it is JSON or logfmt (line_level.py). A line whose timestamp is 0 is stamped when received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import cramjam
import msgspec
import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ...protocol import loads_exact
from ..event import Event
from .common import MAX_TIMESTAMP_MS, Rejected, not_json, refuse_es_labels
from .field_limits import fold
from .line_block import LineBlock, json_strings
from .line_level import levels_of, levels_of_literals, line_level

_encode = msgspec.json.encode

SERVICE_LABELS = ("service_name", "service", "app", "job")
LEVEL_LABELS = ("level", "detected_level", "severity")


class BadPush(Exception):
    """The body as a whole cannot be read: nothing is stored. ``reason`` is the counter's."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _build_messages() -> dict[str, Any]:
    f = descriptor_pb2.FileDescriptorProto(name="logmesh_loki_push.proto", package="logproto",
                                           syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        m = f.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            fd = m.field.add(name=fname, number=number, type=ftype,
                             label=T.LABEL_REPEATED if repeated else T.LABEL_OPTIONAL)
            if type_name:
                fd.type_name = type_name

    message("Timestamp", ("seconds", 1, T.TYPE_INT64, None, False), ("nanos", 2, T.TYPE_INT32, None, False))
    message("LabelPairAdapter", ("name", 1, T.TYPE_STRING, None, False),
            ("value", 2, T.TYPE_STRING, None, False))
    message("EntryAdapter", ("timestamp", 1, T.TYPE_MESSAGE, ".logproto.Timestamp", False),
            ("line", 2, T.TYPE_STRING, None, False),
            ("structuredMetadata", 3, T.TYPE_MESSAGE, ".logproto.LabelPairAdapter", True))
    message("StreamAdapter", ("labels", 1, T.TYPE_STRING, None, False),
            ("entries", 2, T.TYPE_MESSAGE, ".logproto.EntryAdapter", True),
            ("hash", 3, T.TYPE_UINT64, None, False))
    message("PushRequest", ("streams", 1, T.TYPE_MESSAGE, ".logproto.StreamAdapter", True))
    # The same wire format read as columns (otlp_columns.py explains the trick): a stream's
    # ``entries`` as ONE message whose fields are repeated, so that one parse leaves every
    # entry's seconds, nanos and line as lists, with no object per entry; ``CountedStream``
    # gives each entry's bytes (which entries have nanos).
    message("Stamps", ("seconds", 1, T.TYPE_INT64, None, True), ("nanos", 2, T.TYPE_INT32, None, True))
    message("Entries", ("timestamp", 1, T.TYPE_MESSAGE, ".logproto.Stamps", False),
            ("line", 2, T.TYPE_STRING, None, True),
            ("structuredMetadata", 3, T.TYPE_BYTES, None, True))
    message("ColumnStream", ("entries", 2, T.TYPE_MESSAGE, ".logproto.Entries", False))
    message("ColumnPush", ("streams", 1, T.TYPE_MESSAGE, ".logproto.ColumnStream", True))
    message("CountedStream", ("labels", 1, T.TYPE_STRING, None, False),
            ("entries", 2, T.TYPE_BYTES, None, True))
    message("CountedPush", ("streams", 1, T.TYPE_MESSAGE, ".logproto.CountedStream", True))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"logproto.{name}"))
            for name in ("PushRequest", "StreamAdapter", "EntryAdapter", "LabelPairAdapter",
                         "Timestamp", "ColumnPush", "CountedPush")}


MESSAGES = _build_messages()
PushRequest = MESSAGES["PushRequest"]
_ColumnPush, _CountedPush = MESSAGES["ColumnPush"], MESSAGES["CountedPush"]

# A Prometheus label set: {name="value", ...}, values with \" \\ \n escapes.
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


_ESCAPE = re.compile(r"\\(.)")


def _unescape(m: re.Match) -> str:
    return "\n" if m.group(1) == "n" else m.group(1)


def parse_labels(text: str) -> dict[str, str]:
    """``{app="web", env="prod"}`` -> a dict; raises :class:`BadPush` for anything else."""
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise BadPush("bad_labels", f"labels {text[:80]!r} are not {{name=\"value\", ...}}")
    inner = inner[1:-1].strip()
    out: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        m = _LABEL.match(inner, pos)
        if m is None:
            raise BadPush("bad_labels", f"labels {text[:80]!r} are not {{name=\"value\", ...}}")
        value = m.group(2)
        out[m.group(1)] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
        pos = m.end()
    return out


@dataclass
class Stream:
    """What a stream's events share: made once per stream, not per line."""

    service: str | None
    level: str
    labels: dict[str, Any] | None
    detect: bool = False  # no level label: each line's own level is read (line_level.py)


def stream_of(labels: dict[str, Any]) -> Stream:
    try:
        refuse_es_labels(labels)
    except Rejected as exc:
        raise BadPush(exc.reason, exc.detail) from None
    labels = dict(labels)
    # `service_name` is Loki's own name for service.name and goes; `service`, `app` and `job`
    # also name other things and stay labels: Loki's users select streams by them (job:cron)
    name = next((k for k in SERVICE_LABELS if isinstance(labels.get(k), str)), None)
    service = None if name is None else labels.pop(name) if name == "service_name" else labels[name]
    level = next((labels.pop(k) for k in LEVEL_LABELS if isinstance(labels.get(k), str)), None)
    return Stream(service, "info" if level is None else level.lower(),
                  fold(labels) if labels else None, detect=level is None)


@dataclass
class Parsed:
    block: LineBlock = field(default_factory=LineBlock)  # the stored lines, seqs to be given
    rejected: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def refuse(self, reason: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.first_error = self.first_error or detail


def _event(stream: Stream, ns: int, line: str, received: int, metadata: dict | None) -> Event:
    ts = ns // 1_000_000 if ns else received
    if not 0 <= ts <= MAX_TIMESTAMP_MS:
        raise Rejected("bad_timestamp", f"timestamp {str(ns)[:40]} ns is not between 1970 and 9999")
    labels = stream.labels
    if metadata:
        refuse_es_labels(metadata)
        labels = fold({**(labels or {}), **metadata})
    level = (line_level(line) or stream.level) if stream.detect else stream.level
    return Event(timestamp=ts, received_at=received, level=level, message=line,
                 service_name=stream.service, labels=labels)


def _run(out: Parsed, stream: Stream, received: int, stamps: list[int], messages: list,
         literals: bool = False) -> bool:
    """A stream's entries as one run (line_block.py); False if a timestamp needs the
    per-entry path. ``literals``: the messages are JSON string literals (the JSON push)."""
    if min(stamps) < 0 or max(stamps) > MAX_TIMESTAMP_MS:
        return False
    level: str | list[str] = stream.level
    if stream.detect:
        level = (levels_of_literals if literals else levels_of)(messages, level)
    out.block.add_run(stamps, received_at=received, service_name=stream.service,
                      level=level, message=messages,
                      labels=msgspec.Raw(_encode(stream.labels)) if stream.labels else None)
    return True


def _spread_nanos(raws: list[bytes], secs: list[int], nanos: list[int]) -> list[int] | None:
    """Each entry's nanos (0 where it has none), when only some entries have them (a client
    with ms timestamps: one in a thousand is a whole second); None if that cannot be told.

    An entry's bytes begin with its timestamp, ``0x0A``, the timestamp's length: 6 for
    seconds alone when they take a 5-byte varint (2^28 to 2^35: the years 1978 to 3058),
    more with nanos. The entries with a longer timestamp must be as many as the nanos.
    """
    if min(secs) < 1 << 28 or max(secs) >= 1 << 35 or \
            bytes(map(_first, raws)) != b"\x0a" * len(raws):
        return None
    longer = [length != 6 for length in map(_second, raws)]
    if longer.count(True) != len(nanos):
        return None
    it = iter(nanos)
    return [next(it) if has else 0 for has in longer]


def _parse(cls: Any, raw: bytes) -> Any:
    try:
        return cls.FromString(raw)
    except DecodeError as exc:  # e.g. a line that is not UTF-8
        raise BadPush("bad_protobuf", f"cannot parse PushRequest: {exc}") from None


def parse_protobuf(body: bytes, received: int, max_bytes: int) -> Parsed:
    """A snappy-compressed PushRequest -> stored lines; :class:`BadPush` if it is not one.

    Each stream's labels are read once; its entries' seconds, nanos and lines come as lists
    from one parse of the column view, the lines JSON-encoded in one call, and the stored
    lines are encoded as one run (line_block.py). A stream with structured metadata, an
    empty line, a timestamp of 0 or out of range takes the per-entry path.

    The column view is parsed not from the body but from what the messages parsed from it
    write back (each field of an entry once, the last of those written twice, no zeros):
    from the body, an entry with its line twice and one with none would have had the second
    line stored on the other (otlp_columns.py says more). ~0.3 µs an entry.
    """
    try:
        size = cramjam.snappy.decompress_raw_len(body)
        if size > max_bytes:
            raise BadPush("too_large", f"the push is {size} bytes uncompressed; at most "
                                       f"{max_bytes} are accepted (--max-body-size)")
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BadPush("bad_snappy", f"cannot decompress the snappy body: {exc}") from None
    full = _parse(PushRequest, raw)
    out = Parsed()
    columns = counted = None  # the other views, parsed once a stream needs them
    for i, s in enumerate(full.streams):
        stream = stream_of(parse_labels(s.labels))
        n = len(s.entries)
        if not n:
            continue
        if columns is None:  # from what the messages write back: see parse_protobuf's doc
            canonical = full.SerializeToString()
            columns = _parse(_ColumnPush, canonical)
        entries = columns.streams[i].entries
        secs, nanos = list(entries.timestamp.seconds), list(entries.timestamp.nanos)
        if len(secs) == n and 0 < len(nanos) < n:  # nanos of 0 are not written: which entries?
            if counted is None:
                counted = _parse(_CountedPush, canonical)
            nanos = _spread_nanos(list(counted.streams[i].entries), secs, nanos)
        # every entry with its seconds (never 0: no entry at 0 ns, stamped when received), its
        # nanos (or none has any), its line and no metadata: one run
        if len(secs) == n and nanos is not None and len(nanos) in (0, n) and \
                len(entries.line) == n and not entries.structuredMetadata and \
                (not nanos or min(nanos) >= 0) and _run(
                    out, stream, received, [x * 1000 for x in secs] if not nanos else
                    [x * 1000 + y // 1_000_000 for x, y in zip(secs, nanos, strict=True)],
                    list(entries.line)):
            continue
        events = []
        for e in s.entries:
            meta = {p.name: p.value for p in e.structuredMetadata} or None
            try:
                ns = e.timestamp.seconds * 1_000_000_000 + e.timestamp.nanos
                events.append(_event(stream, ns, e.line, received, meta))
            except Rejected as exc:
                out.refuse(exc.reason, str(exc))
        out.block.add_events(events)
    return out


class _JsonStream(msgspec.Struct, gc=False):
    """A stream whose entries are all ``[ns, line]``; any other shape: the per-entry path."""

    stream: dict[str, str]
    values: list[tuple[str, msgspec.Raw]]  # the line as its JSON literal, stored as it came


class _JsonPush(msgspec.Struct):
    streams: list[_JsonStream]


class _JsonPushRaw(msgspec.Struct):
    streams: list[msgspec.Raw]


_json_push = msgspec.json.Decoder(_JsonPush).decode
_json_push_raw = msgspec.json.Decoder(_JsonPushRaw).decode
_json_stream = msgspec.json.Decoder(_JsonStream).decode
_first, _second = itemgetter(0), itemgetter(1)


def parse_json(body: bytes, received: int) -> Parsed:
    """Loki's JSON push, ``{"streams": [{"stream": {..}, "values": [[ns, line, meta?]]}]}``.

    A stream of ``[ns, line]`` entries is decoded by msgspec (C; the whole push in one pass
    when every stream is one) and its lines stored as the JSON literals they came as
    (checked as strings in one pass); any other stream is read by orjson, an entry at a time.
    """
    try:
        streams: list = _json_push(body).streams
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        try:  # a stream of another shape: the others still decoded by msgspec, one by one
            streams = _json_push_raw(body).streams
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return _parse_json_slow(body, received)
    out = Parsed()
    for raw in streams:
        try:
            s = raw if raw.__class__ is _JsonStream else _json_stream(raw)
            if not s.values:
                continue
            stamps_ns = list(map(int, map(_first, s.values)))
            lines = list(map(_second, s.values))
            if 0 not in stamps_ns and json_strings(lines) and _run(
                    out, stream_of(s.stream), received, [ns // 1_000_000 for ns in stamps_ns], lines,
                    literals=True):
                continue
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError):
            pass  # the per-entry path says what is wrong, entry by entry
        text = bytes(raw) if raw.__class__ is msgspec.Raw else msgspec.json.encode(raw)
        try:
            doc = loads_exact(text)
        except orjson.JSONDecodeError as exc:  # e.g. a lone surrogate: the whole push is refused
            why = not_json(text, exc, "a stream")
            raise BadPush(why.reason, f"cannot parse JSON: {why.detail}") from None
        _json_stream_slow(out, doc, received)
    return out


def _parse_json_slow(body: bytes, received: int) -> Parsed:
    try:
        req = loads_exact(body)
    except orjson.JSONDecodeError as exc:
        why = not_json(body, exc, "the body")
        raise BadPush(why.reason, f"cannot parse JSON: {why.detail}") from None
    streams = req.get("streams") if isinstance(req, dict) else None
    if not isinstance(streams, list):
        raise BadPush("bad_json", 'expected {"streams": [...]}')
    out = Parsed()
    for s in streams:
        _json_stream_slow(out, s, received)
    return out


def _json_stream_slow(out: Parsed, s: Any, received: int) -> None:
    labels = s.get("stream") if isinstance(s, dict) else None
    values = s.get("values") if isinstance(s, dict) else None
    if not isinstance(labels, dict) or not isinstance(values, list) or not all(
            isinstance(x, str) for x in labels.values()):
        out.refuse("bad_stream", 'a stream is {"stream": {name: "value"}, "values": [...]}')
        return
    stream = stream_of(labels)
    events = []
    for v in values:
        try:
            if not (isinstance(v, list) and 2 <= len(v) <= 3 and isinstance(v[1], str)):
                raise Rejected("bad_entry", "an entry is [\"<unix ns>\", \"<line>\", {metadata}?]")
            meta = v[2] if len(v) == 3 else None
            if meta is not None and not (isinstance(meta, dict) and all(
                    isinstance(x, str) for x in meta.values())):
                raise Rejected("bad_entry", "structured metadata is {name: \"value\"}")
            events.append(_event(stream, int(v[0]), v[1], received, meta))
        except Rejected as exc:
            out.refuse(exc.reason, str(exc))
        except (ValueError, TypeError):
            out.refuse("bad_timestamp", f"timestamp {str(v[0])[:40]!r} is not unix nanoseconds")
    out.block.add_events(events)
