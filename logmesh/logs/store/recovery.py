"""Crash recovery of a worker's segment stream: what a previous run left, made readable.

At start (SegmentWriter.open) each worker recovers its segments that have no index: the
one a crash (or a full disk while sealing) left unsealed. Every line is judged on its own
with the readers' parser; intact lines are kept, wherever the damage is, and damaged
lines and a torn last write go to ``quarantine/``, never destroyed (docs/durability.md).
It also finds where the stream's seqs go on, from every durable trace of the worker.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ...fsio import fsync_path, write_atomic
from ...protocol import loads
from . import catalogue, layout
from .segment_index import SegmentIndex, read_sealed
from .streams import parquet_highwater, stored_highwater

log = logging.getLogger("logmesh.store")


@dataclass
class Recovery:
    """What recovering one segment found: its index, and what it set aside."""

    index: SegmentIndex
    damaged_lines: int = 0  # lines no reader could use, moved to the quarantine directory
    damaged_bytes: int = 0
    torn_bytes: int = 0  # a last write the crash cut short (never acknowledged)
    untouched: bool = False  # the disk refused the quarantine or the rewrite: left as it was


def record(line: bytes) -> tuple[int, int, str | None] | None:
    """(seq, @timestamp, service.name) of a stored line every reader can read, else None.

    Judged with the readers' parser (orjson, lone surrogates read as U+FFFD),
    so "damaged" means "no reader could use it", nothing stricter.
    """
    try:
        event = loads(line)
    except orjson.JSONDecodeError:
        return None
    return fields(event)


def fields(event: Any) -> tuple[int, int, str | None] | None:
    """:func:`record`'s judgement of a line already parsed."""
    try:
        seq, ts, svc = event["seq"], event["@timestamp"], event.get("service.name")
    except (KeyError, TypeError, AttributeError):
        return None
    if type(seq) is not int or type(ts) is not int or not 0 <= seq < 1 << 63 \
            or not 0 <= ts <= layout.MAX_TIMESTAMP_MS:  # no index could hold it (issue 14)
        return None
    return seq, ts, svc if svc.__class__ is str else None


def recover_segment(path: Path) -> Recovery:
    """Make ``path`` hold only whole, readable lines; set the rest aside, never destroy it.

    A crash can tear the last write (bytes after the last newline: never
    acknowledged, since acks wait for whole groups on disk); a bad disk or a
    stray write can damage any line. Every intact line is kept, wherever the
    damage is; damaged lines and torn bytes go to ``quarantine/`` and are
    counted, and the segment is rewritten without them (write, fsync, rename).
    """
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    first_seq = int(layout.SEGMENT_RE.match(path.name).group(2))  # type: ignore[union-attr]
    result = Recovery(SegmentIndex(first_seq))
    index = result.index
    keep: list[bytes] = []
    bad: list[tuple[int, bytes]] = []
    offset = out = 0
    while offset < end:
        nl = data.index(b"\n", offset)
        line = data[offset:nl + 1]
        rec = record(line)
        if rec is None:
            bad.append((offset, line))
            result.damaged_lines += 1
            result.damaged_bytes += len(line)
        else:
            index.add(rec[0], rec[1], out, len(line), rec[2])
            keep.append(line)
            out += len(line)
        offset = nl + 1
    if end < len(data):
        bad.append((end, data[end:]))
        result.torn_bytes = len(data) - end
    index.bytes = out
    try:
        if bad:
            quarantine(path, bad)
        if result.damaged_lines:
            write_atomic(path, b"".join(keep))  # the intact lines, in order, nothing else
    except OSError as exc:  # a full disk: the file is not changed, nothing counted; the service starts
        log.error("%s: cannot set aside %d damaged line(s) and %d torn byte(s) (%s); the file "
                  "is left as it is, unsealed, and recovered again at the next start", path.name,
                  result.damaged_lines, result.torn_bytes, exc)
        with open(path, "rb") as f:  # its whole lines may be in the page cache only
            os.fsync(f.fileno())
        return Recovery(index, untouched=True)  # index: its seqs, so none is used again
    if result.damaged_lines:
        log.error("%s: %d damaged line(s) (%d bytes) moved to %s/; %d intact event(s) kept",
                  path.name, result.damaged_lines, result.damaged_bytes, layout.QUARANTINE_DIR,
                  index.count)
    if result.torn_bytes:
        log.warning("%s: cut %d torn byte(s) at the end (a write the crash interrupted, never "
                    "acknowledged; kept in %s/)", path.name, result.torn_bytes, layout.QUARANTINE_DIR)
    if not result.damaged_lines:
        with open(path, "r+b") as f:
            if end != len(data):
                f.truncate(end)
            # After a crash the records may be in the page cache only: sync them before the
            # ledger counts them as stored (a resend of them is then acked without a copy).
            os.fsync(f.fileno())
    return result


