"""A live tail paused (the reader scrolled down) while traffic goes on, in a real browser.

Found by reading the page while trying "the live tail left open under traffic": paused, the
tail kept every new event in memory until the reader came back to the top, however many:
an afternoon of traffic behind a tab scrolled down is the whole stream in the tab's heap,
and the return then drew every one of them as a row at once (to keep 3000). The page now
holds a bounded number while paused, still counts every event that came, and on the return
to the top searches again when it held back more than it kept.

The heap is read through the DevTools protocol after a forced garbage collection: a size,
not a time, so the machine's load does not change the outcome.
"""

from __future__ import annotations

import urllib.parse
import uuid

from tests.logs.web.conftest import BROWSER, http
from tests.logs.web.test_outside_live_restart import post
from tests.support.procs import HOST, Procs, wait_for

pytestmark = BROWSER

SEED = 150  # rows enough to scroll the table away from the top
COMING = 12_000  # events that arrive while paused
MESSAGE = 2_000  # characters each: ~24 MB of messages in all
HELD_MB = 12  # the page's heap may grow this much while paused (it held them all: ~30 MB more)


def stored(ui: str, q: str) -> int:
    query = urllib.parse.urlencode({"q": q, "from": "now-1h", "interval": "1h"})
    status, body = http("GET", f"{ui}/api/v1/histogram?{query}", timeout=30)
    return int(body["total"]) if status == 200 and isinstance(body, dict) else -1


def heap_used(cdp) -> int:
    cdp.send("HeapProfiler.collectGarbage")
    return int(cdp.send("Runtime.getHeapUsage")["usedSize"])


def test_a_paused_live_tail_holds_a_bounded_number_of_events(page, tmp_path):
    from playwright.sync_api import expect

    tag = f"paused{uuid.uuid4().hex[:8]}"
    procs = Procs(tmp_path)
    try:
        _, _, http_port = procs.logs(tmp_path / "data")
        ui = f"http://{HOST}:{http_port}"
        post(ui, [{"message": f"{tag} seed{i}", "service": {"name": "pausesvc"}} for i in range(SEED)])
        wait_for(lambda: stored(ui, tag) == SEED, 30, "the seed searchable")

        page.goto(f"{ui}/?live=1&q={tag}")
        expect(page.locator("#rows tr.ev").first).to_be_visible(timeout=15_000)
        expect(page.locator("#livebar")).to_contain_text("streaming", timeout=15_000)
        page.eval_on_selector("#results", "el => { el.scrollTop = el.scrollHeight; }")
        expect(page.locator("#livebar")).to_contain_text("paused", timeout=10_000)

        cdp = page.context.new_cdp_session(page)
        before = heap_used(cdp)
        pad = "x" * MESSAGE
        for start in range(0, COMING, 1000):
            post(ui, [{"message": f"{tag} new{i} {pad}", "service": {"name": "pausesvc"}}
                      for i in range(start, start + 1000)])
        # every event that came is counted, held or not
        expect(page.locator("#livebar")).to_contain_text(f"{COMING:,} new", timeout=120_000)
        grown = (heap_used(cdp) - before) / 1e6
        assert grown < HELD_MB, f"the paused page's heap grew {grown:.1f} MB for {COMING} events"

        # back to the top: the newest event is the first row
        page.click("#livebar button")
        expect(page.locator("#livebar")).to_contain_text("streaming", timeout=15_000)
        expect(page.locator("#rows tr.ev").first).to_contain_text(f"new{COMING - 1} ", timeout=30_000)
        assert page.locator("#rows tr.ev").count() <= 3000
    finally:
        procs.close()
