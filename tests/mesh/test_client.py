"""The reconnecting client (the book's tcpClient, made reliable)."""

from __future__ import annotations

import asyncio
import time

import pytest

from logmesh.mesh.client import BadReply, NotConnected, ReconnectingClient, RequestTimeout
from logmesh.protocol import FrameDecoder, encode
from tests.support.mesh import HOST, free_port, names, wait_until


class FakePeer:
    """A raw framed server whose reaction to each request a test decides."""

    def __init__(self, react=None) -> None:
        self.react = react or (lambda packet, writer: None)
        self.received: list[dict] = []
        self.server: asyncio.AbstractServer | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, HOST, port)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        decoder = FrameDecoder()
        while data := await reader.read(65536):
            for item in decoder.feed(data):
                packet = item[1]
                self.received.append(packet)
                self.react(packet, writer)
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in self.writers:
            w.close()
        if self.server is not None:
            await self.server.wait_closed()


@pytest.fixture
async def clients():
    made: list[ReconnectingClient] = []

    def make(port: int, **kwargs) -> ReconnectingClient:
        client = ReconnectingClient(HOST, port, name="test", **kwargs)
        client.start()
        made.append(client)
        return client

    yield make
    for c in made:
        await asyncio.wait_for(c.close(), 2.0)


async def connected(client: ReconnectingClient, timeout: float = 3.0) -> None:
    await asyncio.wait_for(client.connected.wait(), timeout)


async def test_reconnects_after_the_server_restarts(mesh, clients):
    svc = await mesh.start_service("svc", {"GET/ping": lambda p, pk: "pong"}, register=False)
    port = svc.port
    client = clients(port)
    await connected(client)
    assert (await client.request("/ping", "GET"))["results"] == "pong"

    await svc.stop()
    await wait_until(lambda: not client.is_connected, 2.0, "client to notice the server left")
    with pytest.raises(NotConnected):
        await client.request("/ping", "GET")
    assert client.send({"uri": "/ping", "method": "GET", "key": 100})  # queued meanwhile

    again = await mesh.start_service("svc", {"GET/ping": lambda p, pk: "pong again"},
                                     port=port, register=False)
    started = time.monotonic()
    await connected(client, 4.0)
    assert time.monotonic() - started < 4.0
    assert (await client.request("/ping", "GET"))["results"] == "pong again"
    assert again.stats["requests"] == 2  # the queued packet was delivered on reconnect


async def test_queue_while_disconnected_is_bounded_and_drops_oldest(clients):
    port = free_port()  # nothing listens yet
    client = clients(port, max_queue_bytes=1000, backoff_min=0.05, backoff_max=0.1)
    sizes = len(encode({"uri": "/q", "method": "POST", "key": 0, "params": {"n": 0}}))
    results = [client.send({"uri": "/q", "method": "POST", "key": 0, "params": {"n": n}})
               for n in range(200)]
    assert client._queued_bytes <= 1000
    assert client.dropped >= results.count(False) > 0  # one send may push out two older packets
    kept = 200 - client.dropped
    assert kept * sizes <= 1000 + sizes * 2  # only about max_queue_bytes worth is held

    peer = FakePeer()
    await peer.start(port)
    try:
        await connected(client, 3.0)
        await wait_until(lambda: len(peer.received) == kept, 2.0, "the queued packets")
        # the newest packets survive, in the order they were sent
        assert [p["params"]["n"] for p in peer.received] == list(range(200 - kept, 200))
    finally:
        await peer.stop()


