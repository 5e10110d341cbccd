"""store/postings.py: the rows a file's postings name for a word never miss a row the reference
tokenizer (tokens.tokens) finds it in, and a word in a few rows is named with its rows."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.store import postings, tokens
from tests.logs.store.test_tokens import TEXT


def built(messages: list[str | None]) -> postings.Postings:
    return postings.Postings.decode(postings.build(duckdb.connect(), pa.array(messages, pa.string())))


def holding(messages: list[str | None], word: str) -> set[int]:
    return {i for i, m in enumerate(messages) if m is not None and word in tokens.tokens(m)}


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(st.one_of(st.none(), TEXT), min_size=1, max_size=30),
       extra=st.lists(TEXT, max_size=3))
def test_postings_never_hide_a_row(messages, extra):
    posted = built(messages)
    words = {w for m in messages + extra if m for w in tokens.tokens(m)}
    for word in words:
        if not tokens.indexed(word):
            continue  # a query never asks the index for it (tokens.word_keys)
        rows = posted.rows_of(word)
        want = holding(messages, word)
        if rows is None:
            assert len(want) > postings.MAX_ROWS or posted.frequent.size  # frequent, or a shared hash
        else:
            assert want <= set(rows.tolist()), word


def test_rare_words_have_their_rows_frequent_ones_none_absent_ones_no_row():
    messages = ["ok"] * 20 + ["deadlock in pool", None, "retry", "DeadLock again", "ok"]
    posted = built(messages)
    assert posted.rows_of("deadlock").tolist() == [20, 23]
    assert posted.rows_of("ok") is None  # in 21 rows: the Bloom filters tell its blocks
    assert posted.rows_of("zebra").size == 0
    assert posted.rows_of("0123456789abcdef0") is not None  # never asked: ids are not indexed


def test_a_file_without_text():
    posted = built([None, None, ""])
    assert posted.rows_of("anything").size == 0 and posted.rows.size == 0
