"""The mesh view's route table under a flood of distinct paths, in a real browser.

Found from outside: with ~60k distinct routes (ids in URLs, a scanner) the route table's two
requests took 5 and 9.7 s, and the mesh view, which waits for them, stayed empty that long;
the line under the table said only how many routes were left off. Now the logs service
returns the busiest routes and adds up the rest, and the line says what the rest carried
(requests, rate, errors). A hostile path (HTML) is among the busiest: it shows as text.
"""

from __future__ import annotations

import time

from tests.logs.web.conftest import BROWSER
from tests.support.procs import HOST, Procs, http_json, post_ndjson, wait_for

pytestmark = BROWSER

PATHS = 3_000
HOSTILE = '/<img src=x onerror="alert(1)">'


def access(ts: int, path: str, status: int) -> dict:
    return {"@timestamp": ts, "message": f"GET {path} {status}", "service": {"name": "gateway"},
            "http": {"request": {"method": "GET"}, "response": {"status_code": status}},
            "url": {"path": path}, "labels": {"upstream": "goods", "event.duration_ms": 3.5}}


def test_the_route_table_shows_the_busiest_routes_and_what_the_rest_carried(page, tmp_path):
    from playwright.sync_api import expect

    now = int(time.time() * 1000)
    events = [access(now - 60_000 + i, f"/items/{i}", 500 if i % 10 == 0 else 200) for i in range(PATHS)]
    events += [access(now - 30_000 + i, HOSTILE, 200) for i in range(5)]
    procs = Procs(tmp_path)
    try:
        _, _, http_port = procs.logs(tmp_path / "data")
        post_ndjson(http_port, events)
        ui = f"http://{HOST}:{http_port}"
        wait_for(lambda: http_json(http_port, "/api/v1/routes", **{"from": "now-1h"})["routes_left_off"]
                 == PATHS + 1 - 100, 30, "every route counted")

        page.goto(f"{ui}/?view=mesh&from=now-1h")
        left = page.locator("#routes-left")
        expect(left).to_contain_text(f"{PATHS + 1 - 100:,} more routes not shown: ", timeout=20_000)
        # the rest: 2,901 routes of one request each (the busiest 100: the hostile path's 5, then
        # 99 of /items/ by name)
        expect(left).to_contain_text(f"{PATHS - 99:,} requests")
        assert page.locator("#route-rows tr.route-row").count() == 100
        first = page.locator("#route-rows tr.route-row").first
        expect(first).to_have_attribute("data-route", f"GET {HOSTILE}")
        expect(first.locator(".route")).to_have_text(f"GET {HOSTILE}")  # text, not markup
        assert page.locator("#route-rows img").count() == 0
    finally:
        procs.close()
