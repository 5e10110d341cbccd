"""glibc's malloc told to keep the memory an ingest worker frees, not hand it back each time.

An ingest worker allocates and frees buffers of 0.2-1 MB at every read or body
(asyncio's 256 KiB reads, a read's escaped text, its stored lines, held until
the writer has written them). glibc's defaults serve those from ``mmap`` or
return the top of the heap to the kernel once its free part passes the
(dynamic) trim threshold, so the next buffer of that size faults its pages in
again: 140,000-370,000 page faults per million syslog events over TCP, each a
few µs in this VM, a quarter of the event loop's CPU (bench/ingest_sockets.py
reads /proc's counts; docs/benchmarks.md, "Syslog over TCP, fourth pass").
With fixed thresholds the buffers are reused from the heap: ~15,000 faults
per million.

The values are where glibc's own dynamic thresholds end up at their cap
(mmap above 32 MB, trim past twice that), from the start and for good: a lower
mmap threshold (4 MB was tried) maps every 8 MB HTTP body afresh, and the
NDJSON path then spent ~10% more CPU per event than with glibc's defaults
(4 alternating pairs). The cost: up to ``TRIM_THRESHOLD`` of freed heap stays
mapped after a burst; an idle worker is unchanged (bench/idle_memory.py).
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # a block this large or larger gets its own mapping
TRIM_THRESHOLD = 64 * 1024 * 1024  # free heap kept before its top is given back


def keep_freed_heap() -> bool:
    """Fix glibc's thresholds (which also turns off their adjustment); False where there is no
    glibc ``mallopt`` (macOS, musl answers 0) or it refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
