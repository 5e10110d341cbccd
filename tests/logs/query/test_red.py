"""RED per route and per service (query/red.py) against brute force over the events written.

Three hours of a small mesh's logs, one segment an hour: the gateway's access logs (route,
status, upstream, duration) and the services' own request logs, with a service's error
record that repeats a request. The answers must be the same whether the events are in the
live table, in sealed segments read from their files, or in Parquet files.
"""

from __future__ import annotations

import json
import math
import time

import aiohttp
import pytest

from logmesh.logs.query import kql, red, view
from logmesh.logs.query.engine import Engine, QueryError
from logmesh.logs.store import red_summary
from logmesh.logs.store.compact import Compactor
from tests.support.logs import HOST
from tests.support.store import HOUR, MIN, T0, event, write_store

LO, HI = T0 - HOUR, T0 + 4 * HOUR


def quantile_cont(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks: DuckDB's quantile_cont."""
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    return xs[lo] + (h - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])


def access(ts: int, method: str, path: str, status: int, ms: float | None,
           upstream: str | None) -> object:
    labels: dict = {"errorcode": 0 if status < 400 else status}
    if ms is not None:
        labels["event.duration_ms"] = ms
    if upstream is not None:
        labels["upstream"], labels["upstream.address"] = upstream, "127.0.0.1:9010"
    return event(ts, service="gateway", method=method, path=path, status=status,
                 level="error" if status >= 500 else "warning" if status >= 400 else "info",
                 labels=labels)


def own(ts: int, service: str, method: str, path: str) -> object:
    return event(ts, service=service, method=method, path=path, status=None)


def hour_of_traffic(h: int) -> tuple[list, list[dict]]:
    """One hour's events, and what each gateway request was (for the brute force)."""
    events, truth = [], []
    for i in range(120):
        ts = T0 + h * HOUR + i * 20_000
        if i % 3 == 0:
            method, path, upstream, status = "POST", "/members", "members", 201
        elif i % 10 == 7:
            method, path, upstream, status = "GET", "/nope", None, 404  # the gateway's own 404
        else:
            method, path, upstream = "GET", "/goods", "goods"
            status = 500 if i % 17 == 0 else 400 if i % 11 == 0 else 200
        ms = None if upstream is None else round(1 + (i * 37 % 101) * (h + 1) * 0.7, 3)
        events.append(access(ts, method, path, status, ms, upstream))
        truth.append({"ts": ts, "route": f"{method} {path}", "status": status, "ms": ms, "upstream": upstream})
        if upstream is not None:
            events.append(own(ts + 1, upstream, method, path))
            if status >= 500:  # the service's error record repeats the request: not a request
                events.append(event(ts + 2, service=upstream, method=method, path=path, status=None,
                                    level="error", message="failed", labels=None))
    events.append(event(T0 + h * HOUR + 5, service="other", method=None, path=None, status=None))
    return events, truth


@pytest.fixture
async def store(tmp_path):
    batches, truth = [], []
    for h in range(3):
        events, t = hour_of_traffic(h)
        batches.append(events)
        truth.extend(t)
    writer = await write_store(tmp_path, batches)  # the third hour stays in the active segment
    yield tmp_path, truth
    await writer.close()


def brute(truth: list[dict], keep=lambda r: True) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in truth:
        if not keep(r):
            continue
        for key in (r["route"], "svc:" + r["upstream"] if r["upstream"] else None):
            if key is None:
                continue
            b = out.setdefault(key, {"requests": 0, "errors": 0, "server_errors": 0, "ms": [], "up": {}})
            b["requests"] += 1
            b["errors"] += r["status"] >= 400
            b["server_errors"] += r["status"] >= 500
            if r["ms"] is not None:
                b["ms"].append(r["ms"])
            if r["upstream"]:
                b["up"][r["upstream"]] = b["up"].get(r["upstream"], 0) + 1
    return out


def near(want: float, rel: float) -> object:
    """A percentile: exact (rel 0) from the exact pass; from summaries within ``rel`` of it
    (the answer is rounded to 0.001 ms on top)."""
    return pytest.approx(want, abs=rel * abs(want) + 0.0006)


