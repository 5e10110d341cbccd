"""Issue 20 in a real browser: the UI for on-call work, one test (or a few) per item, against
the real mesh of conftest.py and events posted with a probe name of their own. Every new place
that shows user data gets markup that must stay text (XSS_*).

``LOGMESH_UI_DOCS=docs`` makes ``test_screenshots_of_the_new_views`` keep its pictures there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.logs.web.conftest import BROWSER, http
from tests.support.procs import wait_for

pytestmark = BROWSER

XSS = "<img src=x onerror=alert(1)>"
TRACE = "Traceback (most recent call last):\n  File \"app.py\", line 3, in handle\n    raise ValueError(x)\nValueError: " + XSS


def post(mesh, events: list[dict]) -> None:
    status, body = http("POST", f"{mesh.ui}/api/v1/logs", events)
    assert status == 200 and body["accepted"] == len(events), body


def probe_events(mesh, n: int = 8, **extra) -> tuple[str, int]:
    """n events of a new service (a request log each, the third an error with a stack trace);
    its name and the newest event's time."""
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    events = []
    for i in range(n):
        ev = {"@timestamp": now - (n - i) * 1000, "service.name": probe, "log.level": "info",
              "message": json.dumps({"method": "POST", "uri": "/goods", "params": {"name": f"pen{i}", "price": i, "tag": XSS},
                                     "trace.id": f"t-{probe}-{i}"}),
              "params": {"name": f"pen{i}", "price": i, "tag": XSS}, **extra}
        if i == 2:
            ev.update({"log.level": "error", "message": TRACE, "error.stack_trace": TRACE})
        events.append(ev)
    post(mesh, events)
    wait_for(lambda: len(mesh.search(f'service.name:"{probe}"')) == n, 10, "the probe's events")
    return probe, now - 1000


def open_probe(page, mesh, probe: str, extra: str = "") -> None:
    from playwright.sync_api import expect

    page.goto(f"{mesh.ui}/?q=" + urllib.parse.quote(f'service.name:"{probe}"') + extra)
    expect(page.locator("#rows tr.ev").first).to_be_visible()


def no_markup(page) -> None:
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.locator("img, #rows b, #suggest b, .saved b").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]


