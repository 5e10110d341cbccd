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
compactor goes idle, so a worker between backlogs holds no more than before. The compacting
thread allocates from an arena of its own, which grows in heaps of 64 MB that glibc unmaps
whole once empty whatever the thresholds say (the server's compaction faulted 154k pages per
million with them alone), unless the heap below has ``M_TOP_PAD`` free: so that is set to a
heap's size too. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import resource
import threading

log = logging.getLogger("logmesh.logs.heap")

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 1024 * 1024 * 1024  # more than a compaction's peak: nothing trimmed mid-backlog
# a thread arena's empty heap (64 MB each) is unmapped unless the heap below it has this much
# free: at a heap's size, none is (glibc's heap_trim), and a thread's arena keeps its heaps
TOP_PAD = 64 * 1024 * 1024

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
        _kept = all([libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                     libc.mallopt(M_TOP_PAD, TOP_PAD)])
        if not _kept:
            log.warning("malloc kept its defaults (mallopt refused); compaction faults its buffers in anew")
        return _kept


def thread_faults() -> int:
    """The calling thread's minor page faults so far (0 where the OS does not count them)."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    return resource.getrusage(who).ru_minflt if who is not None else 0


def release() -> None:
    """Hand the kept buffers back to the kernel (the compactor is going idle)."""
    with _lock:
        if _kept and _libc is not None:
            _libc.malloc_trim(0)
