"""The trigram index never hides a match: every message that contains a word has its block kept."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.query import kql, trigram_need
from logmesh.logs.store import trigrams

TEXT = st.text(alphabet=st.sampled_from("abcdeXYZ019 -_:/\"'.é한K"), max_size=40)


def bitmap(con: duckdb.DuckDBPyConnection, messages: list[str]) -> int:
    con.execute("CREATE OR REPLACE TEMP TABLE m (message VARCHAR)")
    con.executemany("INSERT INTO m VALUES (?)", [[x] for x in messages])
    rows = con.execute(trigrams.block_sql("m", 1_000_000)).fetchall()
    return trigrams.bitmap_from_sql(bool(rows[0][1]), bool(rows[0][2]), rows[0][3]) if rows else 0


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(TEXT, min_size=1, max_size=5), pick=st.integers(0, 4),
       lo=st.integers(0, 40), size=st.integers(1, 15))
def test_a_substring_of_a_message_is_allowed(messages, pick, lo, size):
    con = duckdb.connect()
    word = messages[pick % len(messages)][lo:lo + size]
    bm = bitmap(con, messages)
    for q in (word, word.upper(), f'"{word}"'):
        try:
            node = kql.parse(q if q.startswith('"') else kql.Literal(q).to_kql())
        except kql.KQLSyntaxError:
            continue
        need = trigram_need.need(node)
        hit = con.execute("SELECT count(*) FROM m WHERE message ILIKE ? ESCAPE '\\'",
                          ["%" + q.strip('"').replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"]
                          ).fetchone()[0]
        if hit:
            assert need is None or need.allows(bm), (messages, q)


def test_absent_word_is_pruned_and_ids_set_their_masks():
    con = duckdb.connect()
    bm = bitmap(con, ["GET /goods 200 12ms", 'password "0123456789abcdef0123456789abcdef"', "key 98765"])
    assert trigram_need.need(kql.parse("goods")).allows(bm)
    assert not trigram_need.need(kql.parse("deadlock")).allows(bm)
    assert trigram_need.need(kql.parse("4242")).allows(bm)  # every digit trigram: a number was seen
    assert trigram_need.need(kql.parse("beef")).allows(bm)  # every hex trigram: a long hex id was seen
    assert not trigram_need.need(kql.parse("goods and deadlock")).allows(bm)
    assert trigram_need.need(kql.parse("goods or deadlock")).allows(bm)
    assert trigram_need.need(kql.parse("not deadlock")) is None
    assert trigram_need.need(kql.parse("service.name:deadlock")) is None  # only message is indexed
    assert not trigram_need.need(kql.parse("message:dead*lock")).allows(bm)
    assert trigram_need.need(kql.parse("ab")) is None  # shorter than a trigram: no constraint


def test_runs_split_on_anything_but_ascii_letters_and_digits():
    assert trigrams.runs("Dead-LOCK été x9") == ["dead", "lock", "t", "x9"]
