"""The book's wire protocol: one JSON object per packet, each followed by ``¶``.

Like h11, this module does no I/O: connections feed it bytes and get frames
back, so the same code serves the mesh, the logs service and the tests.

Facts that shaped it (DESIGN.md §1): the delimiter is the two bytes ``C2 B6``,
so we split bytes, never decoded text (a read can cut a multi-byte character or
the delimiter itself); a ``¶`` inside a string must travel escaped as
``\\u00b6`` or it would split the frame for every receiver, Node ones included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

DELIMITER = "¶".encode()  # b"\xc2\xb6"
_ESCAPED = b"\\u00b6"
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024  # frames larger than this are skipped up to the next ¶
# bytes.split with a two-byte separator scans byte by byte; re splits 300 frames of a 64 KB read
# in half the time (bench/notes/ingest.md). Both still read every byte at ~0.7 ns, where memchr
# for the delimiter's second byte, b"\xb6", reads ASCII text ~50x faster: split_frames' way.
_split = re.compile(re.escape(DELIMITER)).split
_B6 = DELIMITER[1:]  # a continuation byte: only non-ASCII text holds it outside a delimiter
_LEAD = DELIMITER[0]
_SMALL_FRAME = 2048  # a first frame shorter than this: the read holds many, re splits them faster
_MISSES = 16  # b"\xb6" found outside a delimiter this often (non-ASCII text): re for the rest


def split_frames(data: bytes) -> list[bytes]:
    """``data`` split at each ``¶``, as ``_split`` splits it, for less: a shipper's batch is one
    frame of ~100-500 KB, which ``_split`` and the ``DELIMITER in`` before it read byte by
    byte (~0.6 µs of the logs service's ~13 a request in process, docs/benchmarks.md "with
    shipping on, tenth part"). Here memchr finds each ``b"\xb6"``, and one preceded by ``b"\xc2"`` is a delimiter
    (a lead byte is never a continuation byte, so the pair is ``¶`` wherever it lies); reads of
    many small frames, or of text full of ``b"\xb6"``, go to ``_split`` (a Python step a frame
    would cost more)."""
    find = data.find
    i = find(_B6)
    if i < 0:
        return [data]
    if i < _SMALL_FRAME:
        return _split(data)
    parts = []
    start = misses = 0
    while i >= 0:
        if data[i - 1] == _LEAD:  # i > 0 here: i >= _SMALL_FRAME first, then > start
            parts.append(data[start:i - 1])
            start = i + 1
        else:
            misses += 1
            if misses > _MISSES:
                return parts + _split(data[start:])  # start follows a delimiter: the same split
        i = find(_B6, i + 1)
        if i >= 0 and i - start < _SMALL_FRAME and parts:
            return parts + _split(data[start:])  # small frames behind the big one
    parts.append(data[start:])
    return parts


class ProtocolError(Exception):
    """A peer sent something we cannot use; the connection may go on."""


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame we could not use: counted, logged by the caller, never fatal."""

    reason: str  # "too_large" | "bad_utf8" | "bad_json" | "not_object"
    nbytes: int
    detail: str = ""
    head: bytes = b""  # too_large: the frame's first bytes, to answer an acked batch by its key


def encode(packet: Any) -> bytes:
    """Serialise one packet with its delimiter.

    JSON only ever contains ``¶`` inside strings, so replacing every raw
    occurrence with its escape is exact and keeps Node receivers alive.
    """
    return escape_frame(orjson.dumps(packet))


def encode_many(packets: list[Any]) -> bytes:
    """Serialise packets for one socket write (coalescing is cheaper than many writes)."""
    return b"".join(encode(p) for p in packets)


def escape_frame(raw: bytes) -> bytes:
    """Make already-encoded JSON safe to send as one frame. The ``¶``'s second byte is looked
    for first: memchr finds its absence at once in the common ASCII frame, where ``DELIMITER
    in`` scans with a two-byte needle."""
    if b"\xb6" in raw and DELIMITER in raw:
        raw = raw.replace(DELIMITER, _ESCAPED)
    return raw + DELIMITER


class FrameSplitter:
    """Incremental splitter: bytes in, complete raw frames out.

    ``bytes.split``/``bytearray.find`` do the scanning in C; a partial frame
    is kept in a bytearray so a slow peer costs amortised O(n), and the scan
    restarts one byte before the new data so a delimiter cut across two reads
    is still found. Frames over ``max_frame_bytes`` are dropped up to the next
    delimiter and reported as :class:`BadFrame`, with their first ``HEAD_BYTES``
    (where a shipper's batch names its ``key`` and ``ack``: the logs service
    refuses it by that key instead of leaving it unanswered).
    """

    __slots__ = ("max_frame_bytes", "_buf", "_skipping", "_skipped", "_head", "clean", "newline")

    HEAD_BYTES = 256

    # A partial frame may hold one byte over the limit: the first half of a delimiter cut
    # across reads, after a frame of exactly max_frame_bytes (which is allowed).
    _PARTIAL_SLACK = len(DELIMITER) - 1

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._skipping = False  # inside an oversized frame, dropping until the next ¶
        self._skipped = 0
        self._head = b""  # the first bytes of the frame being skipped
        self.clean = True  # the last feed() returned frames only, no BadFrame
        self.newline = True  # a frame the last feed() returned may hold a raw b"\n"

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame (for flow control and limits)."""
        return len(self._buf)

    def held(self) -> tuple[int, bytes]:
        """The unfinished frame: its size so far and its first ``HEAD_BYTES`` (a client whose
        request timed out asks whether its peer began the reply and never ended it)."""
        if self._skipping:
            return self._skipped + len(self._buf), self._head
        return len(self._buf), bytes(self._buf[: self.HEAD_BYTES])

    def drop_held(self) -> None:
        """Forget the unfinished frame (its sender will never end it): the next bytes start a
        new one, instead of being glued to it and lost with it."""
        self._buf = bytearray()
        self._skipping, self._skipped, self._head = False, 0, b""

    def feed(self, data: bytes) -> list[bytes | BadFrame]:
        if self._buf:
            scan_from = len(self._buf) - 1
            self._buf += data
            # memchr first: the new bytes of an ASCII frame hold no b"\xb6" unless it ends there
            if _B6 not in data or self._buf.find(DELIMITER, scan_from) < 0:
                return self._hold_partial()
            data = bytes(self._buf)
            self._buf.clear()
            parts = split_frames(data)
        else:
            parts = split_frames(data) if _B6 in data else [data]
            if len(parts) == 1:
                self._buf += data
                return self._hold_partial()
        self.newline = b"\n" in data  # memchr: lets callers skip counting newlines frame by frame
        tail = parts.pop()
        limit = self.max_frame_bytes
        if not self._skipping and parts and b"" not in parts and max(map(len, parts)) <= limit:
            out: list[bytes | BadFrame] = parts  # the common case, checked in C: no per-frame loop
        else:
            out = self._screen(parts, limit)
        if tail:
            self._buf += tail
            if len(self._buf) > limit + self._PARTIAL_SLACK:
                self._start_skipping()
        self.clean = out is parts  # every item is a frame: callers may skip their BadFrame check
        return out

    def _screen(self, parts: list[bytes], limit: int) -> list[bytes | BadFrame]:
        """Drop empty frames, turn oversized ones (and the end of a skipped one) into BadFrames."""
        out: list[bytes | BadFrame] = []
        if self._skipping:
            first = parts[0]
            parts[0] = b""
            self._skipping = False
            out.append(BadFrame("too_large", self._skipped + len(first), "frame exceeds max size",
                                self._head))
            self._skipped, self._head = 0, b""
        for part in parts:
            if not part:
                continue  # "¶¶": an empty frame is nothing, never a reason to drop the rest
            if len(part) > limit:
                out.append(BadFrame("too_large", len(part), f"frame of {len(part)} bytes exceeds {limit}",
                                    part[: self.HEAD_BYTES]))
                continue
            out.append(part)
        return out

    def _hold_partial(self) -> list[bytes | BadFrame]:
        self.clean = True
        if self._skipping or len(self._buf) > self.max_frame_bytes + self._PARTIAL_SLACK:
            self._start_skipping()
        return []

    def _start_skipping(self) -> None:
        if not self._skipping:  # the buffer starts with the frame: keep its head
            self._head = bytes(self._buf[: self.HEAD_BYTES])
        # Keep the last byte: it may be the first half of the delimiter.
        keep = self._buf[-1:] if self._buf[-1:] == DELIMITER[:1] else b""
        self._skipped += len(self._buf) - len(keep)
        self._buf = bytearray(keep)
        self._skipping = True


# An escaped backslash (skipped whole, so the text after it is not read as an escape), a
# surrogate pair, or a lone surrogate escape: only the last is replaced.
_SURROGATE_ESCAPES = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _lone_to_replacement(m: re.Match[bytes]) -> bytes:
    s = m.group()
    return s if len(s) in (2, 12) else b"\\ufffd"


def replace_lone_surrogates(raw: bytes) -> bytes | None:
    """``raw`` with each lone UTF-16 surrogate escape (``\\ud800``) made U+FFFD, or None if none.

    Node's ``JSON.stringify`` writes a string holding half a surrogate pair
    (a cut emoji, say) as such an escape; it is valid JSON syntax but no
    Unicode text, and orjson and msgspec refuse it. Browsers and Python's
    ``json`` read it as U+FFFD or keep it; we make it U+FFFD, on the error
    path only, so a Node service's packet is not lost for half a character.
    """
    if b"\\u" not in raw:
        return None
    fixed = _SURROGATE_ESCAPES.sub(_lone_to_replacement, raw)
    return fixed if fixed != raw else None


_DIGITS = bytes.maketrans(b"123456789", b"000000000")
# 2**64 has 20 digits, -2**63 - 1 a minus and 19: orjson keeps every shorter integer exactly, and
# a positive one of 19 digits (a timestamp in nanoseconds, a snowflake id) is below 2**64 - 1
_WIDE, _WIDE_NEGATIVE = b"0" * 20, b"-" + b"0" * 19
# orjson's int range (i64 and u64): a wider integer is kept as its digits (ingest/shipped.py too)
INT_MIN, UINT_MAX = -(2 ** 63), 2 ** 64 - 1


def wide_digits(raw: bytes | str) -> bool:
    """Whether ``raw`` holds a run of 20 digits, or a minus and 19, as an integer past 64 bits needs.

    One ``translate`` and two ``find`` (C, no parse); a digit run inside a string
    also answers True, which only costs the exact (slower) read. Nanosecond
    timestamps (19 digits) do not: a body of them keeps orjson's speed.
    """
    if isinstance(raw, str):
        raw = raw.encode()
    shape = bytes(raw).translate(_DIGITS)
    return _WIDE in shape or _WIDE_NEGATIVE in shape


def _exact_int(digits: str) -> int | str:
    value = int(digits)
    return value if INT_MIN <= value <= UINT_MAX else digits


def exact_read(raw: bytes | str) -> Any:
    """``raw`` (JSON orjson has read) read again with every integer past 64 bits as its digits.

    orjson reads such an integer as a float (123456789012345678901234567890 became
    1.2345678901234568e+29: an acked value changed) and cannot write one back, so
    the event keeps the exact digits as a string, as VictoriaLogs keeps every
    value's text. Python's ``json`` parses here: slower, and only text that
    :func:`wide_digits` flags comes here.
    """
    try:
        return json.loads(raw, parse_int=_exact_int)
    except (ValueError, RecursionError) as exc:  # nothing orjson read; said as orjson says it
        text = raw.decode(errors="replace") if isinstance(raw, bytes | bytearray | memoryview) else raw
        raise orjson.JSONDecodeError(f"recursion limit or unreadable JSON: {exc}", str(text), 0) from None


def loads_exact(raw: bytes | str) -> Any:
    """``orjson.loads`` keeping an integer past 64 bits exact (as its digits, :func:`exact_read`).

    Every ingest path reads a document with this (or screens a whole body with
    :func:`wide_digits` once and calls :func:`exact_read` only when it answers True).
    """
    value = orjson.loads(raw)
    return exact_read(raw) if wide_digits(raw) else value


def loads(raw: bytes | str) -> Any:
    """:func:`loads_exact`, reading a lone surrogate escape as U+FFFD (:func:`replace_lone_surrogates`)."""
    try:
        return loads_exact(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        fixed = replace_lone_surrogates(raw.encode() if isinstance(raw, str) else raw)
        if fixed is None:
            raise
        return loads_exact(fixed)


def parse_frame(raw: bytes) -> dict | BadFrame:
    """Decode one raw frame into a packet dict, or say why it is unusable."""
    try:
        obj = loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        reason = "bad_utf8" if "UTF-8" in msg or "utf-8" in msg else "bad_json"
        return BadFrame(reason, len(raw), msg)
    if not isinstance(obj, dict):
        return BadFrame("not_object", len(raw), f"expected a JSON object, got {type(obj).__name__}")
    return obj


class FrameDecoder:
    """Splitter plus JSON decoding: bytes in, ``(raw, packet)`` or :class:`BadFrame` out."""

    __slots__ = ("splitter", "errors")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.splitter = FrameSplitter(max_frame_bytes)
        self.errors: dict[str, int] = {}

    def feed(self, data: bytes) -> list[tuple[bytes, dict] | BadFrame]:
        out: list[tuple[bytes, dict] | BadFrame] = []
        for item in self.splitter.feed(data):
            if isinstance(item, BadFrame):
                self._count(item)
                out.append(item)
                continue
            packet = parse_frame(item)
            if isinstance(packet, BadFrame):
                self._count(packet)
                out.append(packet)
            else:
                out.append((item, packet))
        return out

    def _count(self, bad: BadFrame) -> None:
        self.errors[bad.reason] = self.errors.get(bad.reason, 0) + 1


def reply_key(packet: dict) -> Any:
    """Where the book's gateway keeps its correlation key: ``params.key``, else ``key``."""
    params = packet.get("params")
    if isinstance(params, dict) and "key" in params:
        return params["key"]
    return packet.get("key")


@dataclass(frozen=True)
class Node:
    """One entry of the distributor's list, as every reader of it needs it."""

    name: str
    host: str
    port: int
    urls: tuple[str, ...]

    @property
    def addr(self) -> tuple[str, int]:
        return self.host, self.port


def parse_nodes(items: Any) -> list[Node]:
    """The distributor's list, read once for the gateway, the shippers and the logs service.

    It is whatever JSON the distributor relays (the book's Node distributor
    checks nothing), so an entry without a usable port is left out here rather
    than raising in each reader; a missing host is this machine, as in the book.
    An instance listed twice (the book's distributor keys by connection: a quick
    restart, a second registration) is one node, its later entry: the gateway
    weighed it twice, the mesh view drew it twice.
    """
    nodes: list[Node] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        port = item.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            continue
        urls = item.get("urls")
        nodes.append(Node(name=str(item.get("name") or ""), host=str(item.get("host") or "127.0.0.1"),
                          port=port, urls=tuple(u for u in urls if isinstance(u, str))
                          if isinstance(urls, list) else ()))
    latest = {(n.host, n.port): n for n in nodes}
    return list(latest.values()) if len(latest) < len(nodes) else nodes
