"""Stored lines -> a ``_bulk`` body: deterministic ``_id``, ``create``, bounded fields.

Stored events already carry ECS dotted names (logs/event.py), so a document
is the stored line itself, sent as the bytes it is on disk (no decode and
re-encode: measured with bench/es_sink.py, that halves the sink's CPU per
event). Only two facts are decoded from each line, with msgspec skipping the
rest:

* ``seq`` -> ``_id`` (unique in the store), and the op is ``create``, so a
  resend after a crash answers 409 instead of making a duplicate;
* whether ``params`` / ``labels`` are JSON objects: a ``flattened`` field
  takes only objects, so the rare line where a service logged a string or a
  list there is re-encoded with it wrapped as ``{"value": ...}``;
* whether ``labels`` begin with a syslog priority stored without the
  facility and severity labels it implies: those get them put back (the rule
  of event.derive_syslog_labels), so that a document reads as the query API
  reads the event. In a block (no book packets in it) that is a bytes
  insertion right after the priority from a table of 192 pre-encoded tails
  (:func:`_syslog_doc`: 3.0 µs a line where decoding and re-encoding it took
  5.0, docs/benchmarks.md "The sink's syslog lines"); a line whose bytes
  cannot decide goes through the per-line path, which applies the rule to the
  decoded line.

:func:`encode_block` does this for a whole batch the way ingest builds
stored lines (ingest/book_block.py): bytes operations in C over the whole
block, and per event only a slice and a join. Every stored line starts
``{"seq":N,`` (the writer puts it first), so the seq is a slice of the line
and the action line is the seq between two constant pieces. Whether any line
needs more than its bytes is counted over the whole block (a top-level key
is written compactly by the encoder that stored it); only then do lines go
one by one through :func:`encode_line`. Python's ``re`` over the block was
4x slower than this (bench/notes/es_sink.md). The documents of book packets
stored unparsed, with their request's fields, come from book_docs.py, a few
msgspec calls per block. The actions carry no ``_index``: the request goes to
``/<target>/_bulk``.
"""

from __future__ import annotations

import asyncio
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import msgspec
import orjson

from ....protocol import loads_exact
from ...event import (
    SYSLOG_FACILITY_CODE,
    SYSLOG_PRIORITY,
    derive_request,
    derive_syslog_labels,
    syslog_pri_labels,
)
from .book_docs import BOOK_MESSAGE, book_docs

FREE_FORM_FIELDS = ("params", "labels")  # mapped flattened / flat_object
SEQ_KEY = b'{"seq":'  # how every stored line begins
# A line's document is not its bytes when a free-form field is not an object (or null), or
# its message is a JSON object as text (a book packet stored unparsed). Quotes inside string
# values are escaped, so these counts cannot miss a line; a false alarm (the same key nested
# in params) costs the per-line path, nothing else.
FREE_FORM_KEYS = (b'"params":', b'"labels":')
# Labels that may lack what their syslog priority implies (a false alarm: the per-line path).
SYSLOG_HEAD = b'{"' + SYSLOG_PRIORITY.encode() + b'":'
SYSLOG_LABELS = b'"labels":' + SYSLOG_HEAD
# What goes right after a priority of 0-191 (its value and the "," or "}" after it): the four
# labels as orjson writes them, so a document is the per-line path's bytes.
SYSLOG_TAILS = [b"," + orjson.dumps(syslog_pri_labels(p))[1:-1] for p in range(192)]
_SYSLOG_PRI = re.compile(rb"(0|[1-9][0-9]{0,2})[,}]")  # an integer as a JSON encoder writes it
SYSLOG_STORED = b',"' + SYSLOG_FACILITY_CODE.encode() + b'":'  # a line stored with the labels
# Any of the four anywhere else in a line: inserting them would make a duplicate key.
SYSLOG_DERIVED = (b'"log.syslog.facility.', b'"log.syslog.severity.')
# Bytes of stored lines encoded per step on the event loop (encode_stepwise): ~0.25 ms of
# HTTP-shaped events, ~0.5 ms of book packets on the shared machine (bench/notes/es_sink.md).
STEP_BYTES = 64 * 1024
GZIP_STEP = 128 * 1024  # bytes of body deflated per step on the loop: ~0.06 ms
# ISA-L's deflate (python-isal), level 1: ~10x smaller NDJSON for ~0.2 us of CPU per book
# packet, where zlib's fastest level took ~0.9 for the same ratio (bench/notes/es_sink.md)
GZIP_LEVEL = 1


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


