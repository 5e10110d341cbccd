"""A rare word's search through pyarrow (query/rare.py) answers as the usual path does."""

from __future__ import annotations

import os
import random
import sys
import threading

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.query import byte_search, kql, rare, token_need
from logmesh.logs.query.engine import Engine
from logmesh.logs.store import layout
from tests.logs.store.test_tokens import FORMS, TEXT, load, node_for, sql_hits
from tests.support.logs import stored
from tests.support.store import HOUR, T0, compact_sealed, event, write_store

LO, HI = T0 - HOUR, T0 + 10 * HOUR
WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]
QUERIES = ["deadlock", "segfault", "deadlock or segfault", "deadlock and service.name:goods",
           "dead*", '"segfault at"', "alpha and deadlock", "nothinghere",
           # DuckDB's WHERE over the candidates' columns it reads: JSON keys, a not, a range
           "deadlock and params.id > 100", "deadlock and upstream:goods",
           "dead* and not service.name:members", "segfault or (deadlock and seq < 100000)"]


def batch(hour: int, n: int, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(3))
        rare_word = " DeadLock!" if rng.random() < 0.03 else " segfault at 0x7f" if rng.random() < 0.01 else ""
        out.append(event(T0 + hour * HOUR + i * 50 + (i % 7), service=rng.choice(["goods", "members"]),
                         message=f"{words} {i}{rare_word}", params={"id": i} if i % 2 else None,
                         labels={"upstream": "goods"} if i % 3 == 0 else None))
    return out


@pytest.fixture
async def store(tmp_path):
    """Four segments of 400 events: three compacted with blocks (= row groups) of 16, 64 and
    the default 16,384 rows (an older store's files), the last one live."""
    writer = await write_store(tmp_path, [batch(h, 400, h) for h in range(4)])
    EVERY[tmp_path] = {e["seq"]: e for e in stored(tmp_path)}
    compact_sealed(tmp_path)
    yield tmp_path
    await writer.close()
    EVERY.pop(tmp_path)


EVERY: dict = {}  # data dir -> {seq: event}, read before compaction


def answers(engine: Engine, q: str, order: str, limit: int) -> list[tuple[int, dict]]:
    out, cursor = [], None
    while True:
        events, cursor = engine.search(kql.parse(q), LO, HI, limit=limit, order=order, cursor=cursor)
        out.extend((e["seq"], e) for e in events)
        if cursor is None:
            return out


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("wave_rows", [8, rare.FIRST_WAVE_ROWS])
async def test_the_same_answers_as_the_usual_path(store, monkeypatch, order, wave_rows):
    """Row groups of three sizes in one store and a live segment, pages of 7 and of 1000,
    newest or oldest first, small waves (stopping early) or one: every answer, field for
    field, is the usual path's (DuckDB over every kept block) and the brute force's."""
    engine = Engine(store)
    every = EVERY[store]
    monkeypatch.setattr(rare, "FIRST_WAVE_ROWS", wave_rows)
    for q in QUERIES:
        for limit in (7, 1000):
            got = answers(engine, q, order, limit)
            with monkeypatch.context() as m:
                m.setattr(rare, "MAX_ROWS", -1)  # every file to the usual path
                usual = answers(engine, q, order, limit)
            assert got == usual, (q, limit)
            assert all(every[s] == e for s, e in got), q
    assert any(len(answers(engine, q, order, 1000)) > 20 for q in QUERIES)
    engine.close()


async def test_the_rare_path_reads_only_files_whose_blocks_are_row_groups(store, monkeypatch):
    """A file whose block index does not line up with its row groups (a hand-made index) is
    left to the usual path, and the answers stay whole."""
    engine = Engine(store)
    want = answers(engine, "deadlock", "desc", 1000)
    blocks = sorted((store / layout.PARQUET_DIR).glob(f"*{layout.BLOCKS_SUFFIX}"))[0]
    index = orjson.loads(blocks.read_bytes())
    index["blocks"] = [[*b[:2], b[2], *b[3:]] for b in index["blocks"]][:-1]  # one block short
    index["blocks"][-1][1] = index["max_ts"]
    index["blocks"][-1][2] += 16
    index["tokens"] = None
    blocks.write_bytes(orjson.dumps(index))
    read: list[str] = []
    real = rare.scan
    monkeypatch.setattr(rare, "scan", lambda pf, ix, *a: read.append(pf.path.name) or real(pf, ix, *a))
    engine.close()
    engine = Engine(store)
    assert answers(engine, "deadlock", "desc", 1000) == want
    assert read and layout.parquet_name(blocks.name[: -len(layout.BLOCKS_SUFFIX)] + ".ndjson") not in read
    engine.close()