def quarantine(path: Path, parts: list[tuple[int, bytes]]) -> Path:
    """Keep bytes no reader can use in ``<data>/quarantine/<file>@<offset>``, for a human."""
    qdir = path.parent.parent / layout.QUARANTINE_DIR
    qdir.mkdir(exist_ok=True)
    target = qdir / f"{path.name}@{parts[0][0]}{layout.QUARANTINE_SUFFIX}"
    with open(target, "ab") as f:
        for offset, chunk in parts:
            f.write(b"# offset %d, %d bytes\n" % (offset, len(chunk)))
            f.write(chunk if chunk.endswith(b"\n") else chunk + b"\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_path(qdir)
    return target


@dataclass
class StreamRecovery:
    """What opening one worker's stream found: the last seq it ever used, and what recovery
    set aside (summed over its segments)."""

    last_seq: int = -1
    damaged_lines: int = 0
    damaged_bytes: int = 0
    torn_bytes: int = 0


def _set_aside_if_no_file(path: Path) -> bool:
    """Anything but a file (a directory) where the store keeps a file: moved to the
    quarantine, for a human, so that the start can go on (True); nothing there or a file:
    False. Such a thing stopped the service at every start (IsADirectoryError)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISREG(st.st_mode):
        return False
    target = catalogue.set_aside(path)
    fsync_path(target.parent)
    log.error("%s is not a file: moved to %s/", path.name, layout.QUARANTINE_DIR)
    return True


def _intact(path: Path, sealed: dict, result: StreamRecovery) -> bool:
    """Whether a sealed segment is still the file its index describes (its size).

    Bytes changed in place while the service was stopped are for compaction's reader to
    find; a file cut short, emptied or replaced is found here, at start, where its lost
    events can still be counted: its index says how many there were. A segment that is
    no longer a file (a directory) goes to the quarantine, its index with it.
    """
    if _set_aside_if_no_file(path):
        count = sealed.get("count")
        lost = count if isinstance(count, int) and count > 0 else 0
        idx_path = path.with_name(layout.index_name(path.name))
        try:
            catalogue.set_aside(idx_path)
        except FileNotFoundError:
            pass
        log.error("%s: its index went to %s/ too; its %d event(s) counted as damaged lines",
                  path.name, layout.QUARANTINE_DIR, lost)
        result.damaged_lines += lost
        return False
    try:
        size_now = path.stat().st_size
    except FileNotFoundError:
        return True  # compacted meanwhile by another worker's compactor
    size = sealed.get("bytes")
    return not isinstance(size, int) or size_now >= size


def sealed_last_seq(sealed: Any, first_seq: int) -> int:
    """A sealed index's last seq; ValueError (or KeyError, TypeError) when it is not one this
    segment can hold: an integer from its first seq, by at most MAX_SEGMENT_EVENTS events, and
    within what a file's name holds. A float stopped the worker at every start; 19 digits made
    the next seqs' files nameless to every reader, hiding each event acked after (outside16)."""
    last = sealed["last_seq"]
    most = min(layout.MAX_SEQ, first_seq + (layout.MAX_SEGMENT_EVENTS << layout.WORKER_BITS))
    if last.__class__ is not int or not first_seq <= last <= most:
        raise ValueError(f"last_seq {str(last)[:40]} is not a seq of this segment")
    return last


def recover_stream(data_dir: Path, worker: int) -> StreamRecovery:
    """Recover the unsealed segments a previous run of ``worker`` left, and find where its
    seqs go on.

    The last seq comes from every durable trace of this worker: its segments, its
    Parquet files and the high-water file that sealing keeps. Segments alone are not
    enough: once compaction or retention removed them all, a restart counting from 1
    again would reuse a Parquet file's name, and the compactor would delete the new
    segment as "already compacted" (issue 14). The caller holds the worker's lock.
    """
    data_dir = Path(data_dir)
    for stray in catalogue.tmp_files(data_dir, layout.SEGMENTS_DIR, worker):
        stray.unlink()  # a write_atomic cut short by a crash; the file it replaces is intact
    _set_aside_if_no_file(data_dir / layout.SEGMENTS_DIR / layout.highwater_name(worker))
    result = StreamRecovery(stored_highwater(data_dir, worker))
    for seg in catalogue.segment_files(data_dir, worker):
        path = seg.path
        idx_path = path.with_name(layout.index_name(path.name))
        live_counts_path = path.with_name(layout.counts_name(path.name))
        # the writer's counts of a segment it did not seal (store/live_counts.py): the index
        # below, rebuilt from the lines kept, holds them
        live_counts_path.unlink(missing_ok=True)
        sealed: dict | None = None
        _set_aside_if_no_file(idx_path)  # then recovered as a segment without its index
        if idx_path.exists():
            try:
                sealed = read_sealed(idx_path.read_bytes())
                result.last_seq = max(result.last_seq, sealed_last_seq(sealed, seg.first_seq))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.error("%s: unreadable index; recovering the segment", idx_path.name)
                sealed = None
            else:
                if _intact(path, sealed, result):
                    continue
                if not path.exists():  # not a file: set aside, its index's events counted
                    continue
        # unsealed: the previous run ended here, maybe by a crash (or sealed, then cut short)
        found = recover_segment(path)
        if found.untouched:
            result.last_seq = max(result.last_seq, found.index.last_seq)
            continue
        for key in ("damaged_lines", "damaged_bytes", "torn_bytes"):
            setattr(result, key, getattr(result, key) + getattr(found, key))
        index = found.index
        if sealed is not None and isinstance(sealed.get("count"), int):
            gone = sealed["count"] - index.count - found.damaged_lines
            if gone > 0:
                log.error("%s is shorter than its index says: %d event(s) of %d gone (damaged "
                          "while the service was stopped); counted as damaged lines",
                          path.name, gone, sealed["count"])
                result.damaged_lines += gone
        if index.count == 0:
            path.unlink()
            idx_path.unlink(missing_ok=True)
            continue
        try:
            write_atomic(idx_path, index.to_json())
        except OSError as exc:  # a full disk: the service still starts, reads and answers 507
            log.error("%s: cannot write its index (%s); it stays unsealed (not compacted, not "
                      "deleted) and is recovered again at the next start", path.name, exc)
        result.last_seq = max(result.last_seq, index.last_seq)
        log.info("recovered %s: %d events", path.name, index.count)
    result.last_seq = max(result.last_seq, parquet_highwater(data_dir, worker))
    return result
