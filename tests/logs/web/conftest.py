"""The browser tests' mesh and browser: one mesh per test module (distributor, logs,
goods/members/purchases, gateway, each ``python -m logmesh ... --no-supervise`` on a free
port) with example traffic sent through the gateway; each test opens the page in a fresh
context of Debian's chromium, driven by Playwright. Skipped when /usr/bin/chromium is missing
(``apt-get install chromium``)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from logmesh.examples.traffic import run_traffic
from tests.support.procs import HOST, Procs, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVICES = ("goods", "members", "purchases")
TRAFFIC = 60  # requests sent through the gateway before the tests

# the browser tests' marks: `pytestmark = BROWSER` in each of their modules
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


def http(method: str, url: str, body: object = None, timeout: float = 5.0) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


@dataclass
class Mesh:
    ui: str  # the logs service's HTTP root, where the UI is
    gateway: str
    tcp: int  # the logs service's TCP (shipping) port

    def search(self, q: str = "", limit: int = 1000) -> list[dict]:
        query = urllib.parse.urlencode({"q": q, "limit": limit, "from": "now-1h"})
        status, body = http("GET", f"{self.ui}/api/v1/search?{query}")
        return body["events"] if status == 200 and isinstance(body, dict) else []


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("ui-mesh")
    data = workdir / "data"
    procs = Procs(workdir)
    try:
        _, dport = procs.distributor()
        _, tcp_port, http_port = procs.logs(data, distributor=dport)
        for name in SERVICES:
            procs.service(name, dport, data)
        _, gport = procs.gateway(dport)
        m = Mesh(ui=f"http://{HOST}:{http_port}", gateway=f"http://{HOST}:{gport}", tcp=tcp_port)
        for name in SERVICES:  # the gateway knows every route
            wait_for(lambda n=name: http("GET", f"{m.gateway}/{n}?id=1")[0] == 200, 15, f"route /{name}")
        asyncio.run(run_traffic(m.gateway, rate=0, count=TRAFFIC, seed=6))
        wait_for(lambda: len(m.search()) >= TRAFFIC // 2, 15, "the traffic's events in /api/v1/search")
        yield m
    except BaseException:
        print(procs.logs_of_all())
        raise
    finally:
        procs.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    """A fresh page; JS errors and dialogs fail the test at teardown."""
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()
    assert not pg.errors, f"JavaScript errors: {pg.errors}"
    assert not pg.dialogs, f"dialogs opened: {pg.dialogs}"


def services_shown(pg) -> list[str]:
    return [t.strip() for t in pg.locator("#rows tr.ev td.svc").all_inner_texts()]
