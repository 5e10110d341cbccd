"""What the active segment holds, counted by its writer: events, time range, events per service.

/api/v1/stats must say how many events there are and of which services while a flood
appends tens of MB a second; reading the new lines to count them cost ~11 ms of CPU a MB
in DuckDB (docs/benchmarks.md, api12), seconds of wall a call. The writer counts each
block's services as it appends it (ingest knows them: an event list, a syslog read's
heads, a book block's one service) and, a short while after a group it writes
(store/segment.py's COUNTS_SAVE_SECONDS, not after each: that cost socket ingest ~4%),
replaces ``<segment>.counts.json`` beside the segment: its index less the sparse list, with
the byte offset it covers. A reader adds only the whole lines past that offset (at most
that while's, and the group being written) and reads no other line.

Sealing writes the same counts into the segment's ``.idx.json`` and removes this file.
It is never fsynced: after a crash it may be stale or gone, so recovery removes it and
rebuilds the index, services included, from the lines it keeps (store/recovery.py). A
reader that finds it unreadable, or not matching the segment (shorter, or another inode:
recovery rewrote it), counts the segment's lines instead.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from ...protocol import wide_digits
from . import layout
from .reader import read_complete
from .recovery import fields, record
from .segment_index import SegmentIndex, services_ok

_service = attrgetter("service_name")


def service_counts(events: list) -> dict[str, int]:
    """Events per ``service_name`` (those without one left out): :func:`name_counts`."""
    return name_counts(list(map(_service, events)))


def name_counts(names: list[str | None]) -> dict[str, int]:
    """How many times each name is in ``names`` (None left out), in C. A block is most often
    one service's (a connection's): ``list.count`` of the first finds that at ~5 ns a name,
    where ``Counter`` takes ~90 (49 against 121 ns an event with the ``map``, at load 10;
    a block of many services costs ~15% more than ``Counter`` alone)."""
    first = names[0] if names else None
    if names.count(first) == len(names):
        return {first: len(names)} if first is not None else {}
    counts = Counter(names)
    counts.pop(None, None)  # type: ignore[call-overload]
    return counts


def counts_path(segment: Path) -> Path:
    return segment.with_name(layout.counts_name(segment.name))


def save(segment: Path, index: SegmentIndex, last_block: bytes) -> None:
    """Replace the segment's counts (write, rename; no fsync: see the module's docstring).

    ``last_block``: the bytes that end at ``index.bytes``. The inode and the last line's
    length and CRC let a reader tell the content they count from a file recovery wrote
    again, or one cut back below them and written on (which the writer never does: it cuts
    a failed write back to what it counted), as query/view.py checks the last line it loaded.
    """
    path = counts_path(segment)
    last = _last_line(last_block)
    body = index.to_json(sparse=False)
    inode = os.stat(segment).st_ino
    tmp = path.with_name(path.name + layout.TMP_SUFFIX)
    with open(tmp, "wb") as f:
        f.write(body[:-1] + b',"inode":%d,"last_line":[%d,%d]}' % (inode, len(last), zlib.crc32(last)))
    os.replace(tmp, path)


def _last_line(data: bytes) -> bytes:
    return data[data.rfind(b"\n", 0, len(data) - 1) + 1:]


def _same_last_line(segment: Path, end: int, saved: Any) -> bool:
    """The line that ends at ``end`` in ``segment`` is the one the counts saw (``saved``:
    [length, CRC-32])."""
    if saved.__class__ is not list or len(saved) != 2 or not all(v.__class__ is int for v in saved):
        return False
    n, crc = saved
    if not 0 < n <= end:
        return False
    with open(segment, "rb") as f:
        f.seek(end - n)
        return zlib.crc32(f.read(n)) == crc


def remove(segment: Path) -> None:
    counts_path(segment).unlink(missing_ok=True)


@dataclass
class Counts:
    """Events of a segment (or part of one): their number, time range and per-service counts."""

    events: int = 0
    min_ts: int | None = None
    max_ts: int | None = None
    services: dict[str, int] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        self.events += other.events
        if other.min_ts is not None:
            self.min_ts = other.min_ts if self.min_ts is None else min(self.min_ts, other.min_ts)
            self.max_ts = other.max_ts if self.max_ts is None else max(self.max_ts, other.max_ts)  # type: ignore[type-var]
        for name, n in other.services.items():
            self.services[name] = self.services.get(name, 0) + n

    @classmethod
    def of_index(cls, index: dict[str, Any]) -> Counts | None:
        """A sealed index's (or the counts file's) counts; None without per-service counts."""
        services = index.get("services")
        if not services_ok(services):
            return None
        out = cls.totals(index)
        if out is not None and out.events:
            out.services = dict(services)  # type: ignore[arg-type]
        return out

    @classmethod
    def totals(cls, index: dict[str, Any]) -> Counts | None:
        """An index's events and time range, no services: those of a segment sealed before
        indexes counted them are counted from its lines. None when ``count`` is no number."""
        count = index.get("count")
        if count.__class__ is not int:
            return None
        if not count:
            return cls()
        return cls(count, index["min_ts"], index["max_ts"])


def count_lines(data: bytes) -> Counts:
    """The counts of whole stored lines, each judged as recovery judges it (a line no reader
    can use is not an event: recovery sets it aside).

    Read by ``orjson.loads`` where that is recovery's reading (protocol.loads): in a chunk
    without a run of digits past 64 bits (``wide_digits``, once for the chunk), of a line
    without a lone surrogate (orjson refuses it: read by ``record``). 3.1 against 4.6 us a
    line for ``record`` on every line (docs/benchmarks.md, review14)."""
    out = Counts()
    services = out.services
    exact = wide_digits(data)
    for line in data.splitlines():
        if exact:
            rec = record(line)
        else:
            try:
                rec = fields(orjson.loads(line))
            except orjson.JSONDecodeError:
                rec = record(line)
        if rec is None:
            continue
        _, ts, svc = rec
        out.events += 1
        if out.min_ts is None or ts < out.min_ts:
            out.min_ts = ts
        if out.max_ts is None or ts > out.max_ts:
            out.max_ts = ts
        if svc is not None:
            services[svc] = services.get(svc, 0) + 1
    return out


TAIL_CHUNK_BYTES = 8 * 1024 * 1024  # lines past the counts are read this much at a time


def active(segment: Path) -> Counts:
    """An active segment's counts: its writer's, and the whole lines written since.

    FileNotFoundError when the segment is gone (compacted or deleted meanwhile: the caller
    lists again)."""
    try:  # read before the segment's size: the bytes it covers are written by then
        saved = orjson.loads(counts_path(segment).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        saved = None
    st = os.stat(segment)  # a segment gone raises here
    counts: Counts | None = None
    offset = 0
    if saved.__class__ is dict:
        covered = saved.get("bytes")
        if saved.get("inode") == st.st_ino and covered.__class__ is int and 0 < covered <= st.st_size \
                and _same_last_line(segment, covered, saved.get("last_line")):
            counts = Counts.of_index(saved)
            offset = covered
    if counts is None:  # none yet (or not this file's): every line is read
        counts, offset = Counts(), 0
    while offset < st.st_size:  # what was written by the stat: a flood is not chased
        data, nxt = read_complete(segment, offset, min(TAIL_CHUNK_BYTES, st.st_size - offset))
        if not data:
            break
        counts.add(count_lines(data))
        offset = nxt
    return counts
