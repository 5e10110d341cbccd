"""A segment's index: what a reader needs to skip a segment (its seq and time range, and a
sparse [seq, ts, offset] list) and to count it without reading it (events per service), kept
by the writer as it appends, rebuilt by recovery from the lines, and written beside the
segment as ``.idx.json`` when it is sealed (layout.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from . import layout

# A sealed index's fields that readers take as integers: absent is allowed (older formats lack
# some), another type is not (``bytes: "many"`` made every search 500 until compaction: the
# live view summed it as a number; found from outside). ``sparse`` is not read at all.
_INTEGERS = ("version", "first_seq", "last_seq", "count", "min_ts", "max_ts", "bytes", "longest")
_COUNTS = ("count", "bytes", "longest")  # and not negative


def read_sealed(raw: bytes) -> dict[str, Any]:
    """A sealed ``.idx.json``'s content; ValueError when it is not JSON or not an index's
    shape, so callers take it as unreadable (recovery rebuilds it from the lines)."""
    index = orjson.loads(raw)
    if index.__class__ is not dict:
        raise ValueError(f"an index is a JSON object, not {type(index).__name__}")
    for name in _INTEGERS:
        value = index.get(name)
        if value is not None and (value.__class__ is not int or name in _COUNTS and value < 0):
            raise ValueError(f"{name} {str(value)[:40]} is not a count")
    if not services_ok(index.get("services")):
        index.pop("services", None)  # counted from the lines instead (older indexes have none either)
    return index


def services_ok(services: Any) -> bool:
    """``services`` is an index's events per service: {name: count >= 0}."""
    return services.__class__ is dict and all(
        n.__class__ is int and n >= 0 for n in services.values())


@dataclass
class SegmentIndex:
    """What a reader needs to skip a segment: written beside it when sealed."""

    first_seq: int
    last_seq: int = -1
    count: int = 0
    min_ts: int = 0
    max_ts: int = 0
    bytes: int = 0
    sparse: list[list[int]] = field(default_factory=list)  # [seq, ts, offset] about every SPARSE_EVERY
    longest: int = 0  # its largest write (or line): no line is longer (store/long_lines.py)
    next_sparse: int = 0  # event count at which the next sparse entry is due
    # events per service.name (those without one are count - their sum): what /api/v1/stats
    # reads instead of the lines (Engine.stats, query/engine.py)
    services: dict[str, int] = field(default_factory=dict)

    def add(self, seq: int, ts: int, offset: int, nbytes: int = 0, service: str | None = None) -> None:
        self.add_block(seq, seq, 1, ts, ts, ts, offset, nbytes)
        if service is not None:
            self.services[service] = self.services.get(service, 0) + 1

    def add_services(self, services: dict[str, int]) -> None:
        mine = self.services
        for name, n in services.items():
            mine[name] = mine.get(name, 0) + n

    def add_block(self, first: int, last: int, count: int, min_ts: int, max_ts: int,
                  first_ts: int, offset: int, nbytes: int = 0) -> None:
        """Account ``count`` events of ``nbytes`` starting at byte ``offset``; sparse entries fall
        on block starts."""
        if nbytes > self.longest:
            self.longest = nbytes
        if self.count >= self.next_sparse:
            self.sparse.append([first, first_ts, offset])
            self.next_sparse = self.count + layout.SPARSE_EVERY
        if self.count == 0 or min_ts < self.min_ts:
            self.min_ts = min_ts
        if max_ts > self.max_ts:
            self.max_ts = max_ts
        self.last_seq = last
        self.count += count

    def to_json(self, sparse: bool = True) -> bytes:
        """The sealed index; ``sparse=False``: less the sparse list (the live counts)."""
        out = {"version": layout.SEGMENT_FORMAT_VERSION, "first_seq": self.first_seq,
               "last_seq": self.last_seq, "count": self.count, "min_ts": self.min_ts,
               "max_ts": self.max_ts, "bytes": self.bytes, "longest": self.longest,
               "services": self.services}
        if sparse:
            out["sparse"] = self.sparse
        return orjson.dumps(out)
