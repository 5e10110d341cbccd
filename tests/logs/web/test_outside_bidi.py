"""Bidirectional overrides in stored text, from outside, in a real browser.

Found from outside: a message "hello \u202eevil" read "hello live" in the table, and in the
open event's stored line the override turned the rest of the line around; a service name or a
field name could hide what it was the same way. The CLI shows these characters as their escape
(logmesh/terminal.py); the page now does too, and copies the value as it was stored.
"""

from __future__ import annotations

import uuid

from tests.logs.web.conftest import BROWSER, http
from tests.support.procs import wait_for

pytestmark = BROWSER


def test_an_override_in_a_message_a_name_or_a_field_name_is_shown_as_its_escape(mesh, page):
    from playwright.sync_api import expect

    probe = f"bidi-{uuid.uuid4().hex[:8]}"
    status, body = http("POST", f"{mesh.ui}/api/v1/logs", [{
        "message": f"{probe} hello \u202eevil", "service.name": "rtl\u202egnp.exe",
        "labels": {"x\u2067y": "v\u202dw"}}])
    assert status == 200 and body["accepted"] == 1, body
    wait_for(lambda: mesh.search(f'"{probe}"'), 10, "the event in /api/v1/search")
    page.goto(f"{mesh.ui}/?q=%22{probe}%22")
    row = page.locator("#rows tr.ev").first
    expect(row.locator("td.msg")).to_have_text(f"{probe} hello \\u202eevil")
    expect(row.locator("td.svc")).to_contain_text("rtl\\u202egnp.exe")
    row.click()
    text = page.locator("#rows").inner_text()
    for raw in ("\u202e", "\u2067", "\u202d"):
        assert raw not in text, f"{raw!r} reached the page"
    assert "x\\u2067y" in text and "v\\u202dw" in text