async def test_a_damaged_file_read_by_the_rare_path_is_set_aside(store):
    engine = Engine(store)
    pq = sorted((store / layout.PARQUET_DIR).glob("*.parquet"))[0]
    rows = orjson.loads(pq.with_name(layout.blocks_name(pq.name)).read_bytes())["rows"]
    want = [s for s, _ in answers(engine, "deadlock", "desc", 1000) if not T0 <= every_ts(store, s) < T0 + HOUR]
    data = bytearray(pq.read_bytes())
    data[8:len(data) // 2] = b"\xff" * (len(data) // 2 - 8)  # its pages; the footer whole
    pq.write_bytes(bytes(data))
    engine.close()
    engine = Engine(store)
    found, _ = engine.with_deadline(None, engine.search, kql.parse("deadlock"), LO, HI, limit=1000)
    assert [e["seq"] for e in found] == want
    assert engine.counters["damaged_files"] == 1 and engine.counters["damaged_rows"] == rows
    assert not pq.exists()
    engine.close()


def every_ts(store, seq: int) -> int:
    return EVERY[store][seq]["@timestamp"]


async def test_key_mask_is_the_blocks_own_test(store):
    """blocks.ParquetFile.key_mask (numpy, every block at once) says what key_test says, block
    by block, for keys present, absent and prefixes."""
    engine = Engine(store)
    files = engine.refresh().parquet
    assert {len(pf.blocks) for pf in files} >= {25, 7, 1}
    keys = ["deadlock", "segfault", "alpha", "nothinghere", "*dead", "*zzzz", "0x7f"]
    for pf in files:
        for key in keys:
            mask = pf.key_mask(key)
            assert mask is not None and mask.tolist() == [pf.key_test(i)(key) for i in range(len(pf.blocks))], key
        assert any(pf.key_mask("deadlock")) and not all(pf.key_mask("deadlock")) or len(pf.blocks) < 7
    engine.close()


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(TEXT, min_size=1, max_size=8), pick=st.integers(0, 7),
       lo=st.integers(0, 30), size=st.integers(1, 12), form=st.sampled_from(FORMS),
       upper=st.booleans(), second=st.sampled_from(["", "and", "or"]))
def test_the_python_check_and_the_candidates_agree_with_the_sql(messages, pick, lo, size, form,
                                                               upper, second):
    """For random messages and words (a case rule's and a tokenizer's edge characters): the
    rows the byte search keeps (rare.candidates, as Arrow chunks of the messages) hold every
    row the query's SQL matches, and where token_need.word_check answers, it is the SQL."""
    source = messages[pick % len(messages)]
    word = source[lo:lo + size] or "lock"
    node = node_for(form, word.upper() if upper else word)
    if second:
        other = kql.Match(None, kql.Literal(source[:6] or "x"))
        node = (kql.And if second == "and" else kql.Or)((node, other))
    con = duckdb.connect()
    load(con, messages)
    want = sql_hits(con, node)
    need = token_need.need(node)
    if need is not None:
        half = len(messages) // 2  # two chunks, the second a slice: offsets not from 0
        chunks = pa.chunked_array([pa.array(messages[:half], pa.string()),
                                   pa.array(["pad", *messages[half:]], pa.string()).slice(1)])
        dense, memmem = rare.DENSE, byte_search.MEMMEM
        try:
            for rare.DENSE in (dense, 1):  # match_substring past one hit a chunk, then never
                for byte_search.MEMMEM in (memmem, None):  # libc's memmem, bytearray.find
                    kept = set(rare.candidates(need, chunks).tolist())
                    assert {i for i, hit in enumerate(want) if hit} <= kept, (messages, node)
        finally:
            rare.DENSE, byte_search.MEMMEM = dense, memmem
    check = token_need.word_check(node)
    if check is not None:
        assert check(pa.array(messages, pa.string())).to_pylist() == want, (messages, node)
    con.close()


def test_word_check_takes_only_what_it_can_decide():
    """Words and phrases of message under and/or: checked in Python; any other field, a
    pattern, a range, a not, or a value without a token: left to DuckDB."""
    yes = ["deadlock", "message:deadlock", '"segfault at"', "deadlock or segfault",
           "(deadlock and at) or segfault", "message:(deadlock or segfault)"]
    no = ["dead*", "service.name:goods", "deadlock and service.name:goods", "not deadlock",
          "deadlock and not segfault", "params:(deadlock)", "*", "http.response.status_code >= 500"]
    for q in yes:
        assert token_need.word_check(kql.parse(q)) is not None, q
    for q in no:
        assert token_need.word_check(kql.parse(q)) is None, q
    check = token_need.word_check(kql.parse('"segfault at"'))
    assert check(pa.array(["worker 2 SegFault at 0x7f", "segfault, then at", "segfaulted at",
                           None])).to_pylist() == [True, False, False, False]


