"""A search page is bounded by its events' bytes (query/page_bytes.py), and paging through
with its cursor gives every event exactly once, whichever path read it.

Found from outside: 75 events of 4 MiB and a search with ``limit=1000`` left the worker at
1.85 GB; a page held every one of its events, whatever their size. The real process's
memory is tests/integration/test_page_bytes.py's; here, the pages' contents.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from logmesh.logs.query import kql, rare
from logmesh.logs.query.engine import Engine
from logmesh.logs.query.page_bytes import PAGE_BYTES, event_bytes, fitting
from tests.support.logs import stored
from tests.support.store import HOUR, MIN, T0, compact_sealed, event, write_store

LO, HI = T0 - HOUR, T0 + 10 * HOUR
QUERIES = [None, "deadlock", "service.name:goods", "deadlock and params.id > 10", "dead*"]


def batch(hour: int, n: int, seed: int) -> list:
    """Events of 10 B to 40 KB (message, labels or params), some sharing a timestamp."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        size = rng.choice([10, 100, 2_000, 40_000])
        word = " deadlock" if rng.random() < 0.2 else ""
        big = "x" * size
        out.append(event(T0 + hour * HOUR + (i // 3) * 50, service=rng.choice(["goods", "members"]),
                         message=f"{i}{word} {big if i % 3 == 0 else 'm'}",
                         params={"id": i, "p": big} if i % 3 == 1 else {"id": i},
                         labels={"l": big} if i % 3 == 2 else None))
    return out


@pytest.fixture
async def store(tmp_path):
    """Three segments of 150 events compacted (row groups of 16, 64 and 16,384 rows), a
    fourth live: the rare path, the usual path and the live table all answer."""
    writer = await write_store(tmp_path, [batch(h, 150, h) for h in range(4)])
    EVERY[tmp_path] = {e["seq"]: e for e in stored(tmp_path)}
    compact_sealed(tmp_path)
    yield tmp_path
    await writer.close()
    EVERY.pop(tmp_path)


EVERY: dict = {}  # data dir -> {seq: event}, read before compaction


def pages(engine: Engine, q: str | None, order: str, limit: int) -> list[list[dict]]:
    out, cursor = [], None
    node = kql.parse(q) if q else None
    while True:
        events, cursor = engine.search(node, LO, HI, limit=limit, order=order, cursor=cursor)
        out.append(events)
        if cursor is None:
            return out
        assert len(out) < 10_000


@pytest.mark.parametrize("sizes, used, budget, fits", [
    ([], 0, 10, 0), ([5, 5, 5], 0, 10, 2), ([11, 1], 0, 10, 1), ([11], 3, 10, 0),
    ([3, 3, 3, 3], 4, 10, 2), ([0, 0, 10, 1], 0, 10, 3),
])
def test_fitting_takes_what_fits_and_at_least_one_on_an_empty_page(sizes, used, budget, fits):
    assert fitting(sizes, used, budget) == fits


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_pages_cut_by_bytes_give_every_event_once(store, order):
    """Budgets from one byte (an event a page) to more than the store, pages of 7 or 1000,
    every query: the pages put together are the answer of one unbounded page, field for field
    the stored events, and each page holds at most the budget or a single event."""
    engine = Engine(store)
    every = EVERY[store]
    whole = {}
    engine.page_bytes = 10**12
    for q in QUERIES:
        whole[q] = [e for p in pages(engine, q, order, 10_000) for e in p]
    assert len(whole[None]) == len(every)
    assert [e["seq"] for e in whole[None]] == [e["seq"] for e in sorted(
        every.values(), key=lambda e: (e["@timestamp"], e["seq"]), reverse=order == "desc")]
    cut = 0
    for budget in (1, 30_000, 100_000, 500_000):
        engine.page_bytes = budget
        for q in QUERIES:
            for limit in (7, 1000):
                got = pages(engine, q, order, limit)
                assert [e for p in got for e in p] == whole[q], (q, budget, limit)
                for p in got:
                    assert len(p) <= limit
                    # event_bytes is DuckDB's count near enough (an object's JSON text as orjson writes it)
                    assert len(p) == 1 or sum(map(event_bytes, p)) <= budget * 1.02, (q, budget, limit)
                cut += sum(0 < len(p) < limit for p in got[:-1])
    assert cut > 50  # the budget, not the limit, ended many pages
    assert all(every[e["seq"]] == e for e in whole[None])
    engine.close()


async def test_the_rare_paths_events_are_cut_by_the_budget_too(store, monkeypatch):
    """A word the rare path finds in the Parquet files (query/rare.py) and DuckDB in the live
    segment: the merged page is cut by the budget as the usual path's is, with a cursor that
    goes on."""
    engine = Engine(store)
    scanned = []
    real = rare.scan
    monkeypatch.setattr(rare, "scan", lambda *a, **k: scanned.append(1) or real(*a, **k))
    engine.page_bytes = 10**12
    whole = [e for p in pages(engine, "deadlock", "desc", 1000) for e in p]
    engine.page_bytes = 50_000
    got = pages(engine, "deadlock", "desc", 1000)
    assert scanned and len(got) > 3
    assert [e for p in got for e in p] == whole
    engine.close()


async def test_a_group_of_big_rows_is_left_to_the_usual_path(store, monkeypatch):
    """The rare path reads row groups whole; a file with a group of more than MAX_GROUP_BYTES
    goes to DuckDB's path, whose pages the budget cuts where the rows are read."""
    engine = Engine(store)
    want = [e for p in pages(engine, "deadlock", "desc", 1000) for e in p]
    monkeypatch.setattr(rare, "MAX_GROUP_BYTES", 1000)
    monkeypatch.setattr(rare, "scan", lambda *a, **k: pytest.fail("the rare path read a group"))
    assert [e for p in pages(engine, "deadlock", "desc", 1000) for e in p] == want
    engine.close()


async def test_small_events_pages_are_as_before(store):
    """The default budget (PAGE_BYTES) never cuts a page of small events: every page but the
    last holds ``limit`` events, the last has no cursor, and the same cursor gives the same
    next page twice."""
    engine = Engine(store)
    assert engine.page_bytes == PAGE_BYTES
    for q in QUERIES:
        got = pages(engine, q, "desc", 7)
        assert all(len(p) == 7 for p in got[:-1]) and len(got[-1]) <= 7
    first, cursor = engine.search(None, LO, HI, limit=100)
    assert len(first) == 100 and cursor is not None
    assert engine.search(None, LO, HI, limit=100, cursor=cursor) == engine.search(None, LO, HI, limit=100,
                                                                                   cursor=cursor)
    engine.close()


async def test_a_tail_poll_is_bounded_by_bytes_too(tmp_path):
    """Engine.tail answers whole generations (loads of the live table) while they fit the
    budget, at least one: a poll after six loads of 30 events of 20 KB, with a budget of two
    loads, takes three polls, and every event comes once."""
    writer = await write_store(tmp_path, [[event(T0, message="first")]])
    engine = Engine(tmp_path)
    snap = engine.refresh()
    for k in range(6):
        last = writer.append_events([event(T0 + MIN + i, message=f"{k} {i} " + "y" * 20_000) for i in range(30)])
        await writer.durable(last)
        await asyncio.sleep(0.15)  # each its own refresh, its own generation
        engine.refresh(max_age=0)
    engine.page_bytes = 1_500_000  # a load is ~600 kB: two fit, not three
    gen, polls = snap.gen, []
    while True:
        events, gen = engine.tail(None, gen)
        if not events:
            break
        polls.append(events)
    seqs = [e["seq"] for p in polls for e in p]
    assert len(seqs) == 180 and len(set(seqs)) == 180
    assert [len(p) for p in polls] == [60, 60, 60]
    engine.close()
