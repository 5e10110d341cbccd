"""RED under a flood of distinct paths (query/red.py): what is computed and returned is bounded.

Found from outside: 60k distinct ``url.path`` values (ids in paths, a scanner) made
``/api/v1/routes`` take ~5 s and ``/routes/series`` ~9.7 s, nearly all of it Python building a
row per route that the answer then left off. Now DuckDB keeps the ``limit`` busiest routes and
adds up the rest (``other``). Checked by counting the rows that come back from DuckDB (no timing),
and by brute force: the busiest routes, and the rest's routes, requests and errors exact, whether
the events are live, compacted (summaries) or read by the exact pass.
"""

from __future__ import annotations

import asyncio

import pytest

from logmesh.logs.query import red
from logmesh.logs.query.engine import Engine
from logmesh.logs.store.compact import Compactor
from tests.logs.query.test_red_summaries import ROUTES, build
from tests.support.store import HOUR, T0, event, write_store

PATHS = 3_000  # distinct routes; the busiest are the paths with the most requests (ties by name)
LIMIT = 7
ROWS_BOUND = 4 * LIMIT + 20  # rows of one DuckDB answer: kept routes x (route, upstreams), services, rest


def flood(n_paths: int = PATHS) -> tuple[list[list], dict[str, tuple[int, int, int]]]:
    """Two hours of access logs, path i asked 1 + i % 5 times (every 13th a 500, every 11th a
    404); and per route (requests, errors, server errors)."""
    hours: list[list] = [[], []]
    truth: dict[str, tuple[int, int, int]] = {}
    for i in range(n_paths):
        path = f"/items/{i}"
        n = e4 = e5 = 0
        for j in range(1 + i % 5):
            status = 500 if (i + j) % 13 == 0 else 404 if (i + j) % 11 == 0 else 200
            hours[j % 2].append((path, status, 1.0 + (i * 7 + j) % 90))
            n, e4, e5 = n + 1, e4 + (status >= 400), e5 + (status >= 500)
        truth[f"GET {path}"] = (n, e4, e5)
    return hours, truth


def write(data_dir, hours: list[list], compacted: bool) -> None:
    """The hours' events, one segment an hour; the first compacted when asked (its summary
    answers), the last left to be read."""
    async def go() -> None:
        batches = [[event(T0 + h * HOUR + k * 100, service="gateway", method="GET", path=p, status=s,
                          labels={"upstream": "goods", "event.duration_ms": ms})
                    for k, (p, s, ms) in enumerate(evs)] for h, evs in enumerate(hours)]
        writer = await write_store(data_dir, batches)
        if compacted:
            Compactor(data_dir, grace=0).run_once()
        await writer.close()

    asyncio.run(go())


def counted(engine: Engine) -> list[int]:
    """The number of rows each of the engine's DuckDB answers brings back to Python, from now on."""
    sizes: list[int] = []
    run = engine.db.run

    def run_counted(sql, params):
        names, rows = run(sql, params)
        sizes.append(len(rows))
        return names, rows

    engine.db.run = run_counted
    return sizes


def want_top(truth: dict[str, tuple[int, int, int]], limit: int) -> tuple[list[str], tuple[int, int, int, int]]:
    ranked = sorted(truth, key=lambda r: (-truth[r][0], r))
    rest = ranked[limit:]
    return ranked[:limit], (len(rest), *(sum(truth[r][i] for r in rest) for i in range(3)))


@pytest.mark.parametrize("how", ["read", "summaries", "exact"])
def test_a_flood_of_routes_brings_back_the_busiest_and_adds_up_the_rest(tmp_path, how):
    hours, truth = flood()
    write(tmp_path, hours, compacted=how != "read")
    top, (n_rest, req, e4, e5) = want_top(truth, LIMIT)
    engine = Engine(tmp_path)
    try:
        start, end = T0 - HOUR, T0 + 3 * HOUR
        sizes = counted(engine)
        r = red.routes(engine, None, start, end, limit=LIMIT, now=end, exact=how == "exact")
        assert max(sizes) <= ROWS_BOUND, sizes  # not a row per route
        assert r["percentiles"] == ("estimated" if how == "summaries" else "exact")
        assert [x["route"] for x in r["routes"]] == top
        for x in r["routes"]:
            assert (x["requests"], x["errors"], x["server_errors"]) == truth[x["route"]]
            assert x["upstream"] == "goods" and x["p50_ms"] is not None
        assert r["routes_left_off"] == n_rest == PATHS - LIMIT
        other = r["other"]
        assert (other["routes"], other["requests"], other["errors"], other["server_errors"]) == (n_rest, req, e4, e5)
        assert other["error_rate"] == round(e4 / req, 4)

        sizes.clear()
        s = red.series(engine, None, start, end, limit=LIMIT, now=end, exact=how == "exact")
        assert max(sizes) <= ROWS_BOUND * len(s["buckets"]), sizes
        assert [x["route"] for x in s["routes"]] == top
        assert [x["requests_total"] for x in s["routes"]] == [truth[t][0] for t in top]
        assert s["routes_left_off"] == n_rest and s["other"]["requests"] == req
    finally:
        engine.close()


def test_a_duration_no_bucket_holds_among_the_routes_left_off_still_makes_the_exact_pass_answer(tmp_path):
    """The summaries cannot answer a route whose window holds a BAD duration; it being left off
    must not hide that (the percentiles would be estimated from a window that was skipped)."""
    quiet = ROUTES.index(("POST", "/members", "members"))
    hours = [[(i * 1000, 0, 200, 5.0) for i in range(30)] + [(40_000, quiet, 200, -1.0)], []]
    build(tmp_path, hours, 64)
    engine = Engine(tmp_path)
    try:
        r = red.routes(engine, None, T0 - HOUR, T0 + 3 * HOUR, limit=1, now=T0 + 3 * HOUR)
        assert [x["route"] for x in r["routes"]] == ["GET /goods"] and r["routes_left_off"] == 1
        assert r["percentiles"] == "exact"
    finally:
        engine.close()
