"""glibc's malloc kept from handing a compaction's buffers back to the kernel between segments.

A compaction allocates a few hundred MB in buffers of megabytes: DuckDB's reads and its Arrow
export (this DuckDB build has no jemalloc: it allocates with glibc's malloc), the token cut's
Python bytes. glibc serves each from a fresh ``mmap`` and unmaps it at ``free``, so the next
segment faults every page in again (and the kernel zeroes it): ~200k minor page faults per
million events, 0.5-0.8 of compaction's ~4 CPU s per million spent in the kernel (measured in
process on bench/compact_cost.py's book segments: docs/benchmarks.md, "Compaction, sixth cut").

:func:`keep` (at a process's first compaction) raises ``M_MMAP_THRESHOLD`` to its maximum and
``M_TRIM_THRESHOLD`` so freed buffers stay in malloc's arenas and the next segment reuses them
(30-80k faults per million); :func:`release` (``malloc_trim``) gives them back when the
compactor goes idle, so a worker between backlogs holds no more than before. Those thresholds
hold for malloc's main arena; a thread's own arena grows in heaps of 64 MB that are unmapped
whole once empty, whatever the thresholds say (a compaction in a thread faulted as much with
them as without). :func:`share_arena`, before the compacting thread starts, caps the arenas
so that the thread is given one that exists (the main arena first) rather than a new one of
its own. Elsewhere than glibc all three do nothing.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import resource
import threading

log = logging.getLogger("logmesh.logs.heap")

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 1024 * 1024 * 1024  # more than a compaction's peak: nothing trimmed mid-backlog

_lock = threading.Lock()
_libc: ctypes.CDLL | None = None
_kept = False
_tried = False


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and platform.libc_ver()[0] == "glibc":
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            return None
    return _libc


def keep() -> bool:
    """Keep freed buffers for reuse (once a process); True if glibc took the settings."""
    global _kept, _tried
    with _lock:
        if _tried:
            return _kept
        _tried = True
        libc = _glibc()
        if libc is None:
            return False
        _kept = all([libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)])
        if not _kept:
            log.warning("malloc kept its defaults (mallopt refused); compaction faults its buffers in anew")
        return _kept


def share_arena() -> None:
    """No more malloc arenas in this process (threads started from now on share those there
    are, the main arena first): call before starting the compacting thread. glibc fixes its
    arena limit at the first thread that asks once 8 arenas exist; before that, this sets it."""
    with _lock:
        libc = _glibc()
        if libc is not None and not libc.mallopt(M_ARENA_MAX, 1):
            log.warning("malloc kept its arena limit (mallopt refused)")


def thread_faults() -> int:
    """The calling thread's minor page faults so far (0 where the OS does not count them)."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    return resource.getrusage(who).ru_minflt if who is not None else 0


def release() -> None:
    """Hand the kept buffers back to the kernel (the compactor is going idle)."""
    with _lock:
        if _kept and _libc is not None:
            _libc.malloc_trim(0)
