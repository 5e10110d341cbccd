"""Tokens (issue #9): a wrong or missing token is refused everywhere one is required.

On the ¶ protocol a connection proves itself once, with a hello as its first
packet; a refusal is one error packet and a closed connection. A hello to a
server without a token is accepted silently (a plain book client in open mode
never hears a byte). Over HTTP: ``Authorization: Bearer``, read and write
tokens apart.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from logmesh.hello import hello_packet
from logmesh.mesh.client import ReconnectingClient
from logmesh.mesh.distributor import Distributor
from logmesh.mesh.gateway import Gateway
from logmesh.security import Limits, ServerSecurity, token_matches
from logmesh.shipping.shipper import Shipper
from tests.security.conftest import READ, TOKEN, WRITE
from tests.support.logs import (
    HOST,
    RawClient,
    bad_frames,
    book_frame,
    metrics,
    request_text,
    stored,
)
from tests.support.mesh import Peer, gateway_ready, wait_until

WRONG = "not-the-token-at-all-0000000000"


def registration(name: str, port: int, urls: list[str], **extra) -> dict:
    return {"uri": "/distributes", "method": "POST", "key": 0,
            "params": {"port": port, "name": name, "urls": urls, **extra}}


async def refused(peer: Peer) -> dict:
    """The one error packet a refused connection gets, then the server closes it."""
    reply = await peer.recv()
    assert reply["errorcode"] == 401 and "token" in reply["errormessage"]
    with pytest.raises(ConnectionError):
        await peer.recv(2.0)
    return reply


def test_token_matches_is_exact() -> None:
    accepted = (TOKEN.encode(), READ.encode())
    assert token_matches(TOKEN, accepted) and token_matches(READ.encode(), accepted)
    for given in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), 12345, ["x"]):
        assert not token_matches(given, accepted)  # type: ignore[arg-type]
    assert not token_matches(TOKEN, ())


# -- distributor ------------------------------------------------------------------------


@pytest.mark.parametrize("first", [
    pytest.param(lambda: registration("goods", 9010, ["GET/goods"]), id="registration-no-token"),
    pytest.param(lambda: registration("goods", 9010, ["GET/goods"], token=WRONG), id="wrong-token"),
    pytest.param(lambda: hello_packet(WRONG), id="wrong-hello"),
    pytest.param(lambda: {"uri": "/distributes", "method": "GET", "key": 3}, id="list-no-token"),
])
async def test_distributor_refuses_without_the_token(first) -> None:
    dist = Distributor(HOST, 0, security=ServerSecurity(token=TOKEN))
    await dist.start()
    try:
        peer = await Peer.connect(dist.port)
        assert await peer.silent_for(0.2) == [], "no list before the token"
        peer.send(first())
        await refused(peer)
        assert dist.nodes() == []
        assert dist.guard.stats["auth_failures"] == 1
    finally:
        await dist.stop()


async def test_distributor_accepts_a_hello_or_a_token_in_the_registration() -> None:
    dist = Distributor(HOST, 0, security=ServerSecurity(token=TOKEN))
    await dist.start()
    try:
        a = await Peer.connect(dist.port)
        a.send(hello_packet(TOKEN))
        assert (await a.recv())["params"] == []  # the list, once the hello passed
        a.send(registration("goods", 9010, ["GET/goods"]))
        await a.recv()
        b = await Peer.connect(dist.port)
        b.send(registration("members", 9020, ["GET/members"], token=TOKEN))
        packets = [await b.recv(), await b.recv()]
        listed = packets[-1]["params"]
        assert [n["name"] for n in listed] == ["goods", "members"]
        assert all("token" not in n for n in listed), "the token is never broadcast"
        assert TOKEN not in orjson.dumps(packets).decode()
        await a.close()
        await b.close()
    finally:
        await dist.stop()


# -- services and the gateway -----------------------------------------------------------------


async def test_a_service_refuses_requests_without_the_token(mesh) -> None:
    svc = await mesh.start_service("goods", {"GET/goods": lambda p, pk: [1]}, register=False,
        security=ServerSecurity(token=TOKEN))
    peer = await Peer.connect(svc.port)
    peer.send({"uri": "/goods", "method": "GET", "params": {"key": 7}})
    assert (await refused(peer))["key"] == 7
    peer = await Peer.connect(svc.port)
    peer.send(hello_packet(WRONG))
    await refused(peer)
    assert svc.stats["requests"] == 0
    peer = await Peer.connect(svc.port)
    peer.send(hello_packet(TOKEN))
    peer.send({"uri": "/goods", "method": "GET", "params": {"key": 8}})
    assert await peer.recv() == {"key": 8, "errorcode": 0, "errormessage": "success", "results": [1]}
    await peer.close()


async def test_a_service_without_a_token_ignores_a_hello(mesh) -> None:
    svc = await mesh.start_service("goods", {"GET/goods": lambda p, pk: []}, register=False)
    peer = await Peer.connect(svc.port)
    peer.send(hello_packet(TOKEN))
    assert await peer.silent_for(0.3) == [], "a hello is never answered in open mode"
    assert svc.stats["requests"] == 0


async def test_the_mesh_works_with_one_token_and_not_with_another(mesh) -> None:
    dist = Distributor(HOST, 0, security=ServerSecurity(token=TOKEN))
    await dist.start()
    mesh.stoppers.append(dist.stop)
    mesh.distributor = dist
    await mesh.start_service("goods", {"GET/goods": lambda p, pk: ["ok"]},
        security=ServerSecurity(token=TOKEN))
    gw = Gateway(HOST, 0, distributor=mesh.distributor_addr, security=ServerSecurity(token=TOKEN))
    await gw.start()
    mesh.stoppers.append(gw.stop)
    await gateway_ready(gw, "GET/goods")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{HOST}:{gw.port}/goods") as r:
            assert r.status == 200 and (await r.json())["results"] == ["ok"]
        async with http.get(f"http://{HOST}:{gw.port}/distributes") as r:
            assert r.status == 401, "the topology needs the token"
        async with http.get(f"http://{HOST}:{gw.port}/distributes",
                            headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200 and {n["name"] for n in await r.json()} >= {"goods"}
        twice = CIMultiDict([("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer x")])
        async with http.get(f"http://{HOST}:{gw.port}/distributes", headers=twice) as r:
            assert r.status == 400 and "given twice" in (await r.json())["errormessage"]
        async with http.get(f"http://{HOST}:{gw.port}/goods", headers=twice) as r:
            assert r.status == 200, "a route reads no Authorization: nothing to refuse"
    # A node with the wrong token never registers.
    intruder = await mesh.start_service("evil", {"GET/goods": lambda p, pk: ["pwned"]},
        security=ServerSecurity(token=WRONG))
    await asyncio.sleep(0.5)
    assert "evil" not in [n["name"] for n in dist.nodes()]
    assert intruder.registry is not None and intruder.registry.client.refusal is not None


async def test_a_client_with_a_wrong_token_learns_why(mesh) -> None:
    svc = await mesh.start_service("goods", {}, register=False, security=ServerSecurity(token=TOKEN))
    client = ReconnectingClient(HOST, svc.port, token=WRONG, backoff_min=5.0)
    client.start()
    try:
        await wait_until(lambda: client.refusal is not None, what="the refusal")
        assert client.refusal["errorcode"] == 401  # type: ignore[index]
    finally:
        await client.close()


# -- the logs service: TCP ingest ---------------------------------------------------------------


@pytest.mark.parametrize("first", [
    pytest.param(None, id="book-packet-no-hello"),
    pytest.param(hello_packet(WRONG), id="wrong-token"),
    pytest.param(hello_packet(READ), id="read-token-cannot-ship"),
    pytest.param({"uri": "/auth", "method": "POST", "key": 0, "params": {}}, id="hello-no-token"),
])
async def test_ingest_refuses_without_a_write_token(start_logs, first) -> None:
    srv = await start_logs(security=ServerSecurity(read_token=READ, write_token=WRITE))
    client = await RawClient.connect(srv.config.port)
    data = book_frame(request_text(1, "intruder"))
    if first is not None:
        data = orjson.dumps(first) + "¶".encode() + data
    await client.send(data)
    await client.read_for(2.0)
    assert client.eof, "a refused connection is closed"
    reply = orjson.loads(bytes(client.received).split("¶".encode())[0])
    assert reply["errorcode"] == 401
    assert stored(srv.config.data_dir) == []
    assert srv.guard.stats["auth_failures"] == 1


async def test_ingest_takes_the_hello_once_then_never_answers(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(token=TOKEN))
    client = await RawClient.connect(srv.config.port)
    texts = [request_text(i, "ok") for i in range(3)]
    hello = orjson.dumps(hello_packet(TOKEN)) + "¶".encode()
    data = hello + b"".join(book_frame(t) for t in texts)
    for i in range(0, len(data), 7):  # the hello cut anywhere, even inside the delimiter
        await client.send(data[i:i + 7])
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 stored events")
    assert await client.read_for(0.3) == b"" and not client.eof
    assert [e["message"] for e in stored(srv.config.data_dir)] == texts
    await client.close()


async def test_ingest_in_open_mode_ignores_a_hello(start_logs) -> None:
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    await client.send(orjson.dumps(hello_packet(TOKEN)) + "¶".encode() + book_frame("x"))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 1, what="1 stored event")
    assert await client.read_for(0.3) == b""
    assert bad_frames(await metrics(srv.config.http_port), "not_a_log") == 0


async def test_ingest_closes_a_connection_that_sends_no_hello(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(token=TOKEN, limits=Limits(header_timeout=1.0)))
    client = await RawClient.connect(srv.config.port)
    await client.read_for(3.5)
    assert client.eof, "no hello within --header-timeout: closed"
    assert srv.guard.stats["header_timeouts"] == 1


async def test_the_shipper_ships_with_the_token_and_not_without(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(token=TOKEN))
    good = Shipper("goods", logs_addr=(HOST, srv.config.port), token=TOKEN)
    bad = Shipper("members", logs_addr=(HOST, srv.config.port), token=WRONG)
    for s in (good, bad):
        s.start()
        for i in range(50):
            s.ship(request_text(i, s.service).encode())
    try:
        await wait_until(lambda: good.stats["acked"] == 50, what="50 acked events")
        await wait_until(lambda: bad.client is not None and bad.client.refusal is not None,
                         what="the refusal of the wrong token")
        assert bad.stats["acked"] == 0
        services = {e["service.name"] for e in stored(srv.config.data_dir)}
        assert services == {"goods"}
    finally:
        await good.close(1)
        await bad.close(0.1)


# -- the logs service: HTTP API ------------------------------------------------------------------


async def _status(method: str, url: str, token: str | None, **kw) -> tuple[int, dict | str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, headers=headers, **kw) as r:
            text = await r.text()
            try:
                return r.status, orjson.loads(text)
            except orjson.JSONDecodeError:
                return r.status, text


@pytest.mark.parametrize("token,read,write", [
    (None, 401, 401), (WRONG, 401, 401), (READ, 200, 403), (WRITE, 403, 200), (TOKEN, 200, 200),
])
async def test_http_api_read_and_write_tokens(start_logs, token, read, write) -> None:
    srv = await start_logs(security=ServerSecurity(token=TOKEN, read_token=READ, write_token=WRITE))
    base = f"http://{HOST}:{srv.config.http_port}"
    line = orjson.dumps({"message": "hi", "service.name": "t"})
    for path in ("/api/v1/search", "/api/v1/stats", "/api/v1/fields", "/metrics"):
        status, body = await _status("GET", base + path, token)
        assert status == read, (path, body)
        if status != 200:
            assert body["ok"] is False and body["status"] == status  # type: ignore[index]
    status, body = await _status("POST", base + "/api/v1/logs", token, data=line)
    assert status == write, body
    if status == 401:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/api/v1/search") as r:
                assert r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_health_ui_and_api_description_stay_open(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(token=TOKEN))
    base = f"http://{HOST}:{srv.config.http_port}"
    for path in ("/healthz", "/", "/static/app.js", "/api/v1/openapi.json"):
        status, _ = await _status("GET", base + path, None)
        assert status == 200, path
    for scheme in ("Basic", "bearer", "Token"):
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/api/v1/stats",
                                headers={"Authorization": f"{scheme} {WRONG}"}) as r:
                assert r.status == 401
