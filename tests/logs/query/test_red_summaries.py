"""RED from summaries (store/red_summary.py, query/red.py) against the exact pass.

Hypothesis makes a few hours of access logs (routes, statuses, upstreams, durations
including none, zero, tiny, huge and ones no bucket holds), compacts them into files of
small blocks (the last segment stays live), and asks for a random range: the summaries
merged over whatever blocks the range covers, with the edges and the live segment read,
must give the exact pass's counts and upstreams, and percentiles within ERROR_BOUND (the
series' p95s within SERIES_ERROR_BOUND).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.query import kql, red
from logmesh.logs.query.engine import Engine
from logmesh.logs.store import compact, layout, red_summary
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.retention import Retention
from tests.support.store import HOUR, MIN, T0, event, write_store, written_at

ROUTES = [("GET", "/goods", "goods"), ("POST", "/members", "members"), ("GET", "/nope", None),
          ("DELETE", "/goods", "goods"), ("GET", "/goods", "members")]  # GET /goods: two upstreams
DURATIONS = st.one_of(st.none(), st.just(0.0), st.floats(0.0001, 0.01),
                      st.floats(0.3, 500.0).map(lambda v: round(v, 3)), st.just(2e9))
ACCESS = st.tuples(st.integers(0, HOUR - 1), st.integers(0, len(ROUTES) - 1),
                   st.sampled_from([200, 201, 400, 404, 500, 503]), DURATIONS)


def access(ts: int, route: int, status: int, ms: float | None) -> object:
    method, path, upstream = ROUTES[route]
    labels: dict = {"errorcode": 0}
    if ms is not None:
        labels["event.duration_ms"] = ms
    if upstream is not None:
        labels["upstream"] = upstream
    return event(ts, service="gateway", method=method, path=path, status=status, labels=labels)


def build(data_dir: Path, hours: list[list[tuple]], block_rows: int) -> None:
    """One segment per hour, each compacted but the last (left live)."""
    batches = [[access(T0 + h * HOUR + off, r, s, ms) for off, r, s, ms in evs] + [
        event(T0 + h * HOUR + 7, service="goods", labels=None)] for h, evs in enumerate(hours)]

    async def go() -> None:
        writer = await write_store(data_dir, batches)
        Compactor(data_dir, grace=0, block_rows=block_rows).run_once()
        await writer.close()  # seals the last segment; it is not compacted: read from its file

    asyncio.run(go())


def near(est: float, exact: float, bound: float = red_summary.ERROR_BOUND) -> bool:
    """Within the bound, plus both answers' rounding to 0.001 ms."""
    return abs(est - exact) <= bound * abs(exact) + 0.00101


def same_routes(est: dict, ex: dict) -> None:
    assert [r["route"] for r in est["routes"]] == [r["route"] for r in ex["routes"]]
    for a, b in zip(est["routes"] + list(est["services"].values()),
                    ex["routes"] + list(ex["services"].values()), strict=True):
        for k in ("requests", "errors", "server_errors", "error_rate", "rate_per_s", "upstream",
                  "logged_requests"):
            assert a.get(k) == b.get(k), k
        for k in ("p50_ms", "p95_ms", "p99_ms"):
            assert (a[k] is None) == (b[k] is None), k
            if b[k] is not None:
                assert near(a[k], b[k]), (k, a[k], b[k])
    assert est["services"].keys() == ex["services"].keys()


@settings(max_examples=40, deadline=None)
@given(hours=st.lists(st.lists(ACCESS, max_size=60), min_size=2, max_size=3),
       bad=st.one_of(st.none(), st.tuples(st.integers(0, 2), st.integers(0, 59))),
       block_rows=st.sampled_from([4, 16, 1000]),
       lo=st.one_of(st.just(-HOUR), st.integers(-HOUR, 3 * HOUR)),
       span=st.one_of(st.just(5 * HOUR), st.integers(1, 4 * HOUR)),
       interval=st.sampled_from([MIN, 15 * MIN, 30 * MIN, HOUR]))