def check(got: dict, want: dict, seconds: float, rel: float = 0.0) -> None:
    assert got["requests"] == want["requests"]
    assert got["errors"] == want["errors"] and got["server_errors"] == want["server_errors"]
    assert got["error_rate"] == round(want["errors"] / want["requests"], 4)
    assert got["rate_per_s"] == round(want["requests"] / seconds, 3)
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        if want["ms"]:
            assert got[name] == near(quantile_cont(want["ms"], q), rel), name
        else:
            assert got[name] is None


@pytest.mark.parametrize("mode", ["live", "cold", "compacted"])
async def test_routes_and_services_match_brute_force(store, mode, monkeypatch):
    data_dir, truth = store
    if mode == "compacted":
        assert Compactor(data_dir, grace=0).run_once() == 2
    if mode == "cold":
        monkeypatch.setattr(view, "LIVE_SEALED_SECONDS", -1.0)
    engine = Engine(data_dir)
    try:
        r = red.routes(engine, None, LO, HI, now=HI)
        seconds = (HI - LO + 1) / 1000
        want = brute(truth)
        rel = red_summary.ERROR_BOUND if mode == "compacted" else 0.0  # summaries answer Parquet
        assert r["seconds"] == seconds and (r["from"], r["to"]) == (LO, HI)
        assert [x["route"] for x in r["routes"]] == ["GET /goods", "POST /members", "GET /nope"]
        for x in r["routes"]:
            check(x, want[x["route"]], seconds, rel)
            assert [x["method"], x["path"]] == x["route"].split(" ")
        assert [x["upstream"] for x in r["routes"]] == ["goods", "members", None]
        assert r["routes_left_off"] == 0
        assert sorted(r["services"]) == ["goods", "members"]  # "other" logs no request
        for name, s in r["services"].items():
            check(s, want["svc:" + name], seconds, rel)
        # a service's own logs: one per request it received (its error record is no request)
        assert r["services"]["goods"]["logged_requests"] == want["svc:goods"]["requests"]
        assert r["services"]["members"]["logged_requests"] == want["svc:members"]["requests"]
        assert r["routes"][0]["errors"] > r["routes"][0]["server_errors"] > 0  # 400s count as errors
    finally:
        engine.close()


async def test_a_query_narrows_the_events_counted(store):
    data_dir, truth = store
    engine = Engine(data_dir)
    try:
        start, end = T0 + HOUR, T0 + 2 * HOUR - 1  # the second hour only
        r = red.routes(engine, kql.parse("url.path:/goods"), start, end, now=HI)
        want = brute(truth, lambda x: start <= x["ts"] <= end and x["route"] == "GET /goods")
        [route] = r["routes"]
        check(route, want["GET /goods"], (end - start + 1) / 1000)
        assert set(r["services"]) == {"goods"}
        assert r["services"]["goods"]["logged_requests"] == want["svc:goods"]["requests"]
        assert red.routes(engine, None, T0 - 2 * HOUR, T0 - HOUR, now=HI)["routes"] == []
    finally:
        engine.close()


async def test_limit_keeps_the_busiest_routes(store):
    engine = Engine(store[0])
    try:
        r = red.routes(engine, None, LO, HI, limit=1, now=HI)
        assert [x["route"] for x in r["routes"]] == ["GET /goods"] and r["routes_left_off"] == 2
    finally:
        engine.close()


@pytest.mark.parametrize("compacted", [False, True])
async def test_series_per_route_and_bucket(store, compacted):
    data_dir, truth = store
    if compacted:
        Compactor(data_dir, grace=0).run_once()
    engine = Engine(data_dir)
    try:
        s = red.series(engine, None, T0, T0 + 3 * HOUR - 1, interval=30 * MIN, now=HI)
        assert s["interval_ms"] == 30 * MIN and s["buckets"] == [T0 + i * 30 * MIN for i in range(6)]
        assert [x["route"] for x in s["routes"]] == ["GET /goods", "POST /members", "GET /nope"]
        for x in s["routes"]:
            for k, t in enumerate(s["buckets"]):
                want = brute(truth, lambda r, t=t, x=x: t <= r["ts"] < t + 30 * MIN and r["route"] == x["route"])
                w = want.get(x["route"], {"requests": 0, "errors": 0, "server_errors": 0, "ms": []})
                assert (x["requests"][k], x["errors"][k], x["server_errors"][k]) == (
                    w["requests"], w["errors"], w["server_errors"]), (x["route"], k)
                want_p95 = quantile_cont(w["ms"], 0.95) if w["ms"] else None
                rel = red_summary.SERIES_ERROR_BOUND if compacted else 0.0
                assert x["p95_ms"][k] == (None if want_p95 is None else near(want_p95, rel))
            assert x["requests_total"] == sum(x["requests"])
        assert [x["upstream"] for x in s["routes"]] == ["goods", "members", None]
        auto = red.series(engine, None, T0, T0 + 3 * HOUR - 1, now=HI)
        goods = sum(r["route"] == "GET /goods" for r in truth)
        assert len(auto["buckets"]) <= 101 and sum(auto["routes"][0]["requests"]) == goods
        with pytest.raises(QueryError, match="buckets"):
            red.series(engine, None, LO, HI, interval=1, now=HI)
    finally:
        engine.close()


