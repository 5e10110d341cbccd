"""Per-block message trigrams: which row groups can hold a word, without reading them.

A bare word (or ``message:v``) is a case-insensitive *substring* search
(``message ILIKE '%v%'``, see kql.py), so an index of whole tokens would be
wrong: ``lock`` is in ``deadlock``. Trigrams are sound for substrings:

* A message's *tokens* are the runs of ``[a-z0-9]`` in DuckDB's ``lower(message)``.
  Each run of ``[a-z0-9]`` in the lowered query word lies inside one token of
  any message containing the word, so every trigram of the run is a trigram of
  that token.
* A block (one Parquet row group) stores the set of its tokens' trigrams as a
  bitmap over the 37**3 possible codes (6.3 KB before compression).
* A query keeps a block only if the block has every trigram of every run of
  every word the query requires (``and``: all children, ``or``: any child,
  ``not``: no constraint). Which words a KQL tree requires is the query side's
  to say (query/trigram_need.py); this module holds the format and :class:`Need`.

Random ids would fill every block with all digit and hex trigrams and cost the
most to compute, so a block holding a digits-only token just gets all 1,000
digit trigrams set, and one holding a long hex token all 4,096 hex trigrams
(setting more bits than needed never hides a match). A block is only ever
skipped when a needed trigram is certainly absent.

On 10M events, building takes ~2 s per million messages (one DuckDB pass) and
the bitmaps cost well under 1% of the Parquet size (bench/query.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
NCODES = 37 ** 3  # codes are (a*37 + b)*37 + c with a, b, c in 1..36 (instr() of each char)
BITMAP_BYTES = (NCODES + 7) // 8
HEX_TOKEN_MIN = 16  # [0-9a-f] tokens at least this long are taken for random ids
_POS = {ch: i + 1 for i, ch in enumerate(ALPHABET)}


def code(tri: str) -> int:
    return (_POS[tri[0]] * 37 + _POS[tri[1]]) * 37 + _POS[tri[2]]


def _mask(chars: str) -> int:
    m = 0
    for a in chars:
        for b in chars:
            for c in chars:
                m |= 1 << code(a + b + c)
    return m


DIGIT_MASK = _mask("0123456789")
HEX_MASK = _mask("0123456789abcdef")


def block_sql(table: str, block_rows: int) -> str:
    """SQL giving ``(block, has_digits, has_hex, bitstring)`` per block of ``table``.

    ``table`` must keep the file's row order in its ``rowid`` (a temp table
    created from the sorted rows), so ``rowid // block_rows`` is the row group.
    """
    a = ALPHABET
    return f"""
WITH tok AS (
  SELECT DISTINCT rowid // {block_rows} AS blk,
         unnest(regexp_extract_all(lower(message), '[a-z0-9]{{3,}}')) AS t
  FROM {table} WHERE message IS NOT NULL
), cls AS (
  SELECT blk, t, regexp_full_match(t, '[0-9]+') AS dig,
         (length(t) >= {HEX_TOKEN_MIN} AND regexp_full_match(t, '[0-9a-f]+')) AS hx
  FROM tok
), tri AS (
  SELECT DISTINCT blk, instr('{a}', t[i + 1]) * 1369 + instr('{a}', t[i + 2]) * 37
                       + instr('{a}', t[i + 3]) AS code
  FROM (SELECT blk, t, unnest(range(length(t) - 2)) AS i FROM cls WHERE NOT dig AND NOT hx)
), agg AS (
  SELECT blk, bitstring_agg(code, 0, {NCODES - 1})::VARCHAR AS bits FROM tri GROUP BY blk
)
SELECT c.blk, bool_or(c.dig), bool_or(c.hx), any_value(agg.bits)
FROM cls c LEFT JOIN agg USING (blk) GROUP BY c.blk ORDER BY c.blk
"""


def bitmap_from_sql(has_digits: bool, has_hex: bool, bits: str | None) -> int:
    """One row of :func:`block_sql` -> the block's bitmap as an int (bit ``code`` set)."""
    value = int(bits[::-1], 2) if bits else 0
    if has_digits:
        value |= DIGIT_MASK
    if has_hex:
        value |= HEX_MASK
    return value


# -- what a block must hold: words to masks (query/trigram_need.py walks the KQL tree) --


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


def word_mask(parts: Iterable[str]) -> int:
    """The trigrams a message must have to contain each literal part (0: no constraint)."""
    mask = 0
    for part in parts:
        for run in runs(part):
            for i in range(len(run) - 2):
                mask |= 1 << code(run[i:i + 3])
    return mask


@dataclass(frozen=True)
class Need:
    """What a block must hold for a query to match in it: a tree of trigram masks."""

    op: str  # "mask" | "and" | "or"
    mask: int = 0
    children: tuple[Need, ...] = ()

    def allows(self, bitmap: int) -> bool:
        if self.op == "mask":
            return bitmap & self.mask == self.mask
        if self.op == "and":
            return all(c.allows(bitmap) for c in self.children)
        return any(c.allows(bitmap) for c in self.children)
