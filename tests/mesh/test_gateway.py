"""The HTTP gateway over real TCP and HTTP: routing, round robin, params, 404/503/504."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from tests.support.mesh import HOST, Peer, free_port, gateway_ready, wait_until


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def url(gw, path: str) -> str:
    return f"http://{HOST}:{gw.port}{path}"


async def test_round_robin_across_two_instances(mesh, http):
    await mesh.start_distributor()
    a = await mesh.start_service("who", {"GET/who": lambda p, pk: "a"})
    b = await mesh.start_service("who", {"GET/who": lambda p, pk: "b"})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "GET/who", instances=2)
    answers = []
    for _ in range(6):
        async with http.get(url(gw, "/who")) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["errorcode"] == 0
            answers.append(body["results"])
    assert sorted(answers) == ["a"] * 3 + ["b"] * 3
    assert all(x != y for x, y in zip(answers, answers[1:], strict=False))  # alternating
    assert a.stats["requests"] == b.stats["requests"] == 3


async def test_unknown_route_is_a_json_404(mesh, http):
    await mesh.start_distributor()
    await mesh.start_service("who", {"GET/who": lambda p, pk: "a"})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "GET/who")
    for method, path in (("GET", "/nothing"), ("POST", "/who")):
        async with http.request(method, url(gw, path)) as resp:
            assert resp.status == 404
            assert resp.content_type == "application/json"
            body = await resp.json()
            assert body["errorcode"] == 404 and path in body["errormessage"]


async def test_a_listed_instance_nobody_can_reach_is_a_503(mesh, http):
    await mesh.start_distributor()
    gw = await mesh.start_gateway()
    # A node registered under a port nobody listens on: known route, no instance up behind it.
    ghost = await Peer.connect(mesh.distributor.port)
    ghost.send({"uri": "/distributes", "method": "POST", "key": 0,
                "params": {"port": free_port(), "name": "ghost", "urls": ["GET/ghost"]}})
    await wait_until(lambda: "GET/ghost" in gw.routes, 3.0, "ghost route")
    async with http.get(url(gw, "/ghost")) as resp:
        assert resp.status == 503
        body = await resp.json()
        assert body["errorcode"] == 503
    assert gw.stats["no_instance"] == 1
    await ghost.close()


async def test_slow_service_is_a_504_and_the_gateway_keeps_serving(mesh, http):
    async def sleepy(params, packet):
        await asyncio.sleep(float(params.get("s", 3.0)))
        return "late"

    await mesh.start_distributor()
    await mesh.start_service("sleepy", {"GET/sleepy": sleepy, "GET/quick": lambda p, pk: "ok"})
    gw = await mesh.start_gateway(timeout=0.4)
    await gateway_ready(gw, "GET/sleepy")
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(url(gw, "/sleepy"), params={"s": "1"}) as resp:
        assert resp.status == 504
        assert (await resp.json())["errorcode"] == 504
    assert loop.time() - started < 1.0
    async with http.get(url(gw, "/quick")) as resp:
        assert resp.status == 200 and (await resp.json())["results"] == "ok"
    assert gw.stats["timeouts"] == 1
    # the late reply carries a key nobody waits for any more: counted and dropped (book defect 6)
    [client] = gw.clients.values()
    await wait_until(lambda: client.unmatched_replies == 1, 3.0, "the late reply")
    async with http.get(url(gw, "/quick")) as resp:
        assert resp.status == 200


async def test_concurrent_requests_get_their_own_replies(mesh, http):
    async def echo_later(params, packet):
        await asyncio.sleep(random.uniform(0, 0.05))
        return params["i"]

    await mesh.start_distributor()
    await mesh.start_service("echo", {"GET/echo": echo_later})
    await mesh.start_service("echo", {"GET/echo": echo_later})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "GET/echo", instances=2)

    async def one(i: int) -> str:
        async with http.get(url(gw, "/echo"), params={"i": str(i)}) as resp:
            return (await resp.json())["results"]

    got = await asyncio.gather(*(one(i) for i in range(60)))
    assert got == [str(i) for i in range(60)]


async def test_json_body_form_body_and_query_string_become_params(mesh, http):
    seen: list[dict] = []

    def echo(params, packet):
        seen.append(packet)
        return params

    await mesh.start_distributor()
    await mesh.start_service("echo", {"POST/echo": echo, "GET/echo": echo, "DELETE/echo": echo,
                                      "PUT/echo": echo})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "POST/echo")

    async with http.post(url(gw, "/echo"), params={"q": "1"},
                         json={"name": "pen¶", "n": 2, "tags": ["a"]}) as resp:
        body = await resp.json()
    params = body["results"]
    assert params["name"] == "pen¶" and params["n"] == 2 and params["tags"] == ["a"]
    assert params["q"] == "1"
    assert body["key"] == params["key"]  # the book's gateway keeps its key in params.key

    async with http.get(url(gw, "/echo"), params={"id": "7", "name": "한글"}) as resp:
        params = (await resp.json())["results"]
    assert params["id"] == "7" and params["name"] == "한글"

    async with http.delete(url(gw, "/echo?id=3")) as resp:
        assert (await resp.json())["results"]["id"] == "3"

    async with http.put(url(gw, "/echo"), data={"name": "cup", "price": "3"}) as resp:
        params = (await resp.json())["results"]
    assert params["name"] == "cup" and params["price"] == "3"

    # the request packet carries the key in params and a trace id, as DESIGN §1/§3 say
    packet = seen[0]
    assert packet["uri"] == "/echo" and packet["method"] == "POST"
    assert isinstance(packet["params"]["key"], int)
    assert packet.get("trace.id")


async def test_bad_body_is_a_400(mesh, http):
    await mesh.start_distributor()
    await mesh.start_service("echo", {"POST/echo": lambda p, pk: p})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "POST/echo")
    for data in (b"{not json", b"[1, 2]"):
        async with http.post(url(gw, "/echo"), data=data,
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["errorcode"] == 400


async def test_request_id_header_becomes_the_trace_id(mesh, http):
    seen: list[dict] = []
    await mesh.start_distributor()
    await mesh.start_service("echo", {"GET/echo": lambda p, pk: seen.append(pk)})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "GET/echo")
    async with http.get(url(gw, "/echo"), headers={"X-Request-Id": "req-123"}) as resp:
        assert resp.headers["X-Request-Id"] == "req-123"
    assert seen[0]["trace.id"] == "req-123"


def test_a_new_trace_id_is_32_lowercase_hex_digits_zero_padded(monkeypatch):
    from logmesh.mesh import gateway

    for bits in (0, 1, 0xABC, (1 << 128) - 1, random.getrandbits(128)):
        monkeypatch.setattr(gateway.random, "getrandbits", lambda n, b=bits: b)
        assert gateway.new_trace_id() == f"{bits:032x}"


async def test_gateway_lists_the_nodes(mesh, http):
    await mesh.start_distributor()
    svc = await mesh.start_service("who", {"GET/who": lambda p, pk: "a"})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "GET/who")
    async with http.get(url(gw, "/distributes")) as resp:
        nodes = await resp.json()
    assert {"port": svc.port, "name": "who", "urls": ["GET/who"], "host": HOST} in nodes
    assert any(n["name"] == "gateway" and n["port"] == gw.port for n in nodes)


async def test_a_service_that_leaves_is_no_longer_routed(mesh, http):
    await mesh.start_distributor()
    a = await mesh.start_service("who", {"GET/who": lambda p, pk: "a"})
    await mesh.start_service("who", {"GET/who": lambda p, pk: "b"})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "GET/who", instances=2)
    await a.stop()
    await wait_until(lambda: len(gw.routes.get("GET/who", [])) == 1, 3.0, "a's departure")
    for _ in range(4):
        async with http.get(url(gw, "/who")) as resp:
            assert (await resp.json())["results"] == "b"


async def test_request_in_flight_to_a_node_that_leaves_goes_to_another(mesh, http):
    def slow(name):
        async def handler(params, packet):
            await asyncio.sleep(0.5)
            return name
        return handler

    await mesh.start_distributor()
    a = await mesh.start_service("slow", {"GET/slow": slow("a")})
    await mesh.start_service("slow", {"GET/slow": slow("b")})
    gw = await mesh.start_gateway(timeout=5.0)
    await gateway_ready(gw, "GET/slow", instances=2)
    assert gw.routes["GET/slow"][0] == (HOST, a.port)  # round robin starts with a

    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = asyncio.ensure_future(http.get(url(gw, "/slow")))
    await wait_until(lambda: a.stats["requests"] == 1, 2.0, "the request to reach a")
    await a.registry.close()  # a leaves the mesh: the gateway drops its link to a
    async with await asyncio.wait_for(pending, 4.0) as resp:
        assert resp.status == 200
        assert (await resp.json())["results"] == "b"
    assert loop.time() - started < 2.5  # not left waiting for the 5 s timeout


async def test_curl_style_bodies_are_read_by_what_they_hold(mesh, http):
    """curl -d sends form-urlencoded: a JSON text is read as JSON, a form as a form, and a
    text that is neither is a 400 instead of a field name (issue 15 item 8)."""
    await mesh.start_distributor()
    await mesh.start_service("echo", {"POST/echo": lambda p, pk: p})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "POST/echo")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(url(gw, "/echo"), data=b'{"name":"pen","price":1}', headers=form) as resp:
        params = (await resp.json())["results"]
    assert params["name"] == "pen" and params["price"] == 1
    async with http.post(url(gw, "/echo"), data=b"name=cup&price=3", headers=form) as resp:
        params = (await resp.json())["results"]
    assert params["name"] == "cup" and params["price"] == "3"
    async with http.post(url(gw, "/echo"), data=b"not json at all", headers=form) as resp:
        assert resp.status == 400 and "neither JSON nor a form" in (await resp.json())["errormessage"]


async def test_a_declared_body_over_the_limit_is_a_413_at_once(mesh):
    """Content-Length: 10**12 and no body held the request without an answer."""
    await mesh.start_distributor()
    await mesh.start_service("echo", {"POST/echo": lambda p, pk: p})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "POST/echo")
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000000000000\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 3)
    assert b" 413 " in head
    writer.close()


async def test_a_body_that_stops_coming_is_a_408_and_the_connection_closes(mesh, monkeypatch):
    """A body that arrived whole with its head is answered at once; one that stops half-way is
    answered 408 at the body's deadline (the HTTP site's sweep: no timer per request), and the
    connection, whose bytes can no longer be read as requests, is closed."""
    from logmesh.mesh import gateway as gateway_module

    monkeypatch.setattr(gateway_module, "BODY_TIMEOUT", 0.3)
    await mesh.start_distributor()
    await mesh.start_service("echo", {"POST/echo": lambda p, pk: p})
    gw = await mesh.start_gateway()
    await gateway_ready(gw, "POST/echo")
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    body = b'{"name": "pen"}'
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert b" 200 " in head.split(b"\r\n")[0]
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    assert b'"name":"pen"' in await reader.readexactly(length)
    t0 = asyncio.get_running_loop().time()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"name\":")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)  # to the end: the connection closes
    assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
    assert b'"errorcode":408' in answer
    assert 0.25 < asyncio.get_running_loop().time() - t0 < 3
    writer.close()
