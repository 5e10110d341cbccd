"""What a token is, once, for the index build (SQL), the query's SQL and Python.

A bare word or phrase matches whole tokens, as Kibana's match on a text field and
VictoriaLogs' word filter do: ``lock`` does not find ``deadlock``.

* A token is a maximal run of *token characters*: ASCII letters, digits and ``_``,
  and every character outside ASCII (so ``서울`` and ``café`` are tokens). Every
  other ASCII character (spaces, punctuation, control characters) separates tokens.
* Tokens compare with ASCII letters folded to lower case; other characters compare
  as written (``Café`` finds ``CAFé``, not ``CAFÉ``).

No Unicode table is involved on purpose: the index is built by DuckDB (RE2) and
queried from Python, and the two must never disagree about where a token ends, on
any version of either (a character one side took for a letter and the other for a
separator would hide a match).

The block index (compact.py) keeps, per block, a Bloom filter of *keys*: each
token's folded text and, for prefix queries (``lock*``), ``*`` + its first
PREFIX characters. Tokens that nearly every event has its own of (all digits, or
hex of HEX_TOKEN_MIN characters or more: ids, keys, hashes) are left out, and a
query for one of them is simply not pruned. Keys are hashed with DuckDB's
``hash()``; each file keeps the hash of :data:`PROBE`, and filters hashed by a
DuckDB that hashes otherwise are not used (the file is read whole).
"""

from __future__ import annotations

import base64
import functools
import re
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .duck import duckdb

if TYPE_CHECKING:
    import numpy as np

TOKEN_CHARS_RE2 = "0-9A-Za-z_\\x{80}-\\x{10FFFF}"  # inside [...], as DuckDB's RE2 reads it
SEP_RE2 = f"[^{TOKEN_CHARS_RE2}]"
_TOKEN_RE = re.compile("[0-9A-Za-z_\u0080-\U0010ffff]+")
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(_UPPER, _UPPER.lower())
PREFIX = 4  # prefix keys hold a token's first PREFIX characters
HEX_TOKEN_MIN = 16
_UNINDEXED = re.compile(f"[0-9]+|[0-9a-f]{{{HEX_TOKEN_MIN},}}")
BITS_PER_KEY = 16  # Bloom filter: ~0.06% false positives with K hashes (10 bits: ~1%, and
# 9 blocks read of 624 for a word in 4 events, where trigrams read 4-5)
K = 8


def fold(text: str) -> str:
    """ASCII letters to lower case; nothing else changes (the tokens' case rule)."""
    return text.translate(_FOLD)


def tokens(text: str) -> list[str]:
    """The folded tokens of ``text``, in order: the reference every other form must agree with."""
    return _TOKEN_RE.findall(fold(text))


def is_token_char(ch: str) -> bool:
    return ch == "_" or not ch.isascii() or ch.isalnum()


def indexed(token: str) -> bool:
    """Can a query ask the block index for this folded token? Numbers and long hex ids are
    not in it, and a token with a character outside ASCII is never asked for: the index
    holds DuckDB's ``lower()`` of it, which Python cannot promise to compute alike."""
    return token.isascii() and _UNINDEXED.fullmatch(token) is None


# -- SQL a query matches with ---------------------------------------------------------------------


def _literal_re2(text: str) -> str:
    """``text`` as RE2, matching its ASCII letters in either case."""
    out = []
    for ch in text:
        if ch in _UPPER or ch in _UPPER.lower():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch.isascii() and not ch.isalnum():
            out.append(f"\\x{{{ord(ch):x}}}")  # every ASCII punctuation mark escaped
        else:
            out.append(ch)
    return "".join(out)


def phrase_regex(words: list[str]) -> str:
    """RE2 for "these tokens, one after the other": each whole, only separators between."""
    body = f"{SEP_RE2}+".join(_literal_re2(w) for w in words)
    return f"(?s)(?:^|{SEP_RE2}){body}(?:{SEP_RE2}|$)"