async def test_request_times_out_when_no_reply_comes(clients):
    peer = FakePeer()  # accepts, never answers
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            await client.request("/slow", "GET", timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2.0
        assert client._pending == {}
        assert client.is_connected  # a timeout does not cost the connection
    finally:
        await peer.stop()


async def test_requests_with_different_timeouts_each_fail_at_their_own(clients):
    """One sweep fails every request past its deadline (no timer per request): a long
    timeout asked first does not hold back a short one asked after it."""
    peer = FakePeer()  # accepts, never answers
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        loop = asyncio.get_running_loop()
        started = loop.time()
        slow = asyncio.ensure_future(client.request("/slow", "GET", timeout=30))
        with pytest.raises(RequestTimeout, match="within 0.2s"):
            await client.request("/slow", "GET", timeout=0.2)
        assert 0.15 < loop.time() - started < 1.0
        assert not slow.done() and len(client._pending) == 1
        slow.cancel()
        await asyncio.sleep(0)
        assert client._pending == {}
    finally:
        await peer.stop()


async def test_replies_with_unknown_or_no_key_are_counted_not_fatal(clients):
    def react(packet, writer):
        key = packet["params"]["key"]
        writer.write(encode({"key": 999999, "errorcode": 0}))  # nobody asked for 999999
        writer.write(encode({"errorcode": 0, "errormessage": "no key at all"}))
        writer.write(b"null\xc2\xb6")  # the reply that killed the book's gateway
        writer.write(encode({"key": key, "errorcode": 0, "results": "mine"}))

    peer = FakePeer(react)
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        assert (await client.request("/x", "GET", {"a": 1}))["results"] == "mine"
        assert (await client.request("/x", "GET"))["results"] == "mine"
        assert client.unmatched_replies == 4
        assert client.conn.decoder.errors == {"not_object": 2}
        assert client.is_connected
    finally:
        await peer.stop()


async def test_request_puts_the_key_in_params_and_at_the_top_level(clients):
    peer = FakePeer(lambda p, w: w.write(encode({"key": p["params"]["key"], "errorcode": 0})))
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        await client.request("/goods", "POST", {"name": "pen"}, extra={"trace.id": "t1"})
        [sent] = peer.received
        assert sent["params"]["name"] == "pen"
        assert sent["params"]["key"] == sent["key"]
        assert sent["trace.id"] == "t1"
    finally:
        await peer.stop()


async def test_call_sets_the_key_in_params_it_owns_and_copies_others(clients):
    peer = FakePeer(lambda p, w: w.write(encode({"key": p["key"], "errorcode": 0})))
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        replies = []
        shared, owned = {"name": "pen"}, {"name": "ink"}
        first = client.call("/goods", "POST", shared, lambda r, e: replies.append(r))
        second = client.call("/goods", "POST", owned, lambda r, e: replies.append(r), own=True)
        await wait_until(lambda: len(replies) == 2)
        assert shared == {"name": "pen"}  # the caller's dict is not changed
        assert owned == {"name": "ink", "key": second}  # the gateway's own: no copy
        assert [p["params"] for p in peer.received] == [{"name": "pen", "key": first},
                                                       {"name": "ink", "key": second}]
    finally:
        await peer.stop()


async def test_pending_requests_fail_fast_when_the_connection_drops(clients):
    peer = FakePeer(lambda p, w: w.close())
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        started = time.monotonic()
        with pytest.raises(NotConnected):
            await client.request("/x", "GET", timeout=5.0)
        assert time.monotonic() - started < 2.0
    finally:
        await peer.stop()


async def test_request_while_down_raises_not_connected(clients):
    client = clients(free_port())
    with pytest.raises(NotConnected):
        await client.request("/x", "GET")


async def test_service_registers_again_after_the_distributor_restarts(mesh):
    dist = await mesh.start_distributor()
    port = dist.port
    svc = await mesh.start_service("goods", {"GET/goods": lambda p, pk: []})
    await wait_until(lambda: names(dist.nodes()) == ["goods"], 3.0, "registration")
    await dist.stop()
    await wait_until(lambda: not svc.registry.client.is_connected, 2.0, "link to drop")
    await asyncio.sleep(0.5)  # down for a while: the link backs off
    again = await mesh.start_distributor(port)
    await wait_until(lambda: names(again.nodes()) == ["goods"], 5.0, "registration again")
    assert again.nodes()[0]["port"] == svc.port


async def test_a_reply_split_by_a_raw_pilcrow_fails_its_request_at_once(clients):
    """What the book's services send for a stored ¶: JSON.stringify leaves it raw."""
    def react(packet, writer):
        key = packet["key"]
        writer.write(f'{{"key":{key},"errorcode":0,"results":[{{"name":"a¶b"}}]}}¶'.encode())

    peer = FakePeer(react)
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        started = time.monotonic()
        with pytest.raises(BadReply, match="raw ¶"):
            await client.request("/goods", "GET", timeout=5.0)
        assert time.monotonic() - started < 1.0
        assert client._pending == {} and client.is_connected
        assert client.conn.decoder.errors == {"bad_json": 2}
    finally:
        await peer.stop()


async def test_a_reply_over_the_packet_limit_fails_its_request_at_once(clients):
    """A reply over the limit (a service answering 2 MB, its frame whole) was dropped unread
    and its request waited for its timeout: the gateway answered 504 "did not answer" 10 s
    later and marked the instance stalled (found from outside). Its key, the reply's first
    member, fails it at once; the connection stays, and the next reply is read."""
    def react(packet, writer):
        key = packet["key"]
        size = 2_000_000 if packet["uri"] == "/big" else 10
        writer.write(f'{{"key":{key},"errorcode":0,"results":"{"x" * size}"}}¶'.encode())

    peer = FakePeer(react)
    port = await peer.start()
    try:
        client = clients(port)
        await connected(client)
        started = time.monotonic()
        with pytest.raises(BadReply, match=r"reply of 2,000,0\d\d bytes, over the limit of 1,048,576"):
            await client.request("/big", "GET", timeout=5.0)
        assert time.monotonic() - started < 2.0
        assert client._pending == {} and client.is_connected
        reply = await client.request("/small", "GET", timeout=5.0)
        assert reply["results"] == "x" * 10
    finally:
        await peer.stop()
