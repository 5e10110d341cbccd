"""Fluent's forward protocol (``--forward-port``), as Fluentd, Fluent Bit and fluent-logger send.

A connection is a stream of msgpack arrays, each in one of four modes
(the spec: fluent/fluentd's forward protocol v1):

* Message: ``[tag, time, record, option?]``
* Forward: ``[tag, [[time, record], ...], option?]``
* PackedForward: ``[tag, <bin: msgpack stream of [time, record]>, option?]``
* CompressedPackedForward: the same, gzipped, with ``option.compressed == "gzip"``

``time`` is seconds (an integer) or an EventTime (msgpack extension 0:
seconds and nanoseconds). When ``option.chunk`` is set the sender waits for
``{"ack": chunk}``, written only once the events are durable by the --fsync
policy; while the store cannot write, no ack is sent and the sender resends
the chunk after its timeout (at-least-once, as the protocol is: a chunk whose
ack was lost on the way is stored again).

Each record goes through the HTTP NDJSON path's decoder
(:func:`logmesh.logs.ingest.http_ndjson.record_event`), so its fields map
the same way; Fluent's ``log`` field (Fluent Bit's ``tail`` and Docker's
logging driver) becomes ``message`` when there is no ``message``, a string
``service`` field ``service.name``, and the tag is ``service.name``
otherwise. Bytes that are not msgpack end the connection (a stream cannot be
read past them): counted as ``bad_msgpack``, the events before them stored;
so does a message with no good event (:class:`ForwardProtocol`).
The shared-key handshake (HELO/PING/PONG) is not supported.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import zlib
from typing import Any

import msgpack
import orjson

from ..event import Event
from ..store.segment import StoreUnavailable
from .common import Rejected, now_ms
from .connection import IngestConnection
from .context import IngestContext
from .counting import ProtocolCounters
from .http_ndjson import record_event

PROTOCOL = "forward"
EVENT_TIME = 0  # msgpack extension type of Fluent's EventTime


class EventTime(int):
    """Epoch milliseconds, from the EventTime extension (seconds, nanoseconds)."""


def _ext(code: int, data: bytes) -> Any:
    if code == EVENT_TIME and len(data) == 8:
        return EventTime(int.from_bytes(data[:4], "big") * 1000
                         + int.from_bytes(data[4:], "big") // 1_000_000)
    return msgpack.ExtType(code, data)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, msgpack.ExtType):
        return value.data.hex()
    raise TypeError(type(value).__name__)


def unpacker(max_bytes: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(raw=False, ext_hook=_ext, max_buffer_size=max(max_bytes, 1 << 16),
                            strict_map_key=False)


class Message:
    """One forward-protocol message made into events, its errors and its chunk id."""

    def __init__(self, obj: Any, received: int, max_bytes: int) -> None:
        self.events: list[Event] = []
        self.errors: list[tuple[str, str]] = []
        self.chunk: str | None = None
        if not isinstance(obj, (list, tuple)) or len(obj) < 2 or not isinstance(obj[0], str):
            self.errors.append(("bad_message", "not [tag, ...]: " + repr(obj)[:80]))
            return
        tag, second = obj[0], obj[1]
        option = obj[-1] if len(obj) >= 3 and isinstance(obj[-1], dict) else {}
        chunk = option.get("chunk")
        self.chunk = chunk if isinstance(chunk, str) else None
        if isinstance(second, (list, tuple)):  # Forward
            entries: Any = second
        elif isinstance(second, (bytes, str)):  # PackedForward, maybe compressed
            entries = self._packed(second, option, max_bytes)
        elif len(obj) >= 3:  # Message: [tag, time, record, option?]
            entries = [obj[1:3]]
        else:
            self.errors.append(("bad_message", "a message with no record"))
            return
        for entry in entries:
            self._entry(tag, entry, received)

    def _packed(self, data: bytes | str, option: dict, max_bytes: int) -> list:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        if option.get("compressed") == "gzip":
            try:
                raw = gzip.decompress(raw)  # concatenated members too, as Fluent Bit sends
            except (OSError, EOFError, zlib.error) as exc:
                self.errors.append(("bad_gzip", str(exc)))
                return []
        feed = unpacker(max_bytes)
        try:
            feed.feed(raw)
            return list(feed)
        except (ValueError, msgpack.UnpackException) as exc:
            self.errors.append(("bad_msgpack", f"packed entries: {exc}"))
            return []

    def _entry(self, tag: str, entry: Any, received: int) -> None:
        if not isinstance(entry, (list, tuple)) or len(entry) < 2 or not isinstance(entry[1], dict):
            self.errors.append(("bad_entry", "not [time, record]: " + repr(entry)[:80]))
            return
        ts, record = entry[0], entry[1]
        try:
            obj = orjson.loads(orjson.dumps(record, default=_json_default,
                                            option=orjson.OPT_NON_STR_KEYS))
            if "message" not in obj and isinstance(obj.get("log"), str):
                obj["message"] = obj.pop("log")
            if "service.name" not in obj and isinstance(obj.get("service"), str):
                obj["service.name"] = obj.pop("service")
            if "@timestamp" not in obj and isinstance(ts, (int, float)) and not isinstance(ts, bool):
                if isinstance(ts, float) and not math.isfinite(ts):  # msgpack carries IEEE doubles
                    raise Rejected("bad_timestamp", f"time {ts!r} is not a time")
                obj["@timestamp"] = int(ts) if isinstance(ts, EventTime) else int(ts * 1000)
            ev = record_event(obj, received)
        except Rejected as exc:
            self.errors.append((exc.reason, exc.detail))
            return
        except (ValueError, KeyError, TypeError, OverflowError, orjson.JSONEncodeError) as exc:
            self.errors.append(("bad_record", str(exc)[:120]))
            return
        if ev.service_name is None:
            ev.service_name = tag
        self.events.append(ev)


class ForwardProtocol(IngestConnection):
    """A forward connection; the shared-key handshake is not supported (no token).

    A message that gives no event, only errors (not ``[tag, ...]``, no good entry), ends
    the connection once the acks of what came before are written, as Fluentd's in_forward
    closes a connection whose data it cannot take: otherwise connections sending one
    such message a second held the port's every slot (--max-connections), and a real
    sender was refused. Its errors are counted by reason; a message with some good
    entries keeps the connection (its bad entries counted).
    """

    def __init__(self, ctx: IngestContext, counters: ProtocolCounters) -> None:
        super().__init__(ctx)
        self.counters = counters
        self.unpacker = unpacker(ctx.max_frame_bytes)
        self.fed = 0  # bytes fed to the unpacker: minus its tell(), the partial message held
        self.broken = False  # bytes that are not msgpack came: nothing after them is read

    def received(self, data: bytes) -> None:
        ctx = self.ctx
        ctx.bytes.inc(len(data))
        if self.broken:
            return
        received = now_ms()
        messages: list[Message] = []
        broken = None
        garbage = False
        try:
            self.fed += len(data)
            self.unpacker.feed(data)
            for obj in self.unpacker:
                msg = Message(obj, received, ctx.max_frame_bytes)
                messages.append(msg)
                if msg.errors and not msg.events:
                    garbage = True  # nothing after it is read: see the class docstring
                    break
        except msgpack.BufferFull:
            broken = ("too_large", f"a message over {ctx.max_frame_bytes} bytes")
        # FormatError, StackError, ExtraData; TypeError: a map whose key is a map or an array
        # (unhashable: strict_map_key=False lets any key through to the dict it builds).
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            broken = ("bad_msgpack", str(exc) or type(exc).__name__)
        held = 0 if broken or garbage else self.fed - self.unpacker.tell()
        # Only a message that gave events identifies a sender to the guard: garbage must
        # not make a connection one the port keeps when full.
        if not ctx.guard.track(self, held, any(msg.events for msg in messages)):
            return
        events: list[Event] = []
        chunks: list[str] = []
        for msg in messages:
            for reason, detail in msg.errors:
                self._bad(reason, detail)
            events.extend(msg.events)
            if msg.chunk is not None:
                chunks.append(msg.chunk)
        for ev in events:
            ev.source_address, ev.source_port = self.source
        last = ctx.writer.append_events(events) if events else ctx.writer.appended_seq
        if events:
            ctx.events.inc(len(events))
            self.counters.events(PROTOCOL, len(events))
        if broken is not None or garbage:  # the acks of what came before, then the end
            if broken is not None:
                self._bad(*broken)
            self.broken = True
            if self.transport is not None:
                self.transport.pause_reading()
            asyncio.ensure_future(self._ack(chunks, last, close=True))
            return
        if chunks:
            asyncio.ensure_future(self._ack(chunks, last))
        self.pause_if_behind()

    async def _ack(self, chunks: list[str], seq: int, close: bool = False) -> None:
        transport = self.transport
        try:
            if seq >= 0 and chunks:
                await self.ctx.writer.durable(seq, on_failure="raise")
            if chunks and transport is not None and not transport.is_closing():
                transport.write(b"".join(msgpack.packb({"ack": c}) for c in chunks))
        except StoreUnavailable:
            pass  # no ack: the sender resends the chunk after its timeout
        finally:
            if close and transport is not None:
                transport.close()  # after the acks: close() sends what is buffered first

    def _bad(self, reason: str, detail: str) -> None:
        self.counters.error(PROTOCOL, reason)
        self.ctx.warn.warning("forward %s:%s: dropped input (%s) %s", *self.source, reason,
                              detail[:160])