class Wildcard:
    """A pattern's ``*`` (STAR) or ``?`` (ONE) among its literal parts."""

    def __init__(self, regex: str) -> None:
        self.regex = regex


STAR = Wildcard(".*")
ONE = Wildcard(".")


def pattern_regex(parts: Iterable[str | Wildcard]) -> str:
    """RE2 for a pattern: ``*`` any run of characters, ``?`` one, the rest literal text.

    An end without a wildcard is at a token boundary: ``lock*`` is a token that starts
    with ``lock``, ``*lock`` one that ends with it, ``*lock*`` ``lock`` anywhere.
    """
    parts = list(parts)
    body = "".join(p.regex if isinstance(p, Wildcard) else _literal_re2(p) for p in parts)
    head = "" if parts and parts[0] is STAR else f"(?:^|{SEP_RE2})"
    tail = "" if parts and parts[-1] is STAR else f"(?:{SEP_RE2}|$)"
    return f"(?s){head}{body}{tail}"


# -- what a block must hold -----------------------------------------------------------------------


def word_keys(words: list[str]) -> list[str]:
    """The index keys a block must hold for a phrase of these folded tokens to be in it."""
    return [w for w in words if indexed(w)]


def prefix_key(prefix: str) -> str | None:
    """The key a block must hold for a token starting with ``prefix`` (folded, all token
    characters); None when the index cannot tell (too short, or an unindexed token's start)."""
    head = prefix[:PREFIX]
    if len(head) < PREFIX or not head.isascii():
        return None
    if re.fullmatch("[0-9a-f]+", head):  # could begin a number or a hex id: not indexed
        return None
    return "*" + head


def pattern_keys(parts: list[str | Wildcard]) -> list[str]:
    """The keys a block must hold for a pattern (as :func:`pattern_regex` reads it) to match
    in it: the tokens its literal text holds whole, and the prefix of a token it starts."""
    keys: list[str] = []
    last = len(parts) - 1
    for j, part in enumerate(parts):
        if isinstance(part, Wildcard):
            continue
        text = fold(part)
        for mt in _TOKEN_RE.finditer(text):
            starts = mt.start() > 0 or j == 0  # a separator before it, or the token-start anchor
            ends = mt.end() < len(text) or j == last
            if starts and ends and indexed(mt.group()):
                keys.append(mt.group())
            elif starts and not ends and parts[j + 1] is STAR:
                key = prefix_key(mt.group())
                if key is not None:
                    keys.append(key)
    return keys


@dataclass(frozen=True)
class Need:
    """What a block must hold for a query to match in it: keys, under and/or."""

    op: str  # "keys" | "and" | "or"
    keys: tuple[str, ...] = ()
    children: tuple[Need, ...] = ()

    def allows(self, has: Callable[[str], bool]) -> bool:
        """``has(key)``: may the block hold this key? (A Bloom filter, or old trigrams.)"""
        if self.op == "keys":
            return all(has(k) for k in self.keys)
        if self.op == "and":
            return all(c.allows(has) for c in self.children)
        return any(c.allows(has) for c in self.children)


# -- the Bloom filters ----------------------------------------------------------------------------


_hasher: duckdb.DuckDBPyConnection | None = None
_hasher_lock = threading.Lock()
PROBE = "logmesh token probe"  # its hash is kept with the filters: same hash() or not used


@functools.lru_cache(maxsize=4096)
def key_hash(key: str) -> int:
    """DuckDB's ``hash(key)``, as the filters were built with (asked of a DuckDB of our own:
    its hash of strings is 16x cheaper than MD5 in SQL, and :data:`PROBE` tells whether the
    DuckDB that built a file hashed the same way)."""
    global _hasher
    with _hasher_lock:
        if _hasher is None:
            _hasher = duckdb.connect(":memory:", config={"threads": 1})
        return _hasher.execute("SELECT hash(?::VARCHAR)", [key]).fetchone()[0]  # type: ignore[index]


