"""The UI's routes: the page, its assets, and what they refuse (no browser needed)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from logmesh.logs.web.routes import STATIC_DIR, add_routes, resolve_static

PAGE_BUDGET = 300 * 1024  # everything a first load fetches (issue #6: "under 300 KB")


@pytest.fixture
async def client():
    app = web.Application()
    add_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def raw_get(client: TestClient, target: str) -> int:
    """The status of ``GET target`` sent byte for byte (HTTP clients normalise ``..`` away)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize("name", [
    "../routes.py", "..%2froutes.py", "../../server.py", "/etc/passwd", "./app.js", "sub/../app.js",
    ".hidden.js", "app.js\x00.png", "..\\routes.py", "", "index.html/", "routes.py", "missing.js",
])
def test_resolve_static_refuses_everything_outside_static(name):
    assert resolve_static(name) is None


def test_resolve_static_finds_the_assets():
    for name in ("index.html", "app.js", "app.css"):
        assert resolve_static(name) == STATIC_DIR / name


async def test_index_and_assets_are_served_with_types_and_policy(client):
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "/api/v1/search" in resp.headers["Link"]
    page = await resp.text()
    assert '<script src="/static/app.js"' in page
    for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css")):
        resp = await client.get(f"/static/{name}")
        assert resp.status == 200 and resp.content_type == ctype


async def test_etag_revalidation_answers_304(client):
    resp = await client.get("/static/app.js")
    etag = resp.headers["ETag"]
    again = await client.get("/static/app.js", headers={"If-None-Match": etag})
    assert again.status == 304


@pytest.mark.parametrize("target", [
    "/static/../server.py", "/static/%2e%2e/routes.py", "/static/..%2f..%2fserver.py",
    "/static/%2e%2e%2f%2e%2e%2fevent.py", "/static//etc/passwd", "/static/.%2e/routes.py",
])
async def test_traversal_is_refused_over_http(client, target):
    assert await raw_get(client, target) == 404


async def test_page_weight_is_under_budget(client):
    """index.html + everything it links (no fonts, no CDN: nothing else is fetched)."""
    total = 0
    for path in ("/", "/static/app.js", "/static/app.css"):
        total += len(await (await client.get(path)).read())
    assert total < PAGE_BUDGET, f"page weight {total} bytes"
    page = (STATIC_DIR / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing from the internet


def test_assets_never_put_data_into_html():
    js = (STATIC_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in js, sink
