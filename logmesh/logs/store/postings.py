"""Row postings of the tokens rare in a file: which rows hold a word few events have.

The block Bloom filters (tokens.py) find the 16,384-row blocks that may hold a word;
reading such a block costs its row group decoded and every message of it matched
(~5 ms a block on a quiet machine, 79 of them for a word in 79 events of a day). Most
distinct tokens of a file are in a handful of rows (user names, coupon codes, rare
errors: ~30,000 of ~32,000 in bench/query.py's files are in at most 8), so for those the
file keeps the rows themselves: a query for one knows its rows without matching any
message, and reads only the row groups that hold them (query/rare.py).

Per file, in its block index (``postings``): for each indexed token (tokens.indexed) in
at most MAX_ROWS rows, the upper HASH_BITS bits of its key hash (tokens.key_hash) and its
rows; and the same hash of every indexed token in more rows (``frequent``). A word is
then, in this file: in the rows of its hash (a superset: two rare tokens may share a
hash), in an unknown set of rows (its hash is a frequent one's), or in no row. Since
every indexed token of the file is in one of the two lists, a shared short hash can
only add rows to check, never hide one. Prefix keys (``*lock``) are not posted.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import tokens
from .duck import duckdb

if TYPE_CHECKING:
    import numpy as np

MAX_ROWS = 8  # a token in at most this many rows of a file is posted
HASH_BITS = 24  # kept of each key's hash: a shared one costs a row group read, never a miss
VERSION = 1
UNKNOWN = None  # rows(): the word is frequent in the file, any row may hold it


def _pack(array: np.ndarray, delta: bool = False) -> str:
    """uint32s (or their differences, for a sorted array), zlib'd by byte planes: the high
    bytes of row numbers and hash gaps are nearly constant, so they compress to nothing."""
    import numpy as np
    if delta:
        array = np.diff(array, prepend=np.uint32(0)).astype(np.uint32)
    planes = np.ascontiguousarray(array.astype("<u4").view(np.uint8).reshape(-1, 4).T)
    return base64.b64encode(zlib.compress(planes.tobytes(), 9)).decode()


def _unpack(text: str, delta: bool = False) -> np.ndarray:
    import numpy as np
    raw = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    if len(raw) % 4:
        raise ValueError("postings: a column of uint32s with a stray byte")
    array = np.ascontiguousarray(raw.reshape(4, -1).T).view("<u4").ravel().astype(np.uint32)
    return np.cumsum(array, dtype=np.uint32) if delta else array


def short_hash(h: Any) -> Any:
    """The HASH_BITS a posting keeps of a key's 64-bit hash (an int or a uint64 array)."""
    return h >> (64 - HASH_BITS)


