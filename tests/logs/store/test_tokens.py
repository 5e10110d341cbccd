"""Token semantics (store/tokens.py) against a plain Python reference, and the index never
hiding a match.

The reference is a few lines of Python: tokens are runs of ASCII letters, digits, ``_``
and non-ASCII characters; ASCII letters compare folded. A word or phrase matches when its
tokens are consecutive tokens of the message; ``w*`` when a token starts with ``w``,
``*w`` when one ends with it, ``*w*`` when ``w`` is anywhere. The SQL the query language
runs (on Parquet, live and cold segments alike) must agree with it exactly, and the block
filters built by DuckDB must keep every block the reference finds a match in.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.query import kql, token_need
from logmesh.logs.store import tokens

# ASCII letters of both cases, digits, separators, non-ASCII letters with and without case
# (É, Σ, the Kelvin sign), Hangul, a newline: where a tokenizer or a case rule could slip.
ALPHABET = "abcdeDEXYZ019 -_:/\"'.*é\u00c9\u03a3\u03c3\u212a한\n"
TEXT = st.text(alphabet=st.sampled_from(ALPHABET), max_size=30)


def is_sep(ch: str) -> bool:
    return not tokens.is_token_char(ch)


def ref_word(message: str, word: str) -> bool:
    """A word or phrase: its tokens are consecutive tokens of the message (none: substring)."""
    want, have = tokens.tokens(word), tokens.tokens(message)
    if not want:
        return tokens.fold(word) in tokens.fold(message) or word.lower() in message.lower()
    return any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1))


def ref_pattern(message: str, word: str, lead: bool, trail: bool) -> bool:
    m, w = tokens.fold(message), tokens.fold(word)
    for i in range(len(m) - len(w) + 1):
        if m[i:i + len(w)] != w:
            continue
        starts = lead or i == 0 or is_sep(m[i - 1])
        ends = trail or i + len(w) == len(m) or is_sep(m[i + len(w)])
        if starts and ends:
            return True
    return False


def node_for(form: str, word: str) -> kql.Node:
    if form == "word":
        return kql.Match(None, kql.Literal(word))
    parts: list = [word]
    if form in ("suffix", "substring"):
        parts.insert(0, kql.Wild.STAR)
    if form in ("prefix", "substring"):
        parts.append(kql.Wild.STAR)
    return kql.Match(None, kql.Pattern(tuple(parts)))


def reference(form: str, message: str, word: str) -> bool:
    if form == "word":
        return ref_word(message, word)
    return ref_pattern(message, word, form in ("suffix", "substring"), form in ("prefix", "substring"))


def sql_hits(con: duckdb.DuckDBPyConnection, node: kql.Node) -> list[bool]:
    where, params = kql.compile_where(node, now=0)
    return [bool(r[0]) for r in con.execute(f"SELECT coalesce({where}, false) FROM m ORDER BY i",
                                            params).fetchall()]


def load(con: duckdb.DuckDBPyConnection, messages: list[str]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE m (i INTEGER, message VARCHAR)")
    con.executemany("INSERT INTO m VALUES (?, ?)", list(enumerate(messages)))


def built(con: duckdb.DuckDBPyConnection, block_rows: int, nblocks: int) -> tokens.Blooms:
    """The filters compaction builds of table m's messages (an Arrow column in row order)."""
    column = con.sql("SELECT message FROM m ORDER BY rowid").to_arrow_table().column(0)
    return tokens.build_blooms(con, column, block_rows, nblocks)


def python_keys(messages: list[str]) -> set[str]:
    """The keys of these messages a query may ask the index for: its ASCII-only tokens
    (not numbers or long hex) and their first characters (prefix queries)."""
    keys = set()
    for msg in messages:
        for t in tokens.tokens(msg):
            if tokens.indexed(t):
                keys.add(t)
            key = tokens.prefix_key(t)
            if key is not None:
                keys.add(key)
    return keys


FORMS = ("word", "prefix", "suffix", "substring")


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(TEXT, min_size=1, max_size=6), pick=st.integers(0, 5),
       lo=st.integers(0, 30), size=st.integers(1, 12), form=st.sampled_from(FORMS),
       upper=st.booleans())
