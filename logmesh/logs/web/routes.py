"""The web UI's routes: the page at ``/`` and its assets at ``/static/``.

The page is plain HTML + CSS + native ES modules shipped in ``static/``
(package data, no build step, nothing fetched from the internet): the page
loads ``app.js`` as ``<script type="module">`` and it imports the other
modules, one job each (docs/architecture.md). Every ``.js`` is served as
``text/javascript``; with ``nosniff`` a browser refuses a module of any other
type. The page calls only the public ``/api/v1/`` API, so everything it shows
can be had as JSON too. (``static/package.json`` only tells node, which runs
the modules' tests, that they are modules.)

Log content is untrusted: the page renders it with ``textContent`` only, and
the Content-Security-Policy below forbids inline and foreign scripts, so a
message like ``<img src=x onerror=alert(1)>`` stays text even if a future
change slips.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
# Only these kinds are served; anything else in static/ (editor backups, ...) is a 404.
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
                 ".json": "application/json"}
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def resolve_static(name: str, root: Path = STATIC_DIR) -> Path | None:
    """The file ``name`` names inside ``root``, or None: traversal, hidden files, unknown kinds."""
    if not name or "\\" in name or "\x00" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.suffix not in CONTENT_TYPES or not path.is_file():
        return None
    return path


def _file_response(request: web.Request, path: Path, cache: str) -> web.Response:
    body = path.read_bytes()
    etag = '"' + hashlib.blake2s(body, digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": cache, **SECURITY_HEADERS}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    ctype = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    charset = "utf-8" if ctype.startswith("text/") or ctype.endswith(("json", "xml")) else None
    return web.Response(body=body, content_type=ctype, charset=charset, headers=headers)


async def index(request: web.Request) -> web.Response:
    """The single page; its state (query, range, view, event) lives in the URL's query string."""
    resp = _file_response(request, STATIC_DIR / INDEX, "no-cache")
    # The page's JSON twin, as Datasette advertises it.
    resp.headers["Link"] = '</api/v1/search>; rel="alternate"; type="application/json"'
    return resp


async def static(request: web.Request) -> web.Response:
    path = resolve_static(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound(text="not found: the UI's files are under /static/ (app.js and its modules, app.css)")
    # no-cache + ETag: revalidated on every load, so an upgrade never mixes old and new assets.
    return _file_response(request, path, "no-cache")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/static/{name:.*}", static)