async def test_the_api_answers_routes_and_series(start_logs):
    server = await start_logs()
    base = f"http://{HOST}:{server.config.http_port}"
    lines = [{"service.name": "gateway", "http.request.method": "DELETE", "url.path": "/goods",
              "http.response.status_code": 400 if i % 2 else 200,
              "labels": {"event.duration_ms": 10 + i, "upstream": "goods", "errorcode": 0}}
             for i in range(10)]
    lines += [{"service.name": "goods", "http.request.method": "DELETE", "url.path": "/goods"}] * 10
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data="\n".join(map(json.dumps, lines))) as r:
            assert (await r.json())["accepted"] == 20
        async with s.get(f"{base}/api/v1/routes", params={"from": "now-1h"}) as r:
            body = await r.json()
            assert r.status == 200, body
        [route] = body["routes"]
        assert route["route"] == "DELETE /goods" and route["requests"] == 10 and route["errors"] == 5
        assert route["p50_ms"] == 14.5 and route["upstream"] == "goods"
        assert body["services"]["goods"]["logged_requests"] == 10 and body["took_ms"] >= 0
        async with s.post(f"{base}/api/v1/routes/series", json={"from": "now-1h", "interval": "1m"}) as r:
            series = await r.json()
            assert r.status == 200, series
        assert series["interval_ms"] == 60_000 and sum(series["routes"][0]["requests"]) == 10
        for path, params in (("/api/v1/routes", {"limit": "0"}), ("/api/v1/routes/series", {"interval": "x"}),
                             ("/api/v1/routes", {"q": "a:("}),
                             ("/api/v1/routes/series", {"interval": "1s", "from": "now-7d"})):
            async with s.get(f"{base}{path}", params=params) as r:
                assert r.status == 400, (path, params, await r.text())


async def test_durations_no_bucket_holds_are_left_out_of_the_percentiles_and_counted(start_logs):
    """An access log with ``event.duration_ms`` -1e308 made the exact pass's p50 -1e308 (found
    from outside): negative, not-a-number, infinite and absurd (past red_summary.MAX_MS)
    durations are left out of every percentile and counted per route in ``durations_ignored``."""
    server = await start_logs()
    base = f"http://{HOST}:{server.config.http_port}"
    damaged = [-1e308, "NaN", "-inf", "1e400", 2e15, -1]
    durations = [10, 12, 14, *damaged]
    lines = [{"service.name": "gateway", "http.request.method": "GET", "url.path": "/goods",
              "http.response.status_code": 200,
              "labels": {"event.duration_ms": ms, "upstream": "goods", "upstream.address": "127.0.0.1:9010"}}
             for ms in durations]
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data="\n".join(map(json.dumps, lines))) as r:
            assert (await r.json())["accepted"] == len(durations)
        async with s.get(f"{base}/api/v1/routes", params={"from": "now-1h"}) as r:
            body = await r.json()
            assert r.status == 200, body
        async with s.post(f"{base}/api/v1/routes/series", json={"from": "now-1h", "interval": "1m"}) as r:
            series = await r.json()
            assert r.status == 200, series
    [route] = body["routes"]
    assert route["requests"] == len(durations) and route["durations_ignored"] == len(damaged)
    assert (route["p50_ms"], route["p95_ms"], route["p99_ms"]) == (12, 13.8, 13.96)
    assert body["services"]["goods"]["p50_ms"] == 12
    assert [p for p in series["routes"][0]["p95_ms"] if p is not None] == [13.8]
    end = int(time.time() * 1000) + 1
    [addr] = red.by_address(server.query.engine, end - HOUR, end)
    assert addr.p50_ms == 12
