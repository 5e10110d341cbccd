"""A worker's segment stream in a shared data directory: the lock that makes it one
writer's (``segments/wNN.lock``), and the high-water mark that keeps its seqs from ever
repeating (``segments/wNN.seq``, with the Parquet files' own).

Several ``logmesh logs`` processes (``--workers N``, or instances sharing a
``--data-dir``) each claim a worker id here; the writer of that id saves the
high-water mark each time it seals a segment, and recovery (store/recovery.py) reads
it back at the next start, when compaction or retention may have removed every
segment (issue 14).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

import orjson

from ...fsio import write_atomic
from . import catalogue, layout

log = logging.getLogger("logmesh.store")


class StreamInUse(RuntimeError):
    """The worker stream wanted is another live process's: this one must not start."""


def claim_worker(data_dir: Path, wanted: int | None = None, wait: float = 0.0) -> tuple[int, int]:
    """Lock a worker's stream in ``data_dir``: ``wanted``, or the lowest free id.

    Returns ``(worker id, lock fd)``; the flock lives as long as the fd, so a
    crashed process frees its id. Several ``logmesh logs`` instances can so
    share one data directory, each writing its own stream. ``wait``: seconds to
    wait for ``wanted`` (a worker whose supervisor was killed is still stopping when
    its replacement starts) before StreamInUse.
    """
    seg_dir = Path(data_dir) / layout.SEGMENTS_DIR
    seg_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        for worker in ([wanted] if wanted is not None else range(layout.MAX_WORKERS)):
            fd = os.open(seg_dir / f"w{worker:02d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return worker, fd
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if wanted is not None:
        raise StreamInUse(f"worker {wanted} of {seg_dir} is in use by another process; "
                          "give each logs instance its own --worker-id or --data-dir")
    raise StreamInUse(f"all {layout.MAX_WORKERS} worker streams of {seg_dir} are in use")


def held_by_others(data_dir: Path) -> list[int]:
    """The worker streams of ``data_dir`` another live process holds now (a probe: each lock
    taken and let go at once). Non-empty: this data directory is another logs service's too
    (issue #8's failover), so joining its mesh beside it keeps one store."""
    seg_dir = Path(data_dir) / layout.SEGMENTS_DIR
    held = []
    for lock in sorted(seg_dir.glob("w[0-9][0-9].lock")) if seg_dir.is_dir() else ():
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.append(int(lock.stem[1:]))
        finally:
            os.close(fd)  # closing lets go of a lock this probe took
    return held


def save_highwater(data_dir: Path, worker: int, last_seq: int) -> None:
    """Write ``last_seq`` as ``worker``'s high-water mark (atomically)."""
    write_atomic(Path(data_dir) / layout.SEGMENTS_DIR / layout.highwater_name(worker),
                 orjson.dumps({"last_seq": last_seq}))


def stored_highwater(data_dir: Path, worker: int) -> int:
    """The last seq in ``worker``'s high-water file (-1: none, or unreadable)."""
    name = layout.highwater_name(worker)
    try:
        last = orjson.loads((Path(data_dir) / layout.SEGMENTS_DIR / name).read_bytes())["last_seq"]
        if last.__class__ is not int or not -1 <= last <= layout.MAX_SEQ:
            raise ValueError(f"last_seq {str(last)[:40]} is no seq")
        return last
    except FileNotFoundError:
        return -1
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.error("%s: unreadable; the next seq comes from the files alone", name)
        return -1


def parquet_highwater(data_dir: Path, worker: int) -> int:
    """The highest seq in ``worker``'s Parquet files (their block index, else their name)."""
    last = -1
    for pq in catalogue.parquet_files(data_dir, worker):
        try:
            seq = orjson.loads(pq.path.with_name(layout.blocks_name(pq.path.name)).read_bytes())["last_seq"]
            if seq.__class__ is not int or not 0 <= seq <= layout.MAX_SEQ:
                raise ValueError(seq)
            last = max(last, seq)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # No index: the file's name is its first seq; step past a whole segment's worth.
            last = max(last, pq.first_seq + (layout.MAX_SEGMENT_EVENTS << layout.WORKER_BITS))
    return last
