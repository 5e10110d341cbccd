"""GuardedSite's bookkeeping leans on aiohttp internals (logmesh/security_http.py): aiohttp has
no public hook for "a connection closed" (no signal; only ``Server.connection_lost``, which its
``RequestHandler.connection_lost`` calls), so the site wraps that method on its server. These
tests pin it: an aiohttp upgrade that renames it, changes its signature or stops calling it
fails here, instead of leaving closed connections counted against --max-connections."""

from __future__ import annotations

import asyncio
import inspect

from aiohttp import web

from logmesh.security import Limits
from logmesh.security_http import GuardedSite
from tests.support.waiting import wait_until


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hi")


async def _site(max_connections: int) -> tuple[web.AppRunner, GuardedSite]:
    app = web.Application()
    app.router.add_get("/", _hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(max_connections=max_connections))
    await site.start()
    return runner, site


def test_aiohttp_still_has_the_private_method_the_site_wraps() -> None:
    assert list(inspect.signature(web.Server.connection_lost).parameters) == ["self", "handler", "exc"]
    assert "_manager.connection_lost(self, exc)" in inspect.getsource(web.RequestHandler.connection_lost)
    for name in ("_manager", "_request_count", "_waiter"):  # what _make_room reads of a handler
        assert name in web.RequestHandler.__slots__


async def test_a_closed_connection_leaves_the_sites_count_at_once() -> None:
    runner, site = await _site(max_connections=8)
    server = runner.server
    assert server is not None
    try:
        port = site._bound_port
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        _, served = conns[0]  # one served (then idle keep-alive), the others silent
        served.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await conns[0][0].readuntil(b"hi")
        await wait_until(lambda: len(server.connections) == 4, what="4 connections made")
        assert len(site._handlers) == 4
        for _, writer in conns:
            writer.close()
        # aiohttp's own count drops once Server.connection_lost ran (after the handler's task):
        # by then the site's wrapper must have forgotten every one.
        await wait_until(lambda: not server.connections, what="aiohttp saw the 4 closes")
        assert site._handlers == {}, "closed connections still counted by the site"
    finally:
        await runner.cleanup()

