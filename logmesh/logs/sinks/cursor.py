"""A sink's durable position in the store, and its dead-letter file.

Any sink that forwards stored events elsewhere keeps two files per worker
(names in logs/store/layout.py)::

    sinks/<name>.cursor         {"segment", "offset", "last_seq", "deadletter_bytes", ...}
    deadletter/<name>.ndjson    one line per event the destination refused for its content

The commit order makes "exactly once" survive ``kill -9`` at any instant:

1. append the batch's dead letters to the dead-letter file and fsync it;
2. replace the cursor atomically (write_atomic), recording the new position
   *and* the dead-letter file's length.

On start, a dead-letter file longer than the cursor says was written by a
batch whose cursor never landed: it is cut back to that length, and the
batch (which will be sent again) writes its dead letters again.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from ...fsio import write_atomic
from ..store import layout

log = logging.getLogger("logmesh.sinks")

CURSOR_VERSION = 1
CURSOR_SUFFIX = ".cursor"
DEADLETTER_SUFFIX = ".ndjson"


@dataclass
class Position:
    segment: str | None = None  # segment file name; None: before the worker's first segment
    offset: int = 0  # bytes of ``segment`` already delivered
    last_seq: int = -1  # seq of the last event delivered (or dead-lettered)
    deadletter_bytes: int = 0  # length of the dead-letter file at this position
    sent: int = 0  # events delivered so far, over the sink's life (informational)
    deadlettered: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps({"version": CURSOR_VERSION, **asdict(self)})


def cursor_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / layout.SINKS_DIR / f"{name}{CURSOR_SUFFIX}"


def deadletter_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / layout.DEADLETTER_DIR / f"{name}{DEADLETTER_SUFFIX}"


# Each number of a cursor and the least it may be (Position's fields but the segment's name).
_COUNTS = {"offset": 0, "last_seq": -1, "deadletter_bytes": 0, "sent": 0, "deadlettered": 0}


def load_position(path: Path) -> Position:
    """The cursor at ``path`` (none: the start); RuntimeError, saying what to do, when it is
    damaged: not JSON, or JSON of another shape. Either is damage from outside (write_atomic
    never leaves half a file), and the sink's start catches only that, so a cursor read as
    ``[1]`` (AttributeError) or with a text offset (TypeError, later) stopped the whole
    worker at every start; a segment named ``../..`` would have been read."""
    def unreadable(why: str) -> RuntimeError:
        return RuntimeError(f"sink cursor {path} is unreadable ({why}); fix or delete it "
                            "(deleting resends everything, without duplicates)")

    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return Position()
    except (OSError, orjson.JSONDecodeError) as exc:
        raise unreadable(str(exc)) from None
    if not isinstance(raw, dict):
        raise unreadable(f"a JSON {type(raw).__name__}, not an object")
    if raw.get("version") != CURSOR_VERSION:
        raise RuntimeError(f"sink cursor {path} has version {raw.get('version')}, this logmesh "
                           f"reads {CURSOR_VERSION}; upgrade logmesh or delete the cursor")
    segment = raw.get("segment")
    if segment is not None and not (isinstance(segment, str) and layout.SEGMENT_RE.match(segment)):
        raise unreadable(f"segment {str(segment)[:80]!r} is no segment's name")
    for name, least in _COUNTS.items():
        n = raw.get(name, least)
        if n.__class__ is not int or n < least:  # bool is an int's subclass: refused too
            raise unreadable(f"{name} {str(n)[:40]!r} is not a whole number of at least {least}")
    fields = Position.__dataclass_fields__
    return Position(**{k: v for k, v in raw.items() if k in fields})


class SinkState:
    """Cursor + dead-letter file of one sink on one worker. Blocking I/O: call from a thread."""

    def __init__(self, data_dir: Path, name: str) -> None:
        self.segments_dir = Path(data_dir) / layout.SEGMENTS_DIR
        self.cursor_file = cursor_path(data_dir, name)
        self.deadletter_file = deadletter_path(data_dir, name)
        self.position = Position()

    def open(self) -> Position:
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        self.deadletter_file.parent.mkdir(parents=True, exist_ok=True)
        self.position = load_position(self.cursor_file)
        try:
            size = self.deadletter_file.stat().st_size
        except FileNotFoundError:
            size = 0
        keep = self.position.deadletter_bytes
        if size > keep:
            log.info("%s: cutting %d byte(s) of dead letters from an uncommitted batch "
                     "(it is sent again)", self.deadletter_file.name, size - keep)
            with open(self.deadletter_file, "r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
        elif size < keep:  # rotated or removed by someone: count from what is there
            self.position.deadletter_bytes = size
        resync(self.position, self.segments_dir)
        return self.position

    def commit(self, position: Position, deadletters: list[bytes]) -> None:
        """Dead letters first (fsynced), then the cursor (atomically)."""
        if deadletters:
            data = b"".join(line + b"\n" for line in deadletters)
            fd = os.open(self.deadletter_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            position.deadletter_bytes += len(data)
        write_atomic(self.cursor_file, position.to_json())
        self.position = position


_SEQ = re.compile(rb'\{"seq":(\d+)')


def _seq_of(line: bytes) -> int | None:
    m = _SEQ.match(line)
    return int(m.group(1)) if m else None


def resync(position: Position, segments_dir: Path) -> Position:
    """Point ``position`` at the line after ``last_seq`` again, if its segment changed under it.

    Crash recovery rewrites a segment without its damaged lines
    (store/segment.py), which moves every later line to a lower offset; a
    cursor kept by offset alone would then skip events or land mid-line. The
    seq of the last event sent says where to go on; it is checked cheaply
    (the one line before the offset) and the segment is scanned only when it
    does not match.
    """
    if position.segment is None or position.offset == 0 or position.last_seq < 0:
        return position
    path = segments_dir / position.segment
    try:
        with open(path, "rb") as f:
            start = max(0, position.offset - layout.MAX_EVENT_BYTES - 4096)
            f.seek(start)
            tail = f.read(position.offset - start)
    except FileNotFoundError:
        return position
    if tail.endswith(b"\n") and len(tail) == position.offset - start:
        line_start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
        if _seq_of(tail[line_start:]) == position.last_seq:
            return position
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            seq = _seq_of(line)
            if not line.endswith(b"\n") or (seq is not None and seq > position.last_seq):
                break
            offset += len(line)
    log.warning("%s: moved since the cursor was written (recovery?); going on after seq %d at "
                "byte %d instead of %d", position.segment, position.last_seq, offset, position.offset)
    position.offset = offset
    return position


def _first_seq(name: str) -> int:
    m = layout.SEGMENT_RE.match(name)
    return int(m.group(2)) if m else -1


def sent_past(position: Position, segment: str, size: int) -> bool:
    """Has the sink at ``position`` delivered all ``size`` bytes of sealed ``segment``?"""
    if position.segment is None:
        return False
    if position.segment == segment:
        return position.offset >= size
    return _first_seq(position.segment) > _first_seq(segment)


def unsent_by(data_dir: Path, kinds: list[str]):
    """``hold(segment_info) -> bool``: True while a sink of ``kinds`` still has to read it.

    Compaction (store/compact.py) asks before deleting a sealed NDJSON segment,
    so events reach Elasticsearch even when it was down longer than the
    compaction grace. Blocking reads of small files: call from the compaction thread.
    """

    def hold(seg) -> bool:  # seg: store.reader.SegmentInfo
        size = (seg.index or {}).get("bytes")
        if size is None:
            try:
                size = seg.path.stat().st_size
            except FileNotFoundError:
                return False
        for kind in kinds:
            try:
                position = load_position(cursor_path(data_dir, f"{kind}-w{seg.worker:02d}"))
            except RuntimeError:
                return True  # a damaged cursor: keep the data until someone looks
            if not sent_past(position, seg.path.name, size):
                return True
        return False

    return hold
