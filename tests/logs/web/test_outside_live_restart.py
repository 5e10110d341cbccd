"""The live tail while its logs service restarts under an open page, in a real browser.

Found by hand: a page on live tail, the logs service killed and back; the shippers deliver
what they held as soon as it is back, but the page's tail reconnects later (its backoff) and
a new stream starts at the events stored after it connects: what came in between never
showed, though it was stored and a search finds it. The page now asks the new stream for
the newest events too and shows those that reached the service after its last stream broke.

The tail's requests are held by the test (Playwright's routing) from the stop until the
events are stored, so the order the fix is about happens on every run, whatever the load.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid

from tests.logs.web.conftest import BROWSER, http
from tests.support.procs import HOST, Procs, wait_for

pytestmark = BROWSER


def stored(ui: str, q: str) -> int:
    query = urllib.parse.urlencode({"q": q, "from": "now-1h", "limit": 100})
    status, body = http("GET", f"{ui}/api/v1/search?{query}")
    return len(body["events"]) if status == 200 and isinstance(body, dict) else -1


def post(ui: str, lines: list[dict]) -> None:
    body = "\n".join(json.dumps(e) for e in lines).encode()
    req = urllib.request.Request(f"{ui}/api/v1/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_events_stored_while_the_tail_was_down_show_when_it_reconnects(page, tmp_path):
    from playwright.sync_api import expect

    tag = f"gap{uuid.uuid4().hex[:8]}"
    procs = Procs(tmp_path)
    try:
        proc, tcp, http_port = procs.logs(tmp_path / "data")
        ui = f"http://{HOST}:{http_port}"
        post(ui, [{"message": f"{tag} before", "service": {"name": "gapsvc"}}])
        wait_for(lambda: stored(ui, tag) == 1, 30, "the first event searchable")

        page.goto(f"{ui}/?live=1&q={tag}")
        expect(page.locator("#rows tr.ev", has_text="before")).to_be_visible(timeout=15_000)
        expect(page.locator("#livebar")).to_contain_text("streaming", timeout=15_000)

        page.route("**/api/v1/tail*", lambda route: route.abort())  # the tail cannot come back yet
        proc.stop()
        expect(page.locator("#livebar")).to_contain_text("reconnecting", timeout=15_000)
        proc, _, _ = procs.logs(tmp_path / "data", port=tcp, http_port=http_port)
        post(ui, [{"message": f"{tag} while{i}", "service": {"name": "gapsvc"}} for i in range(3)])
        wait_for(lambda: stored(ui, tag) == 4, 30, "the events of the gap searchable")

        page.unroute("**/api/v1/tail*")
        expect(page.locator("#livebar")).to_contain_text("streaming", timeout=20_000)
        for i in range(3):
            expect(page.locator("#rows tr.ev", has_text=f"while{i}")).to_be_visible(timeout=10_000)
        post(ui, [{"message": f"{tag} after", "service": {"name": "gapsvc"}}])
        expect(page.locator("#rows tr.ev", has_text="after")).to_be_visible(timeout=10_000)
        assert page.locator("#rows tr.ev").count() == 5  # each once: before, the gap's 3, after
    finally:
        procs.close()
