"""The hot path for the chapter's own log packets: a read's frames to stored lines, no event objects.

A book service ships, for every request it served,
``{"uri":"/logs","method":"POST","key":0,"params":"<the request packet, as text>"}``,
and almost every read of such a connection holds nothing else. For those
reads this module checks every packet with two msgspec passes in C (the
envelopes, then their ``params`` strings: JSON syntax, UTF-8, escapes, lone
surrogates) and builds the stored lines by joining bytes. The ``params``
string literal is stored unchanged as ``message``; the fields of the logged
request (method, path, params, key, trace id) are not parsed here at all:
readers derive them from ``message`` (``store/columns.py`` in DuckDB,
:func:`logmesh.logs.event.derive_request` in Python). Parsing them here was
half of the ~2.8 µs of CPU an event cost; this path takes ~1.0
(bench/notes/ingest.md).

Any other read -- an envelope with other fields (``event.id``,
``@timestamp``, ``ack``), ``params`` that is not a string, bad UTF-8, a frame
with a raw newline, a value nested too deep for msgspec, different services
in one read -- gets None and takes the per-packet path, which handles and
counts every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

import msgspec
import orjson

from .common import str_decoder


class BookEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    """The book's log packet; any field beyond these sends the read the per-packet way."""

    uri: Any = None
    method: Any = None
    key: Any = None
    params: msgspec.Raw = msgspec.Raw(b"")
    # Sent by logmesh shippers in book mode before issue 15 (now they send the book's packet only).
    service: str | None = msgspec.field(default=None, name="service.name")


_envelopes = msgspec.json.Decoder(BookEnvelope).decode_lines
_texts = str_decoder.decode_lines
_params, _service = attrgetter("params"), attrgetter("service")  # map() with these: no Python loop


@dataclass(slots=True)
class BookBlock:
    messages: list[msgspec.Raw]  # each a JSON string literal, as it came
    service: str | None  # when the packets named it (all the same)


def parse_block(frames: list[bytes], newline: bool = True) -> BookBlock | None:
    """The read's packets if every one is a plain book log packet, else None.

    ``newline`` False: the caller knows no frame holds a raw ``\\n`` (FrameSplitter.newline).
    """
    n = len(frames)
    joined = b"\n".join(frames)
    if newline and joined.count(b"\n") != n - 1:  # a raw newline in a frame: not one packet a line
        return None
    try:
        envs = _envelopes(joined)
        if len(envs) != n:
            return None
        messages = list(map(_params, envs))
        # Every params a JSON string with valid UTF-8 and escapes? (Raw skips without checking.)
        if len(_texts(b"\n".join(messages))) != n:
            return None
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for bad UTF-8
        return None
    except RecursionError:  # a value nested ~1000 deep: the per-packet path counts it as too_deep
        return None
    services = set(map(_service, envs))
    if len(services) != 1:
        return None
    return BookBlock(messages, services.pop())


def block_head(received: int, source: tuple[str, int], service: str | None) -> bytes:
    """What every line of a block shares, between its ``seq`` and its ``message``."""
    svc = b',"service.name":' + orjson.dumps(service) if service is not None else b""
    return (b',"@timestamp":%d,"received_at":%d,"source.address":%s,"source.port":%d,'
            b'"log.level":"info"%s,"message":' % (received, received, orjson.dumps(source[0]),
                                                  source[1], svc))


def encode_block(messages: list, seqs: range, head: bytes) -> bytes:
    """The stored lines: ``{"seq":S<head><message>}`` each, joined in one C call."""
    n = len(messages)
    parts: list[Any] = [None] * (4 * n)
    parts[0::4] = str(list(seqs))[1:-1].encode().split(b", ")  # n decimal seqs, without a loop
    parts[1::4] = repeat(head, n)
    parts[2::4] = messages
    parts[3::4] = repeat(b'}\n{"seq":', n)
    parts[-1] = b"}\n"
    return b'{"seq":' + b"".join(parts)
