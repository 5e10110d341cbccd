"""A body's stored lines built from columns, for the foreign HTTP protocols (otlp.py, loki.py).

A Python ``Event`` per record, built with keywords, cost ~1 µs of the ~2.5 µs
an OTLP or Loki record took. Here the records of one resource, scope or
stream are a *run*: a column per stored field -- a value every record shares
(the received time, the service, the logger) or a list with one per record
(timestamp, level, message, ids). At :meth:`LineBlock.encode` each record
becomes a :class:`Line` (built positionally by ``map``: C, no Python loop)
and msgspec encodes every line of the body in one ``encode_lines`` call. A
group the columns do not cover (attributes, a body that is not a string, a
timestamp out of range) is a list of Events, encoded in the same call, in
place, so the lines keep the body's order and an Event's mapping stays the
one rule for anything unusual.

Seqs are given only by :meth:`LineBlock.encode`, once the body is known
good, so a refused body uses none.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import msgspec

from ..event import Event
from ..store.live_counts import service_counts

_encode_lines = msgspec.json.Encoder().encode_lines


class Line(msgspec.Struct, omit_defaults=True, gc=False):
    """A stored line of a run: the fields of :class:`~logmesh.logs.event.Event` the foreign
    protocols set, in its order and with its names, so both encode alike; positional, so
    that ``map`` makes a run's lines. ``message`` may be a JSON literal as it came (Raw),
    ``labels`` a dict or the labels object's JSON text."""

    seq: int
    timestamp: int = msgspec.field(name="@timestamp")
    received_at: int
    service_name: str | None = msgspec.field(default=None, name="service.name")
    service_instance: str | None = msgspec.field(default=None, name="service.instance")
    level: str | None = msgspec.field(default=None, name="log.level")
    logger: str | None = msgspec.field(default=None, name="log.logger")
    message: str | msgspec.Raw | None = None
    trace_id: str | None = msgspec.field(default=None, name="trace.id")
    labels: Any = None  # a dict, or the labels object's JSON text (Raw)


_NOT_A_STRING = re.compile(rb'\n[^"]')  # in raws joined by newlines: a value that starts otherwise


def json_strings(raws: list[msgspec.Raw]) -> bool:
    """Every one of ``raws`` (values msgspec skipped as Raw) is a JSON string in UTF-8 (so
    none is empty: an empty Raw is a value left out).

    msgspec's skip checks a string's escapes, surrogate pairs and control characters but
    not its UTF-8, so that is checked here, with the kind, in C passes: joined by newlines
    (which no string holds raw), every value must start and end with a quote.
    """
    joined = b"\n".join(raws)
    if joined[:1] != b'"' or joined[-1:] != b'"' or _NOT_A_STRING.search(joined) is not None:
        return False
    return joined.isascii() or utf8(joined)


def utf8(text: bytes, piece: int = 4096) -> bool:
    """``text``, which holds newlines, is UTF-8: decoded in pieces of ~``piece`` bytes cut
    before a newline (no character spans two), each all-ASCII one skipped. Decoding the
    whole at once cost 3x as much (0.19 against 0.06 µs an event on bench/ingest_http.py's
    OTLP JSON, 2.6% of whose messages hold Korean): one non-ASCII character makes the whole
    string it decodes to two bytes a character."""
    at, end = 0, len(text)
    try:
        while at < end:
            cut = text.find(b"\n", at + piece)
            cut = end if cut < 0 else cut
            chunk = text[at:cut]
            if not chunk.isascii():
                chunk.decode()
            at = cut
    except UnicodeDecodeError:
        return False
    return True


COLUMNS = ("received_at", "service_name", "service_instance", "level", "logger", "message",
           "trace_id", "labels")  # Line's fields after seq and @timestamp
_SERVICE_COLUMN = 1 + COLUMNS.index("service_name")  # in a _Run's columns, after @timestamp


@dataclass(slots=True)
class _Run:
    columns: list[Any]  # @timestamp, then COLUMNS: each a list (one per record) or one value
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

    def add_run(self, stamps: list[int], **columns: Any) -> None:
        """Records whose ``@timestamp`` are ``stamps`` and whose other fields are ``columns``
        (names of :data:`COLUMNS`; a list has a value per record, anything else is shared)."""
        n = len(stamps)
        if not n:
            return
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise TypeError(f"no such column: {sorted(unknown)}")
        short = [name for name, col in columns.items() if col.__class__ is list and len(col) != n]
        if short:  # map() would stop at the shortest: lines lost, yet counted and acknowledged
            raise ValueError(f"columns {short} do not have {n} values")
        self._stamps(min(stamps), max(stamps), stamps[0])
        self.parts.append(_Run([stamps, *(columns.get(name) for name in COLUMNS)], n))
        self.count += n

    def add_events(self, events: list[Event]) -> None:
        if not events:
            return
        stamps = [ev.timestamp for ev in events]
        self._stamps(min(stamps), max(stamps), stamps[0])
        self.parts.append(events)
        self.count += len(events)

    def services(self) -> dict[str, int]:
        """Events per ``service.name``, for the store's counts (store/live_counts.py): a run's
        shared service counted at once, a column of them and an Event list in C."""
        out: Counter[str] = Counter()
        for part in self.parts:
            if part.__class__ is _Run:
                col = part.columns[_SERVICE_COLUMN]
                if col.__class__ is list:
                    out.update(col)
                elif col is not None:
                    out[col] += part.n
            else:
                out.update(service_counts(part))
        out.pop(None, None)  # type: ignore[call-overload]
        return out

    def encode(self, seqs: range) -> bytes:
        """The stored lines, given ``seqs`` (``count`` of them, from the writer's ``reserve``)."""
        lines: list[Any] = []
        at = 0
        for part in self.parts:
            if part.__class__ is _Run:
                n = part.n
                lines += map(Line, seqs[at:at + n], *(
                    col if col.__class__ is list else repeat(col, n) for col in part.columns))
                at += n
            else:
                for ev, seq in zip(part, seqs[at:at + len(part)], strict=True):
                    ev.seq = seq
                lines += part
                at += len(part)
        return _encode_lines(lines)