class _Labels(msgspec.Struct):
    labels: msgspec.Raw = msgspec.Raw(b"")


_decode_labels = msgspec.json.Decoder(_Labels).decode


@dataclass
class Encoded:
    seq: int
    received_ms: int | None  # when the logs service got it: lag in seconds
    body: bytes  # the document's JSON (``line`` itself when it needs no change)


def doc_id(seq: int) -> str:
    return str(seq)


def action(seq: int) -> bytes:
    """The action line of one event (the index is in the request's path)."""
    return b'{"create":{"_id":"%d"}}\n' % seq


@dataclass
class Block:
    """A batch's events, encoded: what to send, and what to send again or dead-letter."""

    seqs: list[int]  # of the events, in store order
    lines: list[bytes]  # the stored lines (no newline): what a dead letter records
    body: bytes  # the _bulk body for all of them: action + document, each line ending in \n
    end: int  # bytes of the input taken (whole lines)
    docs: dict[int, bytes] = field(default_factory=dict)  # index -> document, where not the line
    unreadable: list[tuple[bytes, str]] = field(default_factory=list)  # corrupt stored lines
    received_ms: int | None = None  # when the first event arrived: lag in seconds

    def subset_body(self, indexes: list[int]) -> bytes:
        """The body for some of the events (a retry)."""
        docs, seqs, lines = self.docs, self.seqs, self.lines
        return b"".join(action(seqs[i]) + docs.get(i, lines[i]) + b"\n" for i in indexes)


def _compressor() -> Any:
    """A gzip compressor (what Content-Encoding: gzip means). isal comes with the
    ``[elasticsearch]`` extra, like the client libraries: imported when a sink runs."""
    from isal import isal_zlib

    return isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)


async def gzip_stepwise(body: bytes) -> bytes:
    """A gzip member of ``body``, made on the event loop GZIP_STEP bytes at a time. In a thread
    it was a third runnable thread on two cores (the loop, the cluster, deflate): the loop
    waited for a core, ~4 ms at p50 with book packets (bench/notes/es_sink.md)."""
    z = _compressor()
    view = memoryview(body)
    parts = []
    for at in range(0, len(body), GZIP_STEP):
        parts.append(z.compress(view[at:at + GZIP_STEP]))
        await asyncio.sleep(0)
    parts.append(z.flush())
    return b"".join(parts)