def test_summaries_merged_over_any_blocks_match_the_exact_pass(tmp_path_factory, hours, bad, block_rows,
                                                               lo, span, interval):
    if bad is not None and bad[0] < len(hours) and bad[1] < len(hours[bad[0]]):
        off, r, s, _ = hours[bad[0]][bad[1]]
        hours[bad[0]][bad[1]] = (off, r, s, -1.0)  # a duration no bucket holds: its block is read
    data_dir = tmp_path_factory.mktemp("red")
    build(data_dir, hours, block_rows)
    engine = Engine(data_dir)
    try:
        start, end = T0 + lo, T0 + lo + span
        est = red.routes(engine, None, start, end, now=end)
        ex = red.routes(engine, None, start, end, now=end, exact=True)
        assert ex["percentiles"] == "exact"
        same_routes(est, ex)
        n = (end // interval) - (start // interval) + 1
        if n <= red.MAX_SERIES_BUCKETS:
            s_est = red.series(engine, None, start, end, interval=interval, now=end)
            s_ex = red.series(engine, None, start, end, interval=interval, now=end, exact=True)
            assert [r["route"] for r in s_est["routes"]] == [r["route"] for r in s_ex["routes"]]
            for a, b in zip(s_est["routes"], s_ex["routes"], strict=True):
                for k in ("requests", "errors", "server_errors", "requests_total", "upstream"):
                    assert a[k] == b[k], k
                for x, y in zip(a["p95_ms"], b["p95_ms"], strict=True):
                    assert (x is None) == (y is None)
                    if y is not None:
                        assert near(x, y, red_summary.SERIES_ERROR_BOUND), (x, y)
    finally:
        engine.close()


async def test_whole_files_are_answered_from_summaries_and_old_files_are_read(tmp_path):
    hours = [[(i * 1000, i % len(ROUTES), 500 if i % 9 == 0 else 200, 1.0 + i) for i in range(300)]
             for _ in range(3)]
    await asyncio.to_thread(build, tmp_path, hours, 64)
    start, end = T0 - HOUR, T0 + 3 * HOUR
    engine = Engine(tmp_path)
    try:
        est = red.routes(engine, None, start, end, now=end)
        assert est["percentiles"] == "estimated"
        same_routes(est, red.routes(engine, None, start, end, now=end, exact=True))
        assert sum(r["requests"] for r in est["routes"]) == 900
        # a query (KQL) the summaries cannot answer: the exact pass
        q = red.routes(engine, kql.parse("url.path:/goods"), start, end, now=end)
        assert q["percentiles"] == "exact" and {r["path"] for r in q["routes"]} == {"/goods"}
        # a series of seconds (or minutes) cannot use 15-minute windows: the exact pass
        s = red.series(engine, None, T0, T0 + 10 * MIN, interval=1000, now=end)
        assert s["percentiles"] == "exact"
        s = red.series(engine, None, start, end, interval=15 * MIN, now=end)
        assert s["percentiles"] == "estimated"
    finally:
        engine.close()
    # a store compacted before summaries (no .red, no "red" in its index): read, same answer
    for red_file in (tmp_path / layout.PARQUET_DIR).glob(f"*{layout.RED_SUFFIX}"):
        red_file.unlink()
    engine = Engine(tmp_path)
    try:
        old = red.routes(engine, None, start, end, now=end)
        assert old["percentiles"] == "exact"
        assert [(r["route"], r["requests"], r["errors"]) for r in old["routes"]] == [
            (r["route"], r["requests"], r["errors"]) for r in est["routes"]]
    finally:
        engine.close()


async def test_a_damaged_summary_is_read_around_and_said(tmp_path, caplog):
    hours = [[(i * 1000, i % len(ROUTES), 200, 2.0 + i) for i in range(200)] for _ in range(2)]
    await asyncio.to_thread(build, tmp_path, hours, 32)
    [red_file] = (tmp_path / layout.PARQUET_DIR).glob(f"*{layout.RED_SUFFIX}")
    red_file.write_bytes(b"PAR1 not a parquet file at all PAR1")
    engine = Engine(tmp_path)
    try:
        start, end = T0 - HOUR, T0 + 3 * HOUR
        got = red.routes(engine, None, start, end, now=end)
        assert got["percentiles"] == "exact"
        assert sum(r["requests"] for r in got["routes"]) == 400
        assert "RED summary cannot be read" in caplog.text
    finally:
        engine.close()


async def test_retention_deletes_a_files_summary_with_it(tmp_path):
    hours = [[(i * 1000, 0, 200, 1.0) for i in range(50)] for _ in range(3)]
    await asyncio.to_thread(build, tmp_path, hours, 16)
    pq = tmp_path / layout.PARQUET_DIR
    assert len(list(pq.glob(f"*{layout.RED_SUFFIX}"))) == 2
    written_at(tmp_path, T0)  # as the fake clock has it
    Retention(tmp_path, max_age_ms=1, clock=lambda: (T0 + 10 * HOUR) / 1000).run_once()
    assert list(pq.glob(f"*{layout.RED_SUFFIX}")) == [] and list(pq.glob("*.parquet")) == []


async def test_a_crash_before_the_commit_point_leaves_its_summary_unread(tmp_path, monkeypatch):
    """Compaction dies after writing a segment's .red and block index, before the Parquet
    file's rename (the commit point): the segment still answers, its .red is not read (no
    event counted twice), and the next pass writes both again."""
    hours = [[(i * 1000, i % len(ROUTES), 200, 3.0 + i) for i in range(100)] for _ in range(2)]
    batches = [[access(T0 + h * HOUR + off, r, s, ms) for off, r, s, ms in evs] for h, evs in enumerate(hours)]
    writer = await write_store(tmp_path, batches)
    await writer.close()
    replace = compact.os.replace
    died: list[str] = []

    def crash_once(src, dst):
        if str(dst).endswith(layout.PARQUET_SUFFIX) and not died:
            died.append(str(dst))
            raise OSError("killed before the rename")
        return replace(src, dst)

    monkeypatch.setattr(compact.os, "replace", crash_once)
    assert await asyncio.to_thread(Compactor(tmp_path, grace=0).run_once) == 1
    pq = tmp_path / layout.PARQUET_DIR
    assert len(list(pq.glob(f"*{layout.RED_SUFFIX}"))) == 2 and len(list(pq.glob("*.parquet"))) == 1
    start, end = T0 - HOUR, T0 + 3 * HOUR
    for _ in range(2):
        engine = Engine(tmp_path)
        try:
            est = red.routes(engine, None, start, end, now=end)
            assert est["percentiles"] == "estimated"
            assert sum(r["requests"] for r in est["routes"]) == 200
            same_routes(est, red.routes(engine, None, start, end, now=end, exact=True))
        finally:
            engine.close()
        assert await asyncio.to_thread(Compactor(tmp_path, grace=0).run_once) in (0, 1)
    assert len(list(pq.glob("*.parquet"))) == 2
