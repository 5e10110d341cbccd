"""The query help stays closed once Enter has run the search, in a real browser.

Found from outside (outside20): typing ``service.name:probe`` and pressing Enter ran the
search and closed the suggestions, but the search's new field list (the ``fields`` event)
reopened them while the box still had the focus: the list covered the range and Search
buttons, and the next Esc only closed it (README: "Esc closes ... its suggestions, then
leaves the box"), so the j/k typed after one Esc went into the query. A value list still
being fetched when Enter came showed up after it the same way.
"""

from __future__ import annotations

from tests.logs.web.conftest import BROWSER
from tests.logs.web.test_ui_oncall import probe_events

pytestmark = BROWSER


def test_enter_runs_the_search_and_the_suggestions_stay_closed(mesh, page):
    from playwright.sync_api import expect

    probe, _ = probe_events(mesh)
    page.goto(f"{mesh.ui}/?from=now-15m")
    expect(page.locator("#rows tr.ev").first).to_be_visible()
    page.evaluate("window.fieldsSeen = 0; document.addEventListener('fields', () => window.fieldsSeen++)")
    page.keyboard.press("/")
    page.keyboard.type(f"service.name:{probe}")
    expect(page.locator("#suggest li.sg", has_text=probe)).to_be_visible()  # the value list is open
    page.keyboard.press("Enter")
    expect(page.locator("#rows tr.ev td.svc", has_text=probe).first).to_be_visible()
    page.wait_for_function("window.fieldsSeen > 0")  # the search's field list came
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    expect(page.locator("#suggest")).to_be_hidden()
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.press("Escape")  # one Esc leaves the box: j moves to the first row
    page.keyboard.press("j")
    expect(page.locator("#rows tr.ev").first).to_be_focused()
    assert page.locator("#q").input_value() == f"service.name:{probe}"
    page.keyboard.press("/")  # typing again brings the help back
    page.keyboard.press("End")
    page.keyboard.type(" and ser")
    expect(page.locator("#suggest li.sg", has_text="service.name")).to_be_visible()