def received_ms(line: bytes) -> int | None:
    try:
        head = _decode_head(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    received = head.received_at if isinstance(head.received_at, int) else head.timestamp
    return received if isinstance(received, int) else None


def _free_form_fit(data: bytes) -> bool:
    """Every params and labels in ``data`` is an object or null (counted in C over the block)."""
    for key in FREE_FORM_KEYS:
        n = data.count(key)
        if n and n != data.count(key + b"{") and n != data.count(key + b"{") + data.count(key + b"null"):
            return False
    return True


def encode_block(data: bytes, limit: int | None = None, max_events: int | None = None) -> Block | None:
    """Whole stored lines (each ending in \\n) -> the block of up to ``max_events`` events
    with seq <= ``limit`` (None: nothing to take yet)."""
    lines = data.split(b"\n")
    lines.pop()  # after the last newline
    if max_events is not None and len(lines) > max_events:
        del lines[max_events:]
        data = data[:sum(map(len, lines)) + len(lines)]
    n = len(lines)
    book = data.count(BOOK_MESSAGE)
    all_book = book == n  # then so is any prefix of the lines, and book_docs refuses free-form fields
    syslog = SYSLOG_LABELS in data
    if not n or not data.startswith(SEQ_KEY) or data.count(b"\n" + SEQ_KEY) != n - 1 \
            or not (all_book or _free_form_fit(data)) or (syslog and book and _syslog_book(lines)):
        return _encode_lines(lines, limit)
    ids = [line[7:line.find(b",", 7)] for line in lines]  # the digits after {"seq":
    if not all(ids) or not b"".join(ids).isdigit():
        return _encode_lines(lines, limit)
    seqs = list(map(int, ids))
    if limit is not None and seqs[-1] > limit:  # seqs rise within a segment
        n = bisect_right(seqs, limit)
        if n == 0:
            return None
        del lines[n:], seqs[n:], ids[n:]
    docs: dict[int, bytes] = {}
    redo: list[int] = []
    if book:
        found = book_docs(lines, all_book)
        if found is None:
            return _encode_lines(lines, limit)
        docs, redo = found
        for i in redo:  # a float or a long integer: as orjson writes it
            body = encode_line(lines[i]).body
            if body is not lines[i]:
                docs[i] = body
    if syslog:  # lines apart from the book packets (_syslog_book)
        found_syslog = _syslog_docs(lines, any(key in data for key in SYSLOG_DERIVED))
        if found_syslog is None:
            return _encode_lines(lines, limit)
        docs.update(found_syslog)
    # {"create":{"_id":"S"}}\n<document>\n for each, joined in one C call (as book_block.py does)
    parts: list[bytes] = [b""] * (4 * n)
    parts[0::4] = repeat(b'\n{"create":{"_id":"', n)  # each line's newline comes before the next action
    parts[0] = b'{"create":{"_id":"'
    parts[1::4] = ids
    parts[2::4] = repeat(b'"}}\n', n)
    if len(docs) == n and not redo and not (book and syslog):
        parts[3::4] = docs.values()  # every line a book packet, or a syslog line: in index order
    else:
        parts[3::4] = lines
        for i, doc in docs.items():
            parts[4 * i + 3] = doc
    parts.append(b"\n")
    return Block(seqs, lines, b"".join(parts), sum(map(len, lines)) + n, docs=docs,
                 received_ms=received_ms(lines[0]))


def _syslog_book(lines: list[bytes]) -> bool:
    """Some line has both syslog labels and a message like a book packet's: the per-line path
    decides what its document is (book_docs would leave its labels as stored)."""
    return any(BOOK_MESSAGE in line for line in lines if SYSLOG_LABELS in line)


def _syslog_docs(lines: list[bytes], derived: bool) -> dict[int, bytes] | None:
    """index -> document for the lines whose syslog labels need the four put back; a line
    bytes cannot decide goes through the per-line path alone (None: that refused it, so the
    block goes line by line). ``derived``: some line of the block holds one of the four
    labels' names (counted over the block in C)."""
    docs: dict[int, bytes] = {}
    find = SYSLOG_LABELS
    for i, line in enumerate(lines):
        at = line.find(find)
        if at >= 0:
            doc = _syslog_doc(line, at, derived)
            if doc is None:
                try:
                    doc = encode_line(line).body
                except BadLine:
                    return None
            if doc is not line:
                docs[i] = doc
    return docs


def _syslog_doc(line: bytes, at: int, derived: bool = True) -> bytes | None:
    """``line`` with the facility and severity labels inserted after its priority, found at
    ``at``: event.derive_syslog_labels' rule in bytes. ``line`` itself where the rule changes
    nothing; None where bytes cannot tell (the per-line path decides)."""
    if line.find(SYSLOG_LABELS, at + 1) >= 0:
        return None  # which one is the event's labels?
    m = _SYSLOG_PRI.match(line, at + len(SYSLOG_LABELS))
    if m is None:
        return None  # not a plain integer (a float, a string, spaces): decoded, one by one
    end = m.end(1)
    if line.startswith(SYSLOG_STORED, end):
        return line  # stored with the labels (before 17d4f60): as it is
    pri = int(m[1])
    if pri >= 192 or derived and any(key in line for key in SYSLOG_DERIVED):
        return None
    try:
        labels = _decode_labels(line).labels
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    # the event's own labels, not an object of that name nested in another field
    if not line.startswith(bytes(labels), at + len(b'"labels":')):
        return None
    return line[:end] + SYSLOG_TAILS[pri] + line[end:]


async def encode_stepwise(data: bytes, limit: int | None = None,
                          max_events: int | None = None) -> Block | None:
    """:func:`encode_block` on the event loop, a step of ~STEP_BYTES at a time, yielding
    between steps. In a thread the same work (~20 ms of GIL per 5000 book packets) made the
    loop wait up to a switch interval (5 ms) for the GIL after each of its own system calls,
    20-35 ms per iteration at p99; here nothing competes for the GIL and the loop's other
    callbacks run between steps."""
    blocks: list[Block] = []
    taken = start = 0
    while start < len(data) and (max_events is None or taken < max_events):
        cut = data.find(b"\n", start + STEP_BYTES) + 1 or len(data)
        piece = data[start:cut]
        block = encode_block(piece, limit, None if max_events is None else max_events - taken)
        if block is None:  # nothing more durable yet
            break
        blocks.append(block)
        taken += len(block.seqs) + len(block.unreadable)
        if block.end < len(piece):  # cut short by limit or max_events
            break
        start = cut
        if start < len(data):
            await asyncio.sleep(0)
    return join_blocks(blocks)


def join_blocks(blocks: list[Block]) -> Block | None:
    """Consecutive blocks -> one (their bodies joined: one request)."""
    if len(blocks) <= 1:
        return blocks[0] if blocks else None
    out = Block([], [], b"", 0, received_ms=next((b.received_ms for b in blocks if b.seqs), None))
    bodies = []
    for b in blocks:
        base = len(out.seqs)
        out.docs.update(zip(map(base.__add__, b.docs), b.docs.values(), strict=True))  # no Python per doc
        out.seqs += b.seqs
        out.lines += b.lines
        out.unreadable += b.unreadable
        out.end += b.end
        bodies.append(b.body)
    out.body = b"".join(bodies)
    return out


def _encode_lines(lines: list[bytes], limit: int | None) -> Block | None:
    """The per-line path: any line, derived fields, wrapped free-form fields, damage."""
    block = Block([], [], b"", 0)
    parts: list[bytes] = []
    end = 0
    for raw in lines:
        try:
            enc = encode_line(raw)
        except BadLine as exc:
            block.unreadable.append((raw, str(exc)))
        else:
            if limit is not None and enc.seq > limit:
                break  # written but not yet fsynced: wait
            if not block.seqs:
                block.received_ms = enc.received_ms
            if enc.body is not raw:
                block.docs[len(block.seqs)] = enc.body
            block.seqs.append(enc.seq)
            block.lines.append(raw)
            parts += (action(enc.seq), enc.body, b"\n")
        end += len(raw) + 1
    if end == 0:
        return None
    block.body, block.end = b"".join(parts), end
    return block


def _fits(raw: msgspec.Raw) -> bool:
    """Absent, null or an object: what a flattened field takes as it is."""
    head = bytes(memoryview(raw)[:1])
    return head in (b"", b"{") or bytes(raw) == b"null"


def document(event: dict[str, Any]) -> dict[str, Any]:
    """The ``_source`` for one stored event whose free-form fields need wrapping, or whose
    syslog labels need what their priority implies."""
    labels = event.get("labels")
    if labels.__class__ is dict:
        event["labels"] = derive_syslog_labels(labels)
    for name in FREE_FORM_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, dict):
            event[name] = {"value": value}
    return event


