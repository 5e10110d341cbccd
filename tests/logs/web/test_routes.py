"""The UI's routes: the page, its assets, and what they refuse (no browser needed)."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from logmesh.logs.web.routes import STATIC_DIR, add_routes, resolve_static

PAGE_BUDGET = 150 * 1024  # everything a first load fetches (issue #20: "under 150 KB uncompressed")
MODULES = sorted(p.name for p in STATIC_DIR.glob("*.js"))  # the UI's ES modules; app.js the entry
IMPORT = re.compile(r'^\s*import\s*"([^"]+)"|^\s*(?:import|export)\b[^;"]*?\bfrom\s*"([^"]+)"', re.M)


def imports_of(name: str) -> list[str]:
    """The specifiers of a module's static imports (and re-exports); it has no dynamic import()."""
    js = (STATIC_DIR / name).read_text()
    assert "import(" not in js, name
    return [a or b for a, b in IMPORT.findall(js)]


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
    assert "app.js" in MODULES and len(MODULES) > 1
    for name in ("index.html", "app.css", *MODULES):
        assert resolve_static(name) == STATIC_DIR / name


def test_the_modules_import_only_each_other_and_all_are_used():
    """Relative "./x.js" imports only (no bare names, nothing from elsewhere), each a served file,
    and every module reachable from app.js: no dead file ships."""
    seen, todo = set(), ["app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in imports_of(name):
            assert re.fullmatch(r"\./[a-z][a-z0-9-]*\.js", spec), f"{name} imports {spec!r}"
            assert resolve_static(spec[2:]) is not None, f"{name} imports {spec}, which is not served"
            todo.append(spec[2:])
    assert seen == set(MODULES)


def test_the_modules_import_no_cycle():
    """Views reach app.js's search through actions.js, not by importing app.js back."""
    deps = {m: [spec[2:] for spec in imports_of(m)] for m in MODULES}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "import cycle: " + " -> ".join((*path[path.index(name):], name))
        if name not in done:
            for dep in deps[name]:
                visit(dep, (*path, name))
            done.add(name)

    for m in MODULES:
        visit(m, ())


def test_the_page_preloads_every_module_app_js_imports():
    """<link rel="modulepreload"> for each module app.js reaches, so the browser fetches them at
    once instead of one level of imports per round trip; nothing else, each once."""
    page = (STATIC_DIR / "index.html").read_text()
    links = re.findall(r"<link\b[^>]*>", page)
    preloads = [re.search(r'href="([^"]+)"', link).group(1) for link in links if 'rel="modulepreload"' in link]
    assert all(link.count('rel="modulepreload"') == 0 or link.endswith('.js">') for link in links)
    assert sorted(preloads) == [f"/static/{m}" for m in MODULES if m != "app.js"]
    assert len(preloads) == len(set(preloads))
    head = page[: page.index("</head>")]
    assert all(f'href="{p}"' in head for p in preloads)  # in <head>, so the fetches start early


async def test_index_and_assets_are_served_with_types_and_policy(client):
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "/api/v1/search" in resp.headers["Link"]
    page = await resp.text()
    assert '<script type="module" src="/static/app.js"></script>' in page
    assert len(re.findall(r"<script\b", page)) == 1  # no inline script: the CSP would refuse it
    for name, ctype in (("app.css", "text/css"), *((m, "text/javascript") for m in MODULES)):
        resp = await client.get(f"/static/{name}")
        # a module is refused by the browser unless its type is JavaScript (nosniff)
        assert resp.status == 200 and resp.content_type == ctype, name
        assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["ETag"], name
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"], name
        assert resp.headers["X-Content-Type-Options"] == "nosniff", name


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
    for path in ("/", "/static/app.css", *(f"/static/{m}" for m in MODULES)):
        total += len(await (await client.get(path)).read())
    assert total < PAGE_BUDGET, f"page weight {total} bytes"
    page = (STATIC_DIR / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing from the internet


@pytest.mark.parametrize("name", MODULES)
def test_assets_never_put_data_into_html(name):
    js = (STATIC_DIR / name).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