def test_sql_and_index_agree_with_the_reference(messages, pick, lo, size, form, upper):
    source = messages[pick % len(messages)]
    word = source[lo:lo + size] or "lock"
    if upper:
        word = word.upper()
    con = duckdb.connect()
    load(con, messages)
    node = node_for(form, word)
    want = [reference(form, msg, word) for msg in messages]
    assert sql_hits(con, node) == want, (messages, form, word)
    # the filter of a block holding these messages, as compaction builds it in DuckDB
    blooms = built(con, 1_000_000, 1)
    assert all(blooms.has(0, k) for k in python_keys(messages))  # every key a query may ask
    need = token_need.need(node)
    if any(want):
        assert need is None or need.allows(lambda k: blooms.has(0, k)), (messages, form, word)


@settings(max_examples=100, deadline=None)
@given(messages=st.lists(TEXT, min_size=1, max_size=6), pick=st.integers(0, 5),
       first=st.integers(0, 10), count=st.integers(1, 3))
def test_a_phrase_of_a_messages_tokens_is_found(messages, pick, first, count):
    """Phrases made of real consecutive tokens (with other separators between) match."""
    toks = tokens.tokens(messages[pick % len(messages)])
    if not toks:
        return
    phrase = " ".join(toks[first % len(toks):first % len(toks) + count])
    con = duckdb.connect()
    load(con, messages)
    node = kql.parse(kql.Literal(phrase, quoted=True).to_kql())
    assert sql_hits(con, node)[pick % len(messages)]
    blooms = built(con, 1_000_000, 1)
    need = token_need.need(node)
    assert need is None or need.allows(lambda k: blooms.has(0, k))


@pytest.mark.parametrize("query, hits", [
    # a bare word is a whole token, case-insensitive: lock does not find deadlock
    ("lock", ["no lock here", "the LOCK was taken", "dead lock"]),
    ("deadlock", ["deadlock detected", "Deadlock-free path"]),
    ('"dead lock"', ["dead lock"]),
    ("lock*", ["no lock here", "lockstep worker", "the LOCK was taken", "user_id=42 locked",
               "dead lock"]),
    ("*lock", ["deadlock detected", "Deadlock-free path", "no lock here", "the LOCK was taken",
               "unlock later", "dead lock"]),
    ("*lock*", ["deadlock detected", "Deadlock-free path", "no lock here", "lockstep worker",
                "the LOCK was taken", "unlock later", "user_id=42 locked", "dead lock"]),
    ("user_id", ["user_id=42 locked"]),  # _ is part of a token
    ("user", []),
    ("42", ["user_id=42 locked"]),
    ("서울", ["서울 도자기"]),
    ("CAFÉ", ["CAFÉ au lait"]),  # only A-Z fold: é is not É
    ("Café", ["café noir"]),
    ("GET/goods", ["GET /goods 200"]),  # the tokens get, goods, one after the other
])
def test_the_three_forms(query, hits):
    messages = ["deadlock detected", "Deadlock-free path", "no lock here", "lockstep worker",
                "the LOCK was taken", "unlock later", "user_id=42 locked", "dead lock",
                "서울 도자기", "GET /goods 200", "café noir", "CAFÉ au lait"]
    con = duckdb.connect()
    load(con, messages)
    got = [m for m, hit in zip(messages, sql_hits(con, kql.parse(query)), strict=True) if hit]
    assert got == hits


def test_keys_a_query_needs():
    assert token_need.need(kql.parse("Deadlock")) == tokens.Need("keys", ("deadlock",))
    assert token_need.need(kql.parse('"GET /goods"')) == tokens.Need("keys", ("get", "goods"))
    assert token_need.need(kql.parse("lockst*")) == tokens.Need("keys", ("*lock",))
    assert token_need.need(kql.parse("loc*")) is None  # too short for a prefix key
    assert token_need.need(kql.parse("dead*")) is None  # could start a hex id: not indexed
    assert token_need.need(kql.parse("*lock*")) is None  # a substring: only this form scans
    assert token_need.need(kql.parse("4242")) is None  # numbers are not indexed
    assert token_need.need(kql.parse("service.name:deadlock")) is None  # only message is
    assert token_need.need(kql.parse("not deadlock")) is None
    assert token_need.need(kql.parse("goods or deadlock")) == tokens.Need("or", children=(
        tokens.Need("keys", ("goods",)), tokens.Need("keys", ("deadlock",))))