def build(con: duckdb.DuckDBPyConnection, messages: Any) -> dict:
    """The postings of a file's ``messages`` (an Arrow column in the file's row order), as the
    block index keeps them. Tokens are cut as tokens.block_tokens cuts them (one
    ``bytes.translate`` and Arrow's whitespace split), counted with Arrow's dictionary
    encoding; DuckDB (``con``) hashes the tokens a query may ask for, as the filters' keys are
    hashed. pyarrow is imported here: only the worker that compacts pays for it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    text = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    if not pa.types.is_string(text.type):
        text = text.cast(pa.string())
    validity, offsets, data = text.buffers()
    folded = pa.Array.from_buffers(pa.string(), len(text), [validity, offsets, pa.py_buffer(
        (data.to_pybytes() if data is not None else b"").translate(tokens._TOKEN_BYTES))],
        text.null_count, text.offset)
    lists = pc.ascii_split_whitespace(folded)
    words = lists.flatten()
    if len(words) == 0:
        empty = np.zeros(0, np.uint32)
        return {"version": VERSION, "bits": HASH_BITS, "probe": tokens.key_hash(tokens.PROBE),
                "hashes": _pack(empty), "counts": _pack(empty), "rows": _pack(empty),
                "frequent": _pack(empty)}
    parent = pc.list_parent_indices(lists).to_numpy()
    enc = pc.dictionary_encode(words)
    idx = enc.indices.to_numpy()
    distinct = enc.dictionary
    counts = np.bincount(idx, minlength=len(distinct))
    # the tokens a query may ask for: ASCII, not a number nor a long hex id (tokens.indexed)
    unindexed = pc.or_(pc.match_substring_regex(distinct, f"^(?:{tokens._UNINDEXED.pattern}|)$"),
                       pc.match_substring_regex(distinct, "[^\\x00-\\x7f]"))  # or empty
    asked = np.flatnonzero(~unindexed.to_numpy(zero_copy_only=False))
    con.register("_post_toks", pa.table({"i": pa.array(asked, pa.int64()),
                                         "t": distinct.take(pa.array(asked, pa.int64()))}))
    try:
        hashed = con.execute("SELECT i, hash(t) AS h FROM _post_toks").fetchnumpy()
    finally:
        con.unregister("_post_toks")
    h32 = np.zeros(len(distinct), np.uint32)
    h32[hashed["i"]] = short_hash(hashed["h"].astype(np.uint64)).astype(np.uint32)
    rare = np.zeros(len(distinct), bool)
    rare[asked] = counts[asked] <= MAX_ROWS
    frequent = np.unique(h32[asked[counts[asked] > MAX_ROWS]])
    hit = rare[idx]
    ph, pr = h32[idx[hit]], parent[hit].astype(np.uint32)
    order = np.lexsort((pr, ph))
    ph, pr = ph[order], pr[order]
    keep = np.ones(len(ph), bool)
    keep[1:] = (ph[1:] != ph[:-1]) | (pr[1:] != pr[:-1])  # a row once per hash
    ph, pr = ph[keep], pr[keep]
    hashes, first = np.unique(ph, return_index=True)
    per = np.diff(np.append(first, len(ph)))  # > MAX_ROWS only where rare tokens share a hash
    return {"version": VERSION, "bits": HASH_BITS, "probe": tokens.key_hash(tokens.PROBE),
            "hashes": _pack(hashes, delta=True), "counts": _pack(per.astype(np.uint32)),
            "rows": _pack(pr), "frequent": _pack(frequent, delta=True)}


@dataclass
class Postings:
    """One file's postings, decoded (:func:`build`'s layout)."""

    hashes: np.ndarray  # sorted uint32, distinct
    starts: np.ndarray  # rows[starts[i]:starts[i + 1]] are hashes[i]'s
    rows: np.ndarray
    frequent: np.ndarray  # sorted uint32

    @classmethod
    def decode(cls, doc: dict) -> Postings:
        """Raises ValueError for postings this version cannot use (another hash, damage)."""
        import numpy as np
        if doc.get("version") != VERSION or doc.get("bits") != HASH_BITS:
            raise ValueError(f"postings version {doc.get('version')} of {doc.get('bits')} bits, "
                             f"this one reads {VERSION} of {HASH_BITS}")
        if doc.get("probe") != tokens.key_hash(tokens.PROBE):
            raise ValueError("postings hashed by a DuckDB whose hash() differs from this one's")
        hashes = _unpack(doc["hashes"], delta=True)
        counts = _unpack(doc["counts"]).astype(np.int64)
        rows = _unpack(doc["rows"])
        if len(counts) != len(hashes) or int(counts.sum()) != len(rows):
            raise ValueError(f"postings: {len(hashes)} hashes, {len(counts)} counts, {len(rows)} rows")
        starts = np.concatenate([[0], np.cumsum(counts)])
        return cls(hashes, starts, rows, _unpack(doc["frequent"], delta=True))

    def rows_of(self, key: str) -> np.ndarray | None:
        """The rows that may hold the token ``key`` (folded, tokens.indexed): sorted, maybe
        more than hold it, never fewer; None when it is frequent here (any row may)."""
        import numpy as np
        h = np.uint32(short_hash(tokens.key_hash(key)))
        if _contains(self.frequent, h):
            return UNKNOWN
        i = int(np.searchsorted(self.hashes, h))
        if i < len(self.hashes) and self.hashes[i] == h:
            return self.rows[self.starts[i]:self.starts[i + 1]]
        return np.zeros(0, np.uint32)


def _contains(sorted_array: np.ndarray, value: Any) -> bool:
    import numpy as np
    i = int(np.searchsorted(sorted_array, value))
    return i < len(sorted_array) and sorted_array[i] == value
