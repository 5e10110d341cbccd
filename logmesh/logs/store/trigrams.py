"""The first block index format's message trigrams, still read for stores written by it.

Format 1 of ``.blocks.json`` (layout.READABLE_PARQUET_VERSIONS) kept, per block, the
set of trigrams of the runs of ``[a-z0-9]`` in DuckDB's ``lower(message)``, as a
bitmap over the 37**3 possible codes (zlib, base64); a block holding a digits-only
token had all 1,000 digit trigrams set, one holding a hex token of 16 or more
characters all 4,096 hex trigrams. Tokens (tokens.py) are still found with them:
a message holding a token holds each ``[a-z0-9]`` run of it inside one run of its
lowered text, so every trigram of the run is in the block's bitmap. New files hold
token Bloom filters instead (cheaper to build, and they keep prefixes).
"""

from __future__ import annotations

import base64
import zlib

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
NCODES = 37 ** 3  # codes are (a*37 + b)*37 + c with a, b, c in 1..36 (instr() of each char)
BITMAP_BYTES = (NCODES + 7) // 8
_POS = {ch: i + 1 for i, ch in enumerate(ALPHABET)}


def code(tri: str) -> int:
    return (_POS[tri[0]] * 37 + _POS[tri[1]]) * 37 + _POS[tri[2]]


def decode_bitmaps(text: str, n: int) -> list[int]:
    raw = zlib.decompress(base64.b64decode(text))
    size = BITMAP_BYTES
    if len(raw) != n * size:
        raise ValueError(f"trigram bitmaps: {len(raw)} bytes for {n} blocks")
    return [int.from_bytes(raw[i * size:(i + 1) * size], "little") for i in range(n)]


def runs(text: str) -> list[str]:
    """The ``[a-z0-9]`` runs of ``text`` lowered (ASCII only: any other character splits)."""
    out, cur = [], []
    for ch in text:
        low = ch.lower() if "A" <= ch <= "Z" else ch
        if low in _POS:
            cur.append(low)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def word_mask(text: str) -> int:
    """The trigrams a block must have for a message of it to contain ``text``."""
    mask = 0
    for run in runs(text):
        for i in range(len(run) - 2):
            mask |= 1 << code(run[i:i + 3])
    return mask


def has_key(bitmap: int, key: str) -> bool:
    """May a block with this bitmap hold the index key (tokens.py: a token, or ``*`` and a
    token's first characters)? The ``*`` splits like any other non-alphanumeric."""
    mask = word_mask(key)
    return bitmap & mask == mask
