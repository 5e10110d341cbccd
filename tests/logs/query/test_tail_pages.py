"""The live tail's query (Engine.tail) when more events came between two polls than it sends
at once.

Found in a real browser: 12,000 events posted while a page was on live tail, 10,000 shown.
Each poll answered at most ``limit`` matches and the newest generation, so the next poll
began after the rest: they never reached any tail. A poll now answers whole generations
up to about ``limit`` matches and the generation it got to; the next goes on from there.
"""

from __future__ import annotations

import asyncio

from logmesh.logs.query import kql
from logmesh.logs.query.engine import Engine
from tests.support.store import MIN, T0, event, write_store


async def append(writer, n: int, start: int, message: str = "tick") -> None:
    last = writer.append_events([event(T0 + MIN + i, message=f"{message} {start + i}")
                                 for i in range(n)])
    await writer.durable(last)


def drain(engine: Engine, node, gen: int, limit: int) -> tuple[list[dict], list[int]]:
    """Every poll's events until one answers nothing; and each poll's count."""
    got: list[dict] = []
    sizes: list[int] = []
    while True:
        events, gen = engine.tail(node, gen, limit=limit)
        if not events:
            return got, sizes
        got += events
        sizes.append(len(events))


async def test_a_tail_poll_over_its_limit_leaves_the_rest_to_the_next(tmp_path):
    writer = await write_store(tmp_path, [[event(T0, message="first")]])
    engine = Engine(tmp_path)
    snap = engine.refresh()
    for k in range(6):  # six loads of 400: more than one poll's 1000
        await append(writer, 400, k * 400)
        await asyncio.sleep(0.15)  # each its own refresh (a tail reuses one younger than 0.1 s)
        engine.refresh(max_age=0)
    got, sizes = drain(engine, None, snap.gen, limit=1000)
    seqs = [e["seq"] for e in got]
    assert len(seqs) == 2400 and len(set(seqs)) == 2400, sizes
    assert max(sizes) <= 1000 + 400, sizes
    # a query's matches only, each once, in time order within a poll
    got, _ = drain(engine, kql.parse('"tick 2399" or "tick 0"'), snap.gen, limit=1)
    assert [e["message"] for e in got] == ["tick 0", "tick 2399"]
    engine.close()


async def test_one_load_larger_than_the_limit_comes_whole(tmp_path):
    writer = await write_store(tmp_path, [[event(T0, message="first")]])
    engine = Engine(tmp_path)
    snap = engine.refresh()
    await append(writer, 1500, 0)
    await asyncio.sleep(0.15)
    got, sizes = drain(engine, None, snap.gen, limit=1000)
    assert len({e["seq"] for e in got}) == 1500, sizes
    assert all("_gen" not in e and "_tail_gen" not in e for e in got)
    engine.close()