def positions(key: str, m: int) -> list[int]:
    h = key_hash(key)
    h1, h2 = (h & 0xFFFF_FFFF) % m, ((h >> 32) | 1) % m
    return [(h1 + i * h2) % m for i in range(K)]


@dataclass
class Blooms:
    """One file's per-block Bloom filters, ``m`` bits each."""

    m: int
    raw: bytes  # block i is raw[i * m // 8:(i + 1) * m // 8]; bit p is byte p >> 3, bit p & 7

    def has(self, block: int, key: str) -> bool:
        base = block * (self.m // 8)
        raw = self.raw
        return all(raw[base + (p >> 3)] >> (p & 7) & 1 for p in positions(key, self.m))

    @classmethod
    def of(cls, keys: list[set[str]]) -> Blooms:
        """The filters of blocks holding these keys, built in Python: what :func:`build_blooms`
        gives for them (the tests hold one against the other)."""
        m = max(64, -(-max((len(k) for k in keys), default=0) * BITS_PER_KEY // 64) * 64)
        raw = bytearray(len(keys) * m // 8)
        for i, block in enumerate(keys):
            for key in block:
                for p in positions(key, m):
                    raw[i * m // 8 + (p >> 3)] |= 1 << (p & 7)
        return cls(m, bytes(raw))

    def encode(self) -> dict:
        return {"m": self.m, "k": K, "probe": key_hash(PROBE),
                "bits": base64.b64encode(zlib.compress(self.raw, 6)).decode()}

    @classmethod
    def decode(cls, doc: dict, blocks: int) -> Blooms:
        if doc.get("k") != K:
            raise ValueError(f"token filters with k={doc.get('k')}, this version uses {K}")
        if doc.get("probe") != key_hash(PROBE):
            raise ValueError("token filters hashed by a DuckDB whose hash() differs from this one's")
        m = int(doc["m"])
        raw = zlib.decompress(base64.b64decode(doc["bits"]))
        if m <= 0 or m % 64 or len(raw) != blocks * m // 8:
            raise ValueError(f"token filters: {len(raw)} bytes for {blocks} blocks of {m} bits")
        return cls(m, raw)


# Token bytes: ASCII letters folded to lower case, every other ASCII byte that is no token
# character made a space, bytes >= 0x80 (UTF-8 of characters outside ASCII) kept: splitting
# the result at ASCII whitespace cuts UTF-8 text into exactly the tokens :func:`tokens` finds.
_TOKEN_BYTES = bytes(b + 32 if 65 <= b <= 90 else b if b >= 128 or chr(b).isalnum() or b == 95 else 32
                     for b in range(256))


def block_texts(messages: Any, block_rows: int) -> Any:
    """One string per block of ``block_rows`` rows: its messages joined by spaces (NULLs
    as empty strings, which add no token). An Arrow list view over the column and one
    ``binary_join`` in C++: what DuckDB's ``string_agg`` per block did, without a pass
    of SQL over a table (compaction's events are an Arrow table now: compact.py)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    if not pa.types.is_string(text.type):  # DuckDB gives string; a segment's text is < 2 GB
        text = text.cast(pa.string())
    if text.null_count:
        text = pc.fill_null(text, "")
    n = len(text)
    lists = pa.ListArray.from_arrays(pa.array([*range(0, n, block_rows), n] if n else [0], pa.int32()), text)
    return pc.binary_join(lists, " ")


def block_tokens(messages: Any, block_rows: int) -> Any:
    """An Arrow table (blk, tok) of each block's distinct folded tokens, ASCII or not, but for
    numbers (all ASCII digits: :func:`block_keys` keeps no key of them, whole or prefix)
    (``messages``: the file's message column, Arrow, in the file's row order).

    Why not SQL: DuckDB's ``regexp_extract_all`` + ``unnest`` + a hash aggregate over every
    token cost ~2.5 CPU s per million events. Here each block's text is one string
    (:func:`block_texts`), its bytes are mapped by ``bytes.translate`` (one byte for one),
    and Arrow splits it at ASCII whitespace and keeps the distinct tokens: ~1 s (docs/benchmarks.md, "Compaction cost"). pyarrow is imported here, not at
    start: only the worker that compacts pays for it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    text = block_texts(messages, block_rows)
    _, offsets, data = text.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(text) + 1, offset=4 * text.offset)
    whole = memoryview(data if data is not None else b"")
    parts, blks = [], []
    for blk in range(len(text)):
        # a block's bytes at a time (~2-3 MB), not the file's (~40 MB): below glibc's largest
        # mmap threshold (32 MB), so the copy and its translation reuse the heap's pages instead
        # of two fresh mappings a segment, ~20k page faults (~90k per million events: the
        # kernel's share of compaction; docs/benchmarks.md, "Compaction, seventh cut")
        folded = whole[ends[blk]:ends[blk + 1]].tobytes().translate(_TOKEN_BYTES)
        one = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(
            np.array([0, len(folded)], dtype=np.int32)), pa.py_buffer(folded)])
        words = pc.ascii_split_whitespace(one)[0].values
        if words is None:  # the block has no text
            continue
        # numbers are no key (block_keys), and nearly every one is distinct (keys, ids, prices):
        # left out before the hash set rather than after, which then holds half as many tokens
        # (book packets: unique 0.62 -> 0.26 CPU s per million events, the test and filter 0.19;
        # docs/benchmarks.md, "Compaction, ninth cut")
        toks = pc.unique(words.filter(pc.invert(pc.ascii_is_decimal(words))))
        parts.append(toks)
        blks.append(pa.nulls(len(toks), pa.int32()).fill_null(blk))
    if not parts:
        return pa.table({"blk": pa.array([], pa.int32()), "tok": pa.array([], pa.string())})
    return pa.table({"blk": pa.concat_arrays(blks), "tok": pa.concat_arrays(parts)})


def build_blooms(con: duckdb.DuckDBPyConnection, messages: Any, block_rows: int, nblocks: int) -> Blooms:
    """The filters of a file's ``messages`` (an Arrow column in the file's row order).

    Each block's distinct tokens come from :func:`block_tokens`; :func:`block_keys` keeps those
    a query may ask for and each block's distinct prefix keys; DuckDB (``con``) hashes them
    (``hash()``, as :func:`key_hash`); numpy sets the bits. Exactly the keys :meth:`Blooms.of`
    is given in the tests.
    """
    blk, keys = block_keys(block_tokens(messages, block_rows))
    import pyarrow as pa

    con.register("_keys", pa.table({"k": keys}))
    try:
        h = con.execute("SELECT hash(k) AS h FROM _keys").fetchnumpy()["h"]
    finally:
        con.unregister("_keys")
    import numpy as np  # here, not at start: only the worker that compacts pays for it

    return filters_of(blk, np.asarray(h, dtype=np.uint64), nblocks)


_HEX = bytes(1 if chr(b) in "0123456789abcdef" else 0 for b in range(256))


def block_keys(toks: Any) -> tuple[np.ndarray, Any]:
    """The keys (block, key) of a table of each block's distinct tokens (:func:`block_tokens`):
    ASCII-only tokens that are not numbers or long hex ids (:func:`indexed`), and ``*`` + the
    first PREFIX characters of a token whose first PREFIX are ASCII and not all hex digits
    (:func:`prefix_key`), once a block. A token with a character outside ASCII is never asked
    for whole (Python and DuckDB could lower it apart), so it is left out; its prefix key is
    kept when its first PREFIX bytes are ASCII (then they are its first PREFIX characters).

    Arrow's string kernels and numpy over the tokens' bytes, not SQL: DuckDB's
    ``regexp_full_match`` over each block's ~2M distinct tokens a million events cost
    0.3 CPU s, this ~0.1 (docs/benchmarks.md, "Compaction, fourth cut"). A prefix key is
    its 4 bytes in a uint32, so a block's distinct ones are one ``np.unique`` of integers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    tok = toks.column("tok").combine_chunks()
    blk = toks.column("blk").to_numpy().astype(np.int64)
    if not len(tok):
        return blk, tok
    nbytes = pc.binary_length(tok).to_numpy(zero_copy_only=False)
    number = pc.ascii_is_decimal(tok).to_numpy(zero_copy_only=False)
    long = np.flatnonzero(nbytes >= HEX_TOKEN_MIN)  # few: a regex for those alone
    if len(long):
        hexes = pc.match_substring_regex(tok.take(pa.array(long)), f"^[0-9a-f]{{{HEX_TOKEN_MIN},}}$")
        number[long[hexes.to_numpy(zero_copy_only=False)]] = True
    kept = (nbytes > 0) & ~number  # tokens a query may ask for, whole or by their start
    whole = kept & pc.string_is_ascii(tok).to_numpy(zero_copy_only=False)
    # prefix keys: the first PREFIX bytes of each kept token of at least PREFIX bytes
    offsets = np.frombuffer(tok.buffers()[1], dtype=np.int32, count=len(tok) + 1, offset=4 * tok.offset)
    data = np.frombuffer(tok.buffers()[2] or b"", dtype=np.uint8)
    cand = np.flatnonzero(kept & (nbytes >= PREFIX))
    head = data[offsets[cand][:, None] + np.arange(PREFIX)]  # (tokens, PREFIX) bytes
    hexlut = np.frombuffer(_HEX, dtype=np.uint8).astype(bool)
    ok = (head < 128).all(axis=1) & ~hexlut[head].all(axis=1)
    packed = np.ascontiguousarray(head[ok]).view("<u4").ravel().astype(np.uint64)  # PREFIX (4) bytes
    pairs = np.unique((blk[cand[ok]].astype(np.uint64) << np.uint64(32)) | packed)
    star = np.empty((len(pairs), PREFIX + 1), dtype=np.uint8)
    star[:, 0] = ord("*")
    star[:, 1:] = (pairs & np.uint64(0xFFFF_FFFF)).astype("<u4").view(np.uint8).reshape(-1, PREFIX)
    prefixes = pa.Array.from_buffers(pa.string(), len(pairs), [None, pa.py_buffer(
        np.arange(0, (len(pairs) + 1) * (PREFIX + 1), PREFIX + 1, dtype=np.int32)), pa.py_buffer(star)])
    wholes = np.flatnonzero(whole)
    keys = pa.concat_arrays([tok.take(pa.array(wholes)), prefixes])
    return np.concatenate([blk[wholes], (pairs >> np.uint64(32)).astype(np.int64)]), keys


def filters_of(blk: np.ndarray, h: np.ndarray, nblocks: int) -> Blooms:
    """The filters of ``nblocks`` blocks from their distinct keys' hashes (block, hash):
    ``m`` bits each for the most keys a block has, K bits a key set in numpy."""
    import numpy as np
    counts = np.bincount(blk, minlength=nblocks) if len(blk) else np.zeros(nblocks, dtype=np.int64)
    m = max(64, -(-int(counts.max(initial=0)) * BITS_PER_KEY // 64) * 64)
    um = np.uint64(m)
    h1, h2 = (h & np.uint64(0xFFFF_FFFF)) % um, ((h >> np.uint64(32)) | np.uint64(1)) % um
    pos = (h1[:, None] + np.arange(K, dtype=np.uint64)[None, :] * h2[:, None]) % um
    bits = np.zeros((nblocks, m), dtype=bool)
    bits[np.repeat(blk, K), pos.ravel().astype(np.int64)] = True
    return Blooms(m, np.packbits(bits, axis=1, bitorder="little").tobytes())
