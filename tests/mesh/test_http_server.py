"""The gateway's HTTP server (our httptools protocol behind the site's guard): the limits
aiohttp's site had, kept: the connection cap and its eviction, the head's deadline and sizes,
bad requests counted, requests in progress answered on stop. HTTP/1.1 itself:
test_http_protocol.py."""

from __future__ import annotations

import asyncio

import pytest

from logmesh.mesh.http_protocol import Response
from logmesh.mesh.http_server import HttpSite
from tests.support.waiting import wait_until

HOST = "127.0.0.1"


def app(release: asyncio.Event | None = None):
    """Answers ``ok`` (after ``release`` when given: a request held in progress)."""

    def handler(request, respond):
        if release is None:
            respond(Response(200, b"ok"))
        else:
            asyncio.get_running_loop().create_task(release.wait()).add_done_callback(
                lambda _: respond(Response(200, b"ok")))

    return handler


@pytest.fixture
def serve(http_site):
    """The site (tests/mesh/conftest.py) with this module's handler unless one is given."""
    return lambda handler=None, **options: http_site(handler or app(), **options)


async def get(site: HttpSite, head: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    reader, writer = await asyncio.open_connection(HOST, site.port)
    writer.write(head)
    try:
        return await asyncio.wait_for(reader.read(4096), 3)
    finally:
        writer.close()


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 3.0) -> bool:
    return await asyncio.wait_for(reader.read(4096), timeout) == b""


async def test_an_answer_is_served_with_a_date(serve):
    site = await serve()
    answer = await get(site)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok")
    assert b"\r\ndate: " in answer.lower()


async def test_a_websocket_upgrade_is_answered_as_plain_http(serve):
    site = await serve()
    answer = await get(site, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                             b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")


async def test_a_head_that_never_completes_is_closed_at_the_header_timeout(serve):
    site = await serve(header_timeout=0.5)
    reader, writer = await asyncio.open_connection(HOST, site.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head never ends
    assert await closed_by_peer(reader)
    writer.close()


async def test_a_keep_alive_connection_s_next_head_has_the_deadline_too(serve):
    site = await serve(header_timeout=0.5)
    reader, writer = await asyncio.open_connection(HOST, site.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(4096), 3)).endswith(b"ok")
    writer.write(b"GET / HTTP/1.1\r\n")
    assert await closed_by_peer(reader)
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_by_the_sweep_and_a_busy_one_kept(serve):
    """The keep-alive timeout is the site's sweep's (no timer per request): an answered
    connection with no new request is closed after it; one that keeps asking is not."""
    site = await serve(header_timeout=0.6)
    assert site.keep_alive_timeout == 0.6
    idle_r, idle_w = await asyncio.open_connection(HOST, site.port)
    busy_r, busy_w = await asyncio.open_connection(HOST, site.port)
    for writer in (idle_w, busy_w):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for reader in (idle_r, busy_r):
        assert (await asyncio.wait_for(reader.read(4096), 3)).endswith(b"ok")
    t0 = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - t0 < 1.5:  # past the timeout: busy asks on
        busy_w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(busy_r.read(4096), 3)).endswith(b"ok")
        await asyncio.sleep(0.1)
    assert await closed_by_peer(idle_r, 0.1), "idle for over 0.6 s: closed"
    for writer in (idle_w, busy_w):
        writer.close()


@pytest.mark.parametrize("head", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
], ids=["garbage", "long-line", "long-header", "many-headers"])
async def test_a_bad_request_is_a_400_counted_and_the_server_goes_on(serve, head):
    site = await serve()
    assert (await get(site, head)).startswith(b"HTTP/1.1 400 ")
    assert site.counters.stats["bad_requests"] == 1
    assert (await get(site)).endswith(b"ok")


async def test_a_full_port_closes_a_connection_that_never_sent_a_request(serve):
    site = await serve(max_connections=2)
    silent = [await asyncio.open_connection(HOST, site.port) for _ in range(2)]
    await wait_until(lambda: len(site._protocols) == 2)
    assert (await get(site)).endswith(b"ok")  # the newcomer is served ...
    assert await closed_by_peer(silent[0][0])  # ... the oldest silent one made room
    assert site.counters.stats["evicted"] == 1
    for _, writer in silent:
        writer.close()


async def test_a_port_full_of_requests_in_progress_refuses_a_newcomer(serve):
    release = asyncio.Event()
    site = await serve(app(release), max_connections=2)
    busy = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection(HOST, site.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        busy.append((reader, writer))
    await wait_until(lambda: site.in_progress() == 2)
    reader, writer = await asyncio.open_connection(HOST, site.port)
    assert await closed_by_peer(reader)
    assert site.counters.stats["refused_connections"] == 1
    release.set()
    for reader, w in busy:  # the requests in progress were not touched
        assert (await asyncio.wait_for(reader.read(4096), 3)).endswith(b"ok")
        w.close()
    writer.close()


async def test_stop_answers_the_requests_in_progress_and_closes_idle_connections(serve):
    release = asyncio.Event()
    site = await serve(app(release))
    idle_reader, idle_writer = await asyncio.open_connection(HOST, site.port)
    reader, writer = await asyncio.open_connection(HOST, site.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_until(lambda: site.in_progress() == 1)
    stopping = asyncio.create_task(site.stop(grace=3))
    await asyncio.sleep(0.1)
    assert await closed_by_peer(idle_reader)
    release.set()
    answer = await asyncio.wait_for(reader.read(4096), 3)
    assert answer.endswith(b"ok") and b"connection: close" in answer.lower()
    await stopping
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, site.port)
    for w in (idle_writer, writer):
        w.close()
