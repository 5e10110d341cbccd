"""The mesh view from outside, in a real browser: each of its four answers (the mesh, the
services' histogram, the routes, the routes' series) drawn as it comes.

Found from outside: the view waited for all four (``Promise.all``), so one slow answer (a
histogram over a long range) held back the instance table, which is where a hung service
shows. The answers are held by the test (Playwright's routing), so the order is the same on
every run, whatever the load.
"""

from __future__ import annotations

from tests.logs.web.conftest import BROWSER

pytestmark = BROWSER


def test_a_slow_histogram_holds_back_no_other_part_of_the_mesh_view(mesh, page):
    from playwright.sync_api import expect

    held = []
    page.route("**/api/v1/histogram*", lambda route: held.append(route))
    page.route("**/api/v1/routes/series*", lambda route: held.append(route))
    page.goto(mesh.ui + "/?view=mesh")
    expect(page.locator('#inst-rows tr.inst-row[data-name="goods"]')).to_be_visible()
    expect(page.locator('#mesh-rows tr.node-row[data-name="goods"]')).to_be_visible()
    expect(page.locator('#route-rows tr.route-row[data-route="GET /goods"]')).to_be_visible()
    expect(page.locator("#mesh-graph svg g.node.svc").first).to_be_visible()
    goods = page.locator('#mesh-rows tr.node-row[data-name="goods"] svg.spark polyline')
    assert goods.count() == 0  # its sparkline waits for the histogram, the row does not
    assert len(held) == 2
    for route in held:
        route.continue_()
    expect(goods).to_have_count(1)
    expect(page.locator('#route-rows tr.route-row[data-route="GET /goods"] svg.spark polyline')).to_have_count(1)


