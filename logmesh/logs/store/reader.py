"""Reading a segment's events from an offset.

Readers never coordinate with writers: a segment's bytes up to its last
newline are complete events (the writer only appends whole groups), sealed
segments have an index beside them, and the one active segment per worker
has none yet.
"""

from __future__ import annotations

from pathlib import Path

import orjson

# Which segments there are is the catalogue's to say; these names stay importable from here,
# where the tests and bench/ have always found them.
from .catalogue import SegmentInfo as SegmentInfo
from .catalogue import list_segments as list_segments


def read_complete(path: Path, offset: int = 0, max_bytes: int = 8 * 1024 * 1024) -> tuple[bytes, int]:
    """Bytes of whole lines from ``offset`` (at most ~max_bytes, but a whole line longer than
    that, else a reader never gets past it); returns (data, next offset)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(max_bytes)
            end = data.rfind(b"\n") + 1
            while not end and len(data) >= max_bytes:  # no line ends within max_bytes: read on
                more = f.read(max_bytes)
                nl = more.find(b"\n")
                end = len(data) + nl + 1 if nl >= 0 else 0
                data += more
                if not more:
                    break
    except FileNotFoundError:
        return b"", offset
    return data[:end], offset + end


def iter_events(path: Path, offset: int = 0, max_bytes: int = 8 * 1024 * 1024):
    """Yield ``(event_dict, offset_after)`` for whole lines from ``offset`` (one read)."""
    data, _ = read_complete(path, offset, max_bytes)
    pos = 0
    for line in data.splitlines(keepends=True):
        pos += len(line)
        yield orjson.loads(line), offset + pos
