"""Reading the store: which segments exist, and their events from an offset.

Readers never coordinate with writers: a segment's bytes up to its last
newline are complete events (the writer only appends whole groups), sealed
segments have an index beside them, and the one active segment per worker
has none yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from . import layout


@dataclass(frozen=True)
class SegmentInfo:
    path: Path
    worker: int
    first_seq: int
    index: dict | None  # None while the segment is active (or before recovery)

    @property
    def sealed(self) -> bool:
        return self.index is not None

    def overlaps(self, start_ms: int | None, end_ms: int | None) -> bool:
        """Could this segment hold events with @timestamp in [start, end]?"""
        if self.index is None:
            return True
        if start_ms is not None and self.index["max_ts"] < start_ms:
            return False
        if end_ms is not None and self.index["min_ts"] > end_ms:
            return False
        return True


def list_segments(data_dir: Path) -> list[SegmentInfo]:
    """Every segment of every worker, ordered by (worker, first seq)."""
    seg_dir = Path(data_dir) / layout.SEGMENTS_DIR
    out = []
    try:
        names = os.listdir(seg_dir)
    except FileNotFoundError:
        return []
    present = set(names)
    for name in names:
        m = layout.SEGMENT_RE.match(name)
        if not m:
            continue
        idx_name = layout.index_name(name)
        index = None
        if idx_name in present:
            try:
                index = orjson.loads((seg_dir / idx_name).read_bytes())
            except (OSError, orjson.JSONDecodeError):
                index = None
        out.append(SegmentInfo(seg_dir / name, int(m.group(1)), int(m.group(2)), index))
    out.sort(key=lambda s: (s.worker, s.first_seq))
    return out


def read_complete(path: Path, offset: int = 0, max_bytes: int = 8 * 1024 * 1024) -> tuple[bytes, int]:
    """Bytes of whole lines from ``offset`` (at most ~max_bytes); returns (data, next offset)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(max_bytes)
    except FileNotFoundError:
        return b"", offset
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end


def iter_events(path: Path, offset: int = 0, max_bytes: int = 8 * 1024 * 1024):
    """Yield ``(event_dict, offset_after)`` for whole lines from ``offset`` (one read)."""
    data, _ = read_complete(path, offset, max_bytes)
    pos = 0
    for line in data.splitlines(keepends=True):
        pos += len(line)
        yield orjson.loads(line), offset + pos