def _dumps(value: Any) -> bytes:
    """orjson's JSON, or msgspec's where orjson stops (nested past 254 levels: ingest lets
    params reach 256, and a book packet's request is not limited): the cluster refuses
    what it cannot map, one item in the dead letters; it must not stop the sink."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return msgspec.json.encode(value)


def encode_line(line: bytes) -> Encoded:
    """One stored line (without its newline) -> its bulk action; raises BadLine."""
    try:
        head = _decode_head(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise BadLine(f"not an event object with an integer seq: {exc}") from None
    try:
        return _encode_head(line, head)
    except (orjson.JSONDecodeError, RecursionError) as exc:  # nested ~1000 levels or more
        raise BadLine(f"nested too deep to send: {exc}") from None


def _encode_head(line: bytes, head: _Head) -> Encoded:
    body = line
    syslog = memoryview(head.labels)[:len(SYSLOG_HEAD)] == SYSLOG_HEAD
    if head.method is None and head.path is None and memoryview(head.message)[:2] == b'"{':
        # a book packet stored unparsed (ingest/book_block.py): send the request's fields too
        if not head.params and head.key is None and head.trace_id is None and _fits(head.labels) \
                and not syslog:
            # none of them on the line yet: append them, leave the stored bytes as they are
            fields = derive_request({"message": orjson.loads(memoryview(head.message))})
            del fields["message"]
            if fields:
                body = line[:-1] + b"," + _dumps(document(fields))[1:]
        else:
            body = _dumps(document(derive_request(loads_exact(line))))  # exact digits past 64 bits
    elif syslog or not (_fits(head.params) and _fits(head.labels)):
        body = _dumps(document(loads_exact(line)))
    received = head.received_at if isinstance(head.received_at, int) else head.timestamp
    return Encoded(head.seq, received if isinstance(received, int) else None, body)