def test_the_mesh_answer_late_or_failed_is_said_in_its_own_tables(mesh, page):
    """The routes come while the mesh answer is held (its tables say Loading); when it fails,
    its tables say so and the routes stay."""
    from playwright.sync_api import expect

    held = []
    page.route("**/api/v1/mesh*", lambda route: held.append(route))
    page.goto(mesh.ui + "/?view=mesh")
    expect(page.locator('#route-rows tr.route-row[data-route="GET /goods"]')).to_be_visible()
    expect(page.locator("#inst-rows")).to_have_text("Loading…")
    expect(page.locator("#inst-rows")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#mesh-rows")).to_have_text("Loading…")
    assert len(held) == 1
    held[0].fulfill(status=500, content_type="application/json", body='{"error": "the store is gone"}')
    expect(page.locator("#inst-rows")).to_have_text("The instances could not be read.")
    expect(page.locator("#mesh-rows")).to_have_text("The services could not be read.")
    expect(page.locator("#banner")).to_contain_text("Mesh: the store is gone")
    expect(page.locator('#route-rows tr.route-row[data-route="GET /goods"]')).to_be_visible()


def test_the_event_view_fetches_its_neighbours_brief_and_one_whole_when_opened(mesh, page):
    """The event view fetched its ten neighbours (and its trace) in full: ten of 200 KB, and
    the page read 2 MB to show ten one-line rows. It asks for them brief (texts cut, the
    fields its rows show); a cut row says how long its text is, and opening it reads it whole."""
    import json as _json
    import urllib.request
    import uuid

    from playwright.sync_api import expect

    from tests.support.procs import wait_for

    svc = f"huge{uuid.uuid4().hex[:6]}"
    big = "y" * 200_000
    lines = [{"message": f"{svc} here" if i == 5 else f"{svc} big{i} {big}", "service": {"name": svc}}
             for i in range(11)]
    req = urllib.request.Request(f"{mesh.ui}/api/v1/logs", method="POST",
                                 data="\n".join(_json.dumps(e) for e in lines).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    wait_for(lambda: len(mesh.search(f"service.name:{svc}")) == 11, 15, "the 11 events searchable")
    here = next(e for e in mesh.search(f"service.name:{svc}") if e["message"].endswith("here"))

    sizes: dict[str, int] = {}
    page.on("response", lambda resp: "/api/v1/events/" in resp.url and sizes.setdefault(resp.url, len(resp.body())))
    page.goto(f"{mesh.ui}/?q=service.name:{svc}&event={here['seq']}")
    drawer = page.locator("#drawer")
    rows = drawer.locator("table.mini").first.locator("tr")
    expect(rows).to_have_count(11)
    expect(rows.nth(0).locator(".cut")).to_have_text(f"[{len(lines[0]['message']):,} chars] ")
    assert len(sizes) == 1 and next(iter(sizes.values())) < 50_000, sizes
    rows.nth(0).click()  # a neighbour opened: read whole
    expect(drawer.locator(".dhead strong")).not_to_have_text(f"Event {here['seq']}")
    expect(drawer).to_contain_text(f"big0 {'y' * 1000}")


def test_the_search_list_reads_its_rows_brief_and_an_opened_row_whole(mesh, page):
    """One 10 MB message among the newest 100 made the list's page 10 MB (found from outside).
    The list asks for its rows brief (each text past 300 characters cut, GET /api/v1/search
    ?brief=1); a cut message of many lines still says how many follow, and opening its row
    reads the event whole."""
    import json as _json
    import urllib.request
    import uuid

    from playwright.sync_api import expect

    from tests.support.procs import wait_for

    svc = f"long{uuid.uuid4().hex[:6]}"
    huge = f"{svc} first line\n" + ("z" * 1000 + "\n") * 5000  # ~5 MB, 5001 lines
    lines = [{"message": huge, "service": {"name": svc}}, {"message": f"{svc} short", "service": {"name": svc}}]
    req = urllib.request.Request(f"{mesh.ui}/api/v1/logs", method="POST",
                                 data="\n".join(_json.dumps(e) for e in lines).encode())
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status == 200
    wait_for(lambda: len(mesh.search(f"service.name:{svc}")) == 2, 15, "the 2 events searchable")

    with page.expect_response(lambda resp: "/api/v1/search" in resp.url) as answer:
        page.goto(f"{mesh.ui}/?q=service.name:{svc}&cols=@timestamp,message")
    assert "brief=1" in answer.value.url and len(answer.value.body()) < 50_000, answer.value.url
    row = page.locator("#rows tr.ev", has_text=f"{svc} first line")
    expect(row).to_contain_text("(+5000 lines)")
    row.click()
    detail = page.locator("#rows tr.detail")
    # 5 MB read and drawn as 5,001 lines: bounded by a wide poll, for a loaded machine
    expect(detail.locator('tr[data-field="message"] pre.lines div')).to_have_count(5001, timeout=60_000)
    expect(detail).not_to_contain_text("could not be read")


def test_the_live_tail_streams_its_rows_brief_and_an_opened_row_whole(mesh, page):
    """The list's pages came brief, but the live tail streamed each new event whole: a 5 MB
    message arriving while Live was on loaded in full to show one line (found from outside,
    after the list's brief). The tail asks for them as the list does (brief=1); the row still
    says how many lines follow, and opening it reads the event whole."""
    import json as _json
    import urllib.request
    import uuid

    from playwright.sync_api import expect

    svc = f"livelong{uuid.uuid4().hex[:6]}"
    with page.expect_request(lambda req: "/api/v1/tail" in req.url) as asked:
        page.goto(f"{mesh.ui}/?q=service.name:{svc}&live=1&cols=@timestamp,message")
    assert "brief=1" in asked.value.url, asked.value.url
    expect(page.locator("#livebar")).to_contain_text("streaming")
    huge = f"{svc} first line\n" + ("z" * 1000 + "\n") * 5000  # ~5 MB, 5001 lines
    req = urllib.request.Request(f"{mesh.ui}/api/v1/logs", method="POST",
                                 data=_json.dumps({"message": huge, "service": {"name": svc}}).encode())
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status == 200
    row = page.locator("#rows tr.ev", has_text=f"{svc} first line")
    expect(row).to_contain_text("(+5000 lines)", timeout=30_000)  # streamed, bounded for load
    row.click()
    detail = page.locator("#rows tr.detail")
    expect(detail.locator('tr[data-field="message"] pre.lines div')).to_have_count(5001, timeout=60_000)
