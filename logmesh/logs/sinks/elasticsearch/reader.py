"""Which stored lines the sink sends next: this worker's segments, in order, after a position.

Blocking file I/O (the sink calls :meth:`SegmentReader.take` in a thread, then
encodes what it read on its loop, stepwise: encode.py), and the :class:`Batch`
made of that, ready to send. It follows the writer: the active segment as it
grows, the next one after rotation, a segment compacted away or deleted by
retention (logged), a segment cut back by crash recovery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ...store import catalogue, layout
from ...store.reader import read_complete
from .encode import Block, encode_block

log = logging.getLogger("logmesh.sinks.elasticsearch")

GUESS_LINE_BYTES = 512  # before the lines' size is known: what the first read expects of each


@dataclass
class Batch:
    segment: str
    end: int  # offset just after the last line taken
    block: Block

    @property
    def events(self) -> int:
        return len(self.block.seqs)


class SegmentReader:
    def __init__(self, data_dir: Path, worker: int, name: str, batch_bytes: int) -> None:
        self.data_dir, self.worker, self.name = Path(data_dir), worker, name
        self.batch_bytes = batch_bytes
        self._line_bytes = 0.0  # mean stored line length seen: how much to read for N events

    def _segments(self) -> list[tuple[int, str]]:
        """This worker's segment names as (first_seq, name), oldest first."""
        return [(f.first_seq, f.path.name) for f in catalogue.segment_files(self.data_dir, self.worker)]

    def _later(self, segment: str) -> list[tuple[int, str]]:
        first = int(layout.SEGMENT_RE.match(segment).group(2))  # type: ignore[union-attr]
        return [(s, n) for s, n in self._segments() if s > first]

    def _read_size(self, max_events: int) -> int:
        """Enough bytes for ``max_events`` lines of the mean length seen, within batch_bytes:
        reading 5 MB to send 300 kB cost more than the send."""
        line = self._line_bytes * 1.1 or GUESS_LINE_BYTES
        return int(min(self.batch_bytes, max(4096, line * max_events)))

    def read(self, read: tuple[str | None, int], limit: int | None,
             max_events: int) -> tuple[Batch | None, tuple[str | None, int]]:
        """A batch from ``read`` (events up to seq ``limit``) and the position after it,
        encoded here (lag's one-event peek; the sink encodes on its loop, stepwise)."""
        segment, offset, data = self.take(read, max_events)
        block = encode_block(data, limit, max_events) if data else None
        if block is None or segment is None:  # nothing (durable) yet
            return None, (segment, offset)
        batch = self.batch(segment, offset, block)
        return batch, (segment, batch.end)

    def batch(self, segment: str, offset: int, block: Block) -> Batch:
        """The batch of ``block``, encoded from the bytes :meth:`take` read at ``offset``."""
        taken = len(block.seqs) + len(block.unreadable)
        self._line_bytes = block.end / taken if taken else self._line_bytes
        return Batch(segment, offset + block.end, block)

    def take(self, read: tuple[str | None, int], max_events: int) -> tuple[str | None, int, bytes]:
        """(segment, offset, whole lines from there): the next bytes after ``read`` (b"": none)."""
        seg_dir = self.data_dir / layout.SEGMENTS_DIR
        segment, offset = read
        while True:
            if segment is None or not (seg_dir / segment).exists():
                later = self._segments() if segment is None else self._later(segment)
                if not later:
                    return segment, offset, b""
                if segment is not None:
                    if (self.data_dir / layout.PARQUET_DIR / layout.parquet_name(segment)).exists():
                        # compaction deletes a segment only once every sink has sent it
                        log.info("%s: %s was compacted; going on with %s", self.name, segment,
                                 later[0][1])
                    else:
                        log.warning("%s: segment %s was deleted (retention?) before it was all "
                                    "sent; going on with %s", self.name, segment, later[0][1])
                segment, offset = later[0][1], 0
            path = seg_dir / segment
            size = path.stat().st_size if path.exists() else 0
            if offset > size:  # the file was cut back (recovery of a torn write)
                log.warning("%s: %s is shorter (%d) than the cursor (%d); going on from its end",
                            self.name, segment, size, offset)
                offset = size
            data, _ = read_complete(path, offset, self._read_size(max_events))
            if not data and offset < size:  # a line longer than the guess: read at least one whole
                data, _ = read_complete(path, offset, max(self.batch_bytes,
                                                          layout.MAX_EVENT_BYTES + 4096))
            if data:
                return segment, offset, data
            sealed = path.with_name(layout.index_name(segment)).exists()
            if not sealed or offset < path.stat().st_size:
                return segment, offset, b""  # the active segment: wait for more
            later = self._later(segment)
            if not later:
                return segment, offset, b""
            segment, offset = later[0][1], 0