# 1. readable rows ----------------------------------------------------------------------------------
def test_rows_are_readable_requests_traces_as_lines_tinted_by_level_time_never_cut(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    open_probe(page, mesh, probe, "&from=now-2d&to=now")
    rows = page.locator("#rows tr.ev")
    expect(rows.first.locator("td.msg")).to_have_text(f'POST /goods name=pen7 price=7 tag="{XSS}"')
    err = page.locator("#rows tr.ev.row-erro")
    expect(err).to_have_count(1)
    expect(err.locator("td.msg")).to_have_text("Traceback (most recent call last):  (+3 lines)")
    err.click()
    lines = page.locator('#rows tr.detail tr[data-field="error.stack_trace"] pre.lines div')
    expect(lines).to_have_count(4)
    expect(lines.nth(3)).to_have_text("ValueError: " + XSS)
    # a range of two days: the time has its date and is never cut
    expect(rows.first.locator("td.t")).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d\.\d{3}$"))
    cut = page.evaluate("[...document.querySelectorAll('#rows td.t')].filter(td => td.scrollWidth > td.clientWidth).length")
    assert cut == 0
    no_markup(page)


# 2. columns ----------------------------------------------------------------------------------------
def test_columns_from_the_sidebar_moved_sorted_removed_and_kept_in_the_url(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    open_probe(page, mesh, probe)
    page.locator('li[data-field="params.tag"] button.addcol').click()
    expect(page).to_have_url(re.compile(r"cols=[^&]*params\.tag"))
    expect(page.locator('#head th[data-col="params.tag"]')).to_be_visible()
    expect(page.locator("#rows tr.ev").first.locator("td").last).to_have_text(XSS)  # a column value: text
    page.locator('li[data-field="params.price"] button.addcol').click()
    expect(page.locator('#head th[data-col="params.price"]')).to_be_visible()
    page.locator('#head th[data-col="params.price"]').hover()  # its buttons show on hover
    page.get_by_role("button", name="Move params.price left").click()
    heads = page.locator("#head th")
    expect(heads.nth(heads.count() - 2)).to_have_attribute("data-col", "params.price")
    # sort by a column: descending, then ascending
    price = lambda: [int(t) for t in page.locator("#rows tr.ev td.f").all_inner_texts() if t.isdigit()]  # noqa: E731
    page.locator('#head th[data-col="params.price"] button.sort').click()
    expect(page).to_have_url(re.compile(r"sort=-params\.price"))
    wait_for(lambda: price() == sorted(price(), reverse=True) and len(price()) == 8, 10, "descending")
    page.locator('#head th[data-col="params.price"] button.sort').click()
    wait_for(lambda: price() == sorted(price()) and len(price()) == 8, 10, "ascending")
    page.reload()  # the columns and the sort are in the URL
    expect(page.locator('#head th[data-col="params.price"]')).to_have_attribute("aria-sort", "ascending")
    page.locator('#head th[data-col="params.tag"]').hover()
    page.get_by_role("button", name="Remove column params.tag").click()
    expect(page.locator('#head th[data-col="params.tag"]')).to_have_count(0)
    expect(page).not_to_have_url(re.compile(r"params\.tag"))
    no_markup(page)


# 3. the expanded event -----------------------------------------------------------------------------
def test_the_expanded_event_filters_adds_columns_copies_and_shows_the_stored_line(mesh, page):
    from playwright.sync_api import expect

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    probe, _ = probe_events(mesh)
    open_probe(page, mesh, probe)
    page.locator("#rows tr.ev").first.click()
    detail = page.locator("#rows tr.detail")
    expect(detail.locator('tr[data-field="params.tag"] td.fval')).to_have_text(XSS)
    expect(detail.locator("pre.raw")).to_contain_text(f'"service.name":"{probe}"')
    detail.get_by_role("button", name="Copy params.tag").click()
    assert page.evaluate("navigator.clipboard.readText()") == XSS
    detail.get_by_role("button", name="Add column params.name").click()
    expect(page.locator('#head th[data-col="params.name"]')).to_be_visible()
    page.locator("#rows tr.ev").first.click()
    page.locator("#rows tr.detail").get_by_role("button", name="Filter out params.name").click()
    expect(page.locator("#q")).to_have_value(f'service.name:"{probe}" and not params.name:"pen7"')
    wait_for(lambda: len(page.locator("#rows tr.ev").all()) == 7, 10, "seven rows")
    page.locator("#rows tr.ev").first.click()
    page.locator("#rows tr.detail").get_by_role("button", name="Filter for params.price").click()
    expect(page.locator("#q")).to_have_value(f'service.name:"{probe}" and not params.name:"pen7" and params.price:6')
    wait_for(lambda: len(page.locator("#rows tr.ev").all()) == 1, 10, "one row")
    no_markup(page)


# 4. query help -------------------------------------------------------------------------------------
def test_autocomplete_of_fields_and_values_unknown_fields_and_recent_queries(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    hostile = f"{XSS}{probe}"
    post(mesh, [{"service.name": hostile, "message": "hostile"}])
    wait_for(lambda: mesh.search(f'service.name:"{hostile}"'), 10, "the hostile service")
    page.goto(mesh.ui + "/")
    expect(page.locator("#rows tr.ev").first).to_be_visible()
    q = page.locator("#q")
    q.fill("servi")
    sug = page.locator("#suggest li.sg")
    expect(sug.first).to_have_text(re.compile(r"^service\.\w+keyword$"))
    expect(page.locator("#suggest li.sg", has_text="service.name")).to_contain_text("keyword")
    q.press("ArrowDown")
    q.press("Enter")
    expect(q).to_have_value("service.name:")
    q.type("<img")
    expect(page.locator("#suggest li.sg", has_text=hostile)).to_be_visible()  # a value: text
    page.locator("#suggest li.sg", has_text=hostile).click()
    expect(q).to_have_value(f'service.name:"{hostile}" ')
    q.press("Escape")
    q.press("Enter")
    expect(page.locator("#rows tr.ev td.msg").first).to_have_text("hostile")
    q.fill("nosuchfield:")
    expect(page.locator("#suggest .shead")).to_have_text("No event in this range has a field nosuchfield")
    q.type("1")
    q.press("Enter")
    expect(page.locator("#qwarn")).to_contain_text("field nosuchfield is unknown")
    q.fill("")
    q.blur()
    q.focus()
    expect(page.locator("#suggest .shead")).to_have_text("Recent queries")
    expect(page.locator("#suggest li.sg").first).to_have_text("nosuchfield:1")
    expect(page.locator("#suggest li.sg").nth(1)).to_have_text(f'service.name:"{hostile}"')
    page.locator("#suggest li.sg").nth(1).click()
    expect(page.locator("#rows tr.ev td.msg").first).to_have_text("hostile")
    no_markup(page)


# 5. facets follow the query ------------------------------------------------------------------------
def test_facets_follow_the_query_and_show_more_values(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh, n=9, labels={"only_" + "probe": "yes"})
    open_probe(page, mesh, probe)
    expect(page.locator('li[data-field="labels.only_probe"]')).to_be_visible()
    svc = page.locator('li[data-field="service.name"] button.v')
    expect(svc).to_have_count(1)
    expect(svc).to_have_attribute("data-value", probe)
    field = page.locator('li[data-field="params.name"]')
    field.locator("button.fname").click()
    expect(field.locator(".value")).to_have_count(5)
    field.get_by_role("button", name="More values").click()
    expect(field.locator(".value")).to_have_count(9)
    field.get_by_role("button", name="Fewer values").click()
    expect(field.locator(".value")).to_have_count(5)
    page.goto(mesh.ui + "/?q=" + urllib.parse.quote("service.name:goods"))
    expect(page.locator('li[data-field="service.name"]')).to_be_visible()
    expect(page.locator('li[data-field="labels.only_probe"]')).to_have_count(0)


# 6. saved searches ---------------------------------------------------------------------------------
def test_saved_searches_are_named_listed_opened_and_deleted(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    open_probe(page, mesh, probe, "&from=now-2h&to=now&cols=service.name%2Cparams.tag")
    name = f"{XSS} {probe}"
    page.locator("#saved-btn").click()
    page.locator("#saved-name").fill(name)
    page.locator("#saved-form button").click()
    item = page.locator("#saved-list li", has_text=probe)
    expect(item.locator("strong")).to_have_text(name)
    _, body = http("GET", f"{mesh.ui}/api/v1/saved-searches")
    saved = next(s for s in body["saved_searches"] if s["name"] == name)
    assert saved["from"] == "now-2h" and saved["columns"] == ["service.name", "params.tag"], saved
    page.goto(mesh.ui + "/")  # another state, then the saved one
    page.locator("#saved-btn").click()
    page.locator("#saved-list li", has_text=probe).locator("button.open").click()
    expect(page.locator("#q")).to_have_value(f'service.name:"{probe}"')
    expect(page.locator("#range-btn")).to_have_text("Last 2 hours")
    expect(page.locator("#head th")).to_have_count(2)
    expect(page.locator("#rows tr.ev").first.locator("td").last).to_have_text(XSS)
    page.locator("#saved-btn").click()
    page.get_by_role("button", name=f"Delete {name}").click()
    expect(page.locator("#saved-list li", has_text=probe)).to_have_count(0)
    assert all(s["name"] != name for s in http("GET", f"{mesh.ui}/api/v1/saved-searches")[1]["saved_searches"])
    no_markup(page)


# 7. export and copy as curl ------------------------------------------------------------------------
def test_export_as_csv_and_ndjson_and_copy_as_curl(mesh, page):

    probe, _ = probe_events(mesh)
    post(mesh, [{"service.name": probe, "message": "=HYPERLINK(\"http://evil\")", "log.level": "info"}])
    wait_for(lambda: len(mesh.search(f'service.name:"{probe}"')) == 9, 10, "nine events")
    open_probe(page, mesh, probe, "&cols=service.name%2Cmessage%2Cparams.price")
    page.locator("#export-btn").click()
    page.locator("#export-name").fill(f'{XSS}".csv')
    with page.expect_download() as dl:
        page.locator("#export-csv").click()
    download = dl.value
    assert download.suggested_filename == "img-src-x-onerror-alert-1.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0] == ["service.name", "message", "params.price"]
    assert rows[1] == [probe, "'=HYPERLINK(\"http://evil\")", ""]  # defused, newest first
    assert len(rows) == 10 and rows[2][2] == "7"
    with page.expect_download() as dl:
        page.locator("#export-ndjson").click()
    lines = Path(dl.value.path()).read_text().splitlines()
    assert len(lines) == 9 and json.loads(lines[-1])["params"]["price"] == 0
    cmd = page.locator("#curl").input_value()
    assert cmd.startswith("curl -sG ") and "/api/v1/search" in cmd
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=10, check=True).stdout
    assert len(json.loads(out)["events"]) == 9
    no_markup(page)


# 8. time -------------------------------------------------------------------------------------------
def test_typed_ranges_utc_and_auto_refresh(mesh, page):
    from playwright.sync_api import expect

    probe, newest = probe_events(mesh)
    open_probe(page, mesh, probe)
    page.locator("#tz").click()
    expect(page).to_have_url(re.compile(r"tz=utc"))
    utc = datetime.fromtimestamp(newest / 1000, UTC)
    # the date too ("Nov 30 00:02:14.973") when the last 15 minutes cross midnight (UTC here)
    expect(page.locator("#rows tr.ev td.t").first).to_have_text(re.compile(
        r"^(\w{3} \d{2} )?" + re.escape(utc.strftime("%H:%M:%S.") + f"{newest % 1000:03d}") + "$"))
    page.locator("#range-btn").click()
    page.locator("#typed-from").fill("now-2h")
    page.locator("#typed-from").press("Enter")
    expect(page).to_have_url(re.compile(r"from=now-2h&to=now"))
    expect(page.locator("#range-btn")).to_have_text("Last 2 hours")
    page.locator("#range-btn").click()
    start = datetime.fromtimestamp(newest / 1000 - 3600, UTC)
    page.locator("#typed-from").fill(start.strftime("%Y-%m-%d %H:%M"))
    page.locator("#typed-to").fill("yesterday")
    page.locator("#typed-apply").click()
    expect(page.locator("#typed-err")).to_contain_text('cannot read "yesterday"')
    page.locator("#typed-to").fill("now")
    page.locator("#typed-apply").click()
    expect(page).to_have_url(re.compile("from=" + re.escape(urllib.parse.quote(start.strftime("%Y-%m-%dT%H:%M:00.000Z"), safe=""))))
    expect(page.locator("#rows tr.ev")).to_have_count(8)
    page.select_option("#refresh", "5")
    expect(page).to_have_url(re.compile(r"refresh=5"))
    post(mesh, [{"service.name": probe, "message": "after the refresh"}])
    expect(page.locator("#rows tr.ev td.msg", has_text="after the refresh")).to_be_visible(timeout=12_000)


# 9. keyboard and small screens ---------------------------------------------------------------------
def test_keyboard_j_k_enter_and_slash(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    open_probe(page, mesh, probe)
    page.evaluate("document.activeElement.blur()")  # keys go to the page, not a box
    page.keyboard.press("j")
    rows = page.locator("#rows tr.ev")
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(2)).to_be_focused()
    page.keyboard.press("k")
    expect(rows.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(rows.nth(1)).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()


@pytest.mark.parametrize("width", [390, 800])
def test_small_screens_fold_the_sidebar_into_a_drawer_and_keep_the_search_usable(mesh, page, width):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(mesh.ui + "/")
    expect(page.locator("#rows tr.ev").first).to_be_visible()
    box = page.locator("#sidebar").bounding_box()
    assert box is None or box["x"] + box["width"] <= 0  # folded away
    q = page.locator("#q")
    assert q.bounding_box()["width"] >= width - 40
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    q.fill(f'service.name:"{probe}"')
    q.press("Escape")
    q.press("Enter")
    expect(page.locator("#rows tr.ev")).to_have_count(8)
    page.locator("#fields-open").click()
    expect(page.locator('#sidebar li[data-field="service.name"]')).to_be_in_viewport()
    page.locator("#fields-close").click()
    page.wait_for_timeout(300)
    assert page.locator("#sidebar").bounding_box()["x"] < 0


def test_screenshots_of_the_new_views(mesh, page, tmp_path):
    """docs/ui-*.png; kept only when LOGMESH_UI_DOCS names a directory."""
    from playwright.sync_api import expect

    out = Path(os.environ.get("LOGMESH_UI_DOCS") or tmp_path)
    probe, _ = probe_events(mesh)
    open_probe(page, mesh, probe, "&cols=%40timestamp%2Cservice.name%2Cmessage%2Cparams.price&from=now-1h")
    page.locator("#rows tr.ev.row-erro").click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "ui-expanded-event.png"))
    page.locator("#q").fill("service.name:")
    page.locator("#q").focus()
    expect(page.locator("#suggest li.sg").first).to_be_visible()
    page.screenshot(path=str(out / "ui-autocomplete.png"))
    page.locator("#q").press("Escape")
    page.locator("#export-btn").click()
    page.screenshot(path=str(out / "ui-export.png"))
    page.set_viewport_size({"width": 390, "height": 760})
    page.locator("#export-btn").click()
    page.locator("#fields-open").click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "ui-small-screen.png"))
    for name in ("expanded-event", "autocomplete", "export", "small-screen"):
        assert (out / f"ui-{name}.png").stat().st_size > 10_000
