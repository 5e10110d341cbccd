"""Where a word's bytes are in a column's data buffer, any ASCII case: rare.py's candidate search.

Each reading thread keeps one buffer (a fresh 1.4 MB one a row group cost more in page
faults than the search) into which a chunk's bytes are copied with every byte's 0x20 bit
set (numpy), then searched for the needle folded the same way. The search is libc's
``memmem`` through ctypes where there is one: ~0.2 ms over a 16,384-row group's 1.4 MB of
messages against ~0.55 for ``bytearray.find``, and ctypes lets go of the GIL during the
call, so the other reading thread and the query's own run meanwhile
(docs/benchmarks.md, "Rare word, seventh pass"). ``bytearray.find`` where there is none,
and past a word's first MEMMEM_PLACES places.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

import numpy as np


def _memmem() -> Any:
    try:
        name = ctypes.util.find_library("c")
        fn = ctypes.CDLL(name).memmem if name else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.restype = ctypes.c_void_p
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return fn


MEMMEM = _memmem()  # None: bytearray.find
MEMMEM_PLACES = 8  # places found by memmem, then by bytearray.find: a ctypes call costs ~1-2 us,
# more than find's between a frequent word's close places (newest 100 of 'goods' over an hour:
# 1.15-1.3x the CPU with memmem for all of its up to 2,049 places a group)
_local = threading.local()


class Haystack:
    """One thread's buffer and the address ctypes sees it at (the bytearray cannot be
    resized while that view exists: a larger one replaces both)."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(max(size, 1 << 20))
        self.view = (ctypes.c_char * len(self.data)).from_buffer(self.data)
        self.base = ctypes.addressof(self.view)
        self.size = 0

    def fill_folded(self, data: Any, lo: int, hi: int) -> None:
        """Bytes [lo, hi) of ``data`` (a buffer), each with its 0x20 bit set."""
        self.size = hi - lo
        if self.size:
            np.bitwise_or(np.frombuffer(data, dtype=np.uint8)[lo:hi], 0x20,
                          out=np.frombuffer(self.data, dtype=np.uint8, count=self.size))

    def find_all(self, needle: bytes, most: int) -> list[int] | None:
        """Every offset of ``needle`` (folded by the caller) in the bytes filled, or None past
        ``most`` of them (a frequent word: the caller takes a vectorised pass instead)."""
        at: list[int] = []
        i, size, n = 0, self.size, len(needle)
        while True:
            if MEMMEM is not None and len(at) < MEMMEM_PLACES:
                p = MEMMEM(self.base + i, size - i, needle, n) if size - i >= n else None
                j = -1 if p is None else p - self.base
            else:
                j = self.data.find(needle, i, size)
            if j < 0:
                return at
            if len(at) >= most:
                return None
            at.append(j)
            i = j + 1


def haystack(size: int) -> Haystack:
    """This thread's Haystack of at least ``size`` bytes, kept between calls."""
    hay = getattr(_local, "hay", None)
    if hay is None or len(hay.data) < size:
        hay = _local.hay = Haystack(size)
    return hay
