"""A body's stored lines built from byte templates, for the foreign HTTP protocols (otlp.py, loki.py).

A Python ``Event`` per record and msgspec encoding it cost ~1 µs of the ~2.5
µs an OTLP or Loki record took. Here the records of one resource, scope or
stream are a *run*: its lines are columns -- bytes every line shares (the
received time, the service, the logger) and a list with a piece per record
(timestamp, level, message, ids) -- interleaved by slice assignment and
joined by one ``bytes.join`` (C), the way book_block.py builds the book's
lines. A group the template does not cover (attributes, a body that is not
a string, a timestamp out of range) is a list of Events encoded by msgspec,
in place, so the lines keep the body's order and an Event's mapping stays
the one rule for anything unusual.

Seqs are given only by :meth:`LineBlock.encode`, once the body is known
good, so a refused body uses none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import msgspec

from ..event import Event

Column = bytes | list  # bytes every line shares, or a list of bytes, one per line

_encode_lines = msgspec.json.Encoder().encode_lines
encode_texts = msgspec.json.Encoder().encode_lines  # strs -> JSON literals, one a line (no \n inside)


def texts_as_json(texts: list[str]) -> list[bytes]:
    """Each str as its JSON string literal, in one C call (a literal holds no raw newline)."""
    return encode_texts(texts).split(b"\n")[:-1] if texts else []


def ints_as_json(values: list[int]) -> list[bytes]:
    """Each int's decimal bytes, without a Python loop."""
    return str(values)[1:-1].encode().split(b", ") if values else []


@dataclass(slots=True)
class _Run:
    columns: list[Column]  # what follows ``{"seq":N`` in each line, ending with b"}\n"
    n: int


@dataclass
class LineBlock:
    """The stored lines of one body, in order; ``count`` lines, timestamps ``min_ts``..``max_ts``."""

    parts: list[_Run | list[Event]] = field(default_factory=list)
    count: int = 0
    min_ts: int = 0
    max_ts: int = 0
    first_ts: int = 0

    def _stamps(self, lo: int, hi: int, first: int) -> None:
        if not self.count:
            self.min_ts, self.max_ts, self.first_ts = lo, hi, first
        else:
            self.min_ts, self.max_ts = min(self.min_ts, lo), max(self.max_ts, hi)

    def add_run(self, stamps: list[int], columns: list[Column]) -> None:
        """Records whose lines are ``{"seq":N`` + ``columns`` (``b"}\\n"`` last); ``stamps``
        their ``@timestamp`` values (also a column, as the caller places it)."""
        n = len(stamps)
        if not n:
            return
        merged: list[Column] = []
        for col in columns:  # adjacent constants joined once, not once per line
            if col.__class__ is bytes and merged and merged[-1].__class__ is bytes:
                merged[-1] += col
            elif col.__class__ is not bytes or col:
                merged.append(col)
        self._stamps(min(stamps), max(stamps), stamps[0])
        self.parts.append(_Run(merged, n))
        self.count += n

    def add_events(self, events: list[Event]) -> None:
        if not events:
            return
        stamps = [ev.timestamp for ev in events]
        self._stamps(min(stamps), max(stamps), stamps[0])
        self.parts.append(events)
        self.count += len(events)

    def encode(self, seqs: range) -> bytes:
        """The stored lines, given ``seqs`` (``count`` of them, from the writer's ``reserve``)."""
        out: list[bytes] = []
        at = 0
        for part in self.parts:
            if part.__class__ is _Run:
                out.append(_join(ints_as_json(list(seqs[at:at + part.n])), part.columns, part.n))
                at += part.n
            else:
                for ev, seq in zip(part, seqs[at:at + len(part)], strict=True):
                    ev.seq = seq
                out.append(_encode_lines(part))
                at += len(part)
        return b"".join(out)


def _join(seqs: list[bytes], columns: list[Column], n: int) -> bytes:
    k = len(columns) + 2
    parts: list[Any] = [None] * (k * n)
    parts[0::k] = repeat(b'{"seq":', n)
    parts[1::k] = seqs
    for i, col in enumerate(columns, 2):
        parts[i::k] = col if col.__class__ is list else repeat(col, n)
    return b"".join(parts)
