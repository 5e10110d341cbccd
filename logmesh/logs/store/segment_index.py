"""A segment's index: what a reader needs to skip a segment (its seq and time range, and a
sparse [seq, ts, offset] list), kept by the writer as it appends, rebuilt by recovery from
the lines, and written beside the segment as ``.idx.json`` when it is sealed (layout.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from . import layout


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

    def add(self, seq: int, ts: int, offset: int, nbytes: int = 0) -> None:
        self.add_block(seq, seq, 1, ts, ts, ts, offset, nbytes)

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

    def to_json(self) -> bytes:
        return orjson.dumps({"version": layout.SEGMENT_FORMAT_VERSION, "first_seq": self.first_seq,
                             "last_seq": self.last_seq, "count": self.count, "min_ts": self.min_ts,
                             "max_ts": self.max_ts, "bytes": self.bytes, "longest": self.longest,
                             "sparse": self.sparse})