async def test_footers_kept_are_bounded(store, monkeypatch):
    """At most MAX_FOOTERS files keep their footer between searches; the others read it again
    when asked, and the answers do not change."""
    engine = Engine(store)
    with monkeypatch.context() as m:
        m.setattr(rare, "MAX_ROWS", -1)  # every file to the usual path: no footer read
        want = answers(engine, "deadlock or segfault", "desc", 7)
    monkeypatch.setattr(rare, "MAX_FOOTERS", 1)
    for _ in range(2):
        assert answers(engine, "deadlock or segfault", "desc", 7) == want
        assert sum(pf.arrow_metadata is not None for pf in engine.refresh().parquet) <= 1
    engine.close()


async def test_a_footer_only_pyarrow_refuses_leaves_the_file_to_duckdb(store):
    """A damaged ARROW:schema (pyarrow's own key in the footer, base64) makes pyarrow refuse the
    file while DuckDB reads every page of it: the file takes the usual path, the answers stay
    whole and nothing is set aside (the durability machine found it: 'Invalid base64 input')."""
    engine = Engine(store)
    want = answers(engine, "deadlock", "desc", 7)
    engine.close()
    pq = sorted((store / layout.PARQUET_DIR).glob("*.parquet"))[-1]
    data = bytearray(pq.read_bytes())
    at = data.rfind(b"ARROW:schema") + len(b"ARROW:schema") + 30
    data[at] = ord("!")
    pq.write_bytes(bytes(data))
    engine = Engine(store)
    assert engine.with_deadline(None, answers, engine, "deadlock", "desc", 7) == want
    assert engine.counters["damaged_files"] == 0 and pq.exists()
    engine.close()


def test_the_byte_search_finds_every_place_of_a_word():
    """libc's memmem and bytearray.find give the same offsets, the haystack's stale bytes past
    what was filled never count, and past ``most`` places the answer is None."""
    rng = random.Random(7)
    for _ in range(200):
        text = bytes(rng.choice(b"abAB xy") for _ in range(rng.randrange(0, 300)))
        needle = bytes(rng.choice(b"ab") for _ in range(rng.randrange(1, 4)))
        hay = byte_search.haystack(len(text))
        hay.fill_folded(b"ABAB" * 100, 0, 400)  # stale bytes that would match
        hay.fill_folded(b"--" + text + b"--", 2, 2 + len(text))
        folded = bytes(b | 0x20 for b in text)
        want = [i for i in range(len(folded)) if folded.startswith(needle, i)]
        memmem, places = byte_search.MEMMEM, byte_search.MEMMEM_PLACES
        try:
            for byte_search.MEMMEM in (memmem, None):
                for byte_search.MEMMEM_PLACES in (places, 2):  # then bytearray.find
                    assert hay.find_all(needle, len(text)) == want
                    assert hay.find_all(needle, len(want)) == want
                    if want:
                        assert hay.find_all(needle, len(want) - 1) is None
        finally:
            byte_search.MEMMEM, byte_search.MEMMEM_PLACES = memmem, places


async def test_a_rare_words_matches_are_fetched_in_their_scans_task(store, monkeypatch):
    """Each match of a word the check decides is fetched once, in the task that scanned it
    while the query's claims stay within its limit; past them, only the first ``limit`` are
    fetched, after the wave. The answers are the usual path's (test above)."""
    engine = Engine(store)
    fetched: list[tuple[str, int]] = []
    real = rare.fetch
    monkeypatch.setattr(rare, "fetch", lambda pf, picks, columns: fetched.append(
        (threading.current_thread().name, len(picks))) or real(pf, picks, columns))
    hits = [s for s, e in answers(engine, "segfault", "desc", 1000) if e["@timestamp"] < T0 + 3 * HOUR]
    assert hits and sum(n for _, n in fetched) == len(hits)  # (the fourth hour is live: DuckDB's)
    assert all(name.startswith("rare-read") for name, _ in fetched)
    for limit in (1, 7):
        fetched.clear()
        events, _ = engine.search(kql.parse("deadlock"), LO, HI, limit=limit)
        assert len(events) == limit
        assert sum(n for _, n in fetched) <= 2 * limit  # claimed at most limit, then the first limit
    engine.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice is per thread on Linux only")
async def test_the_reading_threads_run_at_the_engines_nice(store):
    """The rare path's reading threads yield to ingest as DuckDB's worker threads do."""
    engine = Engine(store, worker_nice=7)
    assert answers(engine, "segfault", "desc", 1000)
    readers = rare.pool(7)._threads  # the threads of the pool at this level, started by the search
    assert readers and {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in readers} == {
        max(7, os.getpriority(os.PRIO_PROCESS, 0))}
    engine.close()