def test_filters_prune_absent_words_and_keep_ids_unindexed():
    con = duckdb.connect()
    load(con, ["GET /goods 200 12ms", 'password "0123456789abcdef0123456789abcdef"', "key 98765"])
    blooms = built(con, 1_000_000, 1)

    def allows(q: str) -> bool:
        need = token_need.need(kql.parse(q))
        return need is None or need.allows(lambda k: blooms.has(0, k))

    assert allows("goods") and allows("GOODS") and allows("password")
    assert not allows("deadlock") and not allows("goods and deadlock")
    assert allows("goods or deadlock")
    assert allows("98765") and allows("0123456789abcdef0123456789abcdef")  # not indexed: kept
    assert allows("passw*") and not allows("zebra*")


def test_filters_round_trip_and_refuse_damage():
    blooms = tokens.Blooms.of([{"a", "b"}, {"c"}])
    doc = blooms.encode()
    assert tokens.Blooms.decode(doc, 2).raw == blooms.raw
    for bad in ({**doc, "k": 3}, {**doc, "m": 65}):
        with pytest.raises(ValueError):
            tokens.Blooms.decode(bad, 2)
    with pytest.raises(ValueError):
        tokens.Blooms.decode(doc, 3)


@settings(max_examples=100, deadline=None)
@given(blocks=st.lists(st.lists(st.one_of(st.none(), TEXT), min_size=1, max_size=5), min_size=1, max_size=4))
def test_filters_hold_exactly_the_keys_a_query_may_ask(blocks):
    """Compaction's filters (tokens found in Arrow, hashed in DuckDB, bits set in numpy) are
    bit for bit the filters of the reference keys, block by block; NULL messages add none."""
    con = duckdb.connect()
    rows = 8
    messages = [m for blk in blocks for m in blk + [None] * (rows - len(blk))]
    con.execute("CREATE TEMP TABLE m (message VARCHAR)")
    con.executemany("INSERT INTO m VALUES (?)", [(m,) for m in messages])
    got = built(con, rows, len(blocks))
    want = tokens.Blooms.of([python_keys([m for m in blk if m is not None]) for blk in blocks])
    assert (got.m, got.raw) == (want.m, want.raw)


def test_filters_of_a_table_without_text():
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE m AS SELECT NULL::VARCHAR AS message FROM range(3)")
    assert built(con, 2, 2) == tokens.Blooms(64, bytes(16))
    con.execute("CREATE OR REPLACE TEMP TABLE m (message VARCHAR)")
    assert built(con, 2, 0) == tokens.Blooms(64, b"")


def test_filters_of_a_column_in_several_chunks_are_those_of_one():
    """DuckDB hands a segment's column over in chunks that blocks straddle; the filters do not
    depend on where the chunks end."""
    import pyarrow as pa

    messages = [f"word{i % 7} GET /goods/{i} user_{i % 3}" if i % 5 else None for i in range(40)]
    whole = tokens.build_blooms(duckdb.connect(), pa.array(messages, pa.string()), 16, 3)
    chunked = pa.chunked_array([pa.array(messages[:10], pa.string()), pa.array(messages[10:27], pa.string()),
                                pa.array(messages[27:], pa.string())])
    assert tokens.build_blooms(duckdb.connect(), chunked, 16, 3) == whole
    want = tokens.Blooms.of([python_keys([m for m in messages[b:b + 16] if m is not None]) for b in (0, 16, 32)])
    assert (whole.m, whole.raw) == (want.m, want.raw)


def test_prefix_keys_are_each_blocks_own():
    """Each block holds the prefix keys of its own tokens only, once each, whatever the
    other blocks hold (the keys are found for all blocks at once: tokens.block_keys)."""
    import pyarrow as pa

    blocks = [["GET /goods lockdown", "deadlock café", None, "user1234 USERS"],
              ["zebra Zebras 12345", "0123456789abcdef0123 abcdefgh", "ab ÄÖÜx über", "deadline"],
              [None, None, None, None],
              ["members mem_ber", "Ünter gööds", "xyzzy_1 xyzz", "face fact"]]
    messages = [m for blk in blocks for m in blk]
    got = tokens.build_blooms(duckdb.connect(), pa.array(messages, pa.string()), 4, len(blocks))
    want = tokens.Blooms.of([python_keys([m for m in blk if m is not None]) for blk in blocks])
    assert (got.m, got.raw) == (want.m, want.raw)
    for b, blk in enumerate(blocks):  # and no key of another block's (beyond false positives)
        others = set().union(*(python_keys([m for m in o if m]) for o in blocks if o is not blk))
        own = python_keys([m for m in blk if m])
        assert not any(got.has(b, k) for k in others - own)
