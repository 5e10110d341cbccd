"""logmesh and the book's Node.js code in one mesh (DESIGN.md §1).

The Node scripts in node/ follow the book's tcpClient, tcpServer, a goods service
and gate.js; the book's gateway keeps its key in params.key, its services answer
with a top-level key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from pathlib import Path

import aiohttp
import pytest

from logmesh.examples.resource import make_service
from logmesh.metrics import Exposition
from tests.support.mesh import HOST, gateway_ready, names, wait_until

NODE_DIR = Path(__file__).parent / "node"

pytestmark = pytest.mark.skipif(shutil.which("node") is None,
                                reason="node is not installed: these tests run the book's Node.js code")


def metrics_text(part) -> str:
    """What ``part``'s /metrics page shows (services and the gateway share collect_metrics)."""
    ex = Exposition()
    part.collect_metrics(ex)
    return ex.render()


class NodeProc:
    """A Node script whose stdout is one JSON event per line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict] = []

    @classmethod
    async def start(cls, script: str, *args: str) -> NodeProc:
        proc = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node", str(NODE_DIR / script), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        return cls(proc)

    async def event(self, kind: str, predicate=lambda data: True, timeout: float = 5.0) -> dict:
        """The next event of ``kind`` matching ``predicate`` (earlier ones are consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind!r} event within {timeout}s; saw {self.events[-5:]}")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not line:
                raise AssertionError(f"node exited ({await self.proc.wait()}) before a {kind!r} "
                                     f"event; saw {self.events[-5:]}")
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == kind and predicate(event["data"]):
                return event["data"]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 5.0)


async def test_node_service_registers_and_hears_the_list_and_broadcasts(mesh):
    dist = await mesh.start_distributor()
    node = await NodeProc.start("goods.js", str(dist.port))
    try:
        port = (await node.event("listening"))["port"]
        # the list on connect, to the newcomer (empty: nobody registered yet) ...
        assert (await node.event("noti"))["params"] == []
        # ... then the broadcast of its own registration, with host from the connection
        listing = await node.event("noti", lambda d: names(d["params"]) == ["goods"])
        assert listing["uri"] == "/distributes" and listing["method"] == "GET"
        assert listing["params"] == [{"port": port, "name": "goods",
                                      "urls": ["POST/goods", "GET/goods"], "host": HOST}]
        assert dist.nodes() == listing["params"]

        # a Python node registers: the Node service hears the broadcast
        members = await mesh.start_service("members", {"GET/members": lambda p, pk: []})
        listing = await node.event("noti", lambda d: names(d["params"]) == ["goods", "members"])
        assert listing["params"][1]["port"] == members.port

        # and its departure: a clean stop says goodbye, and the list names it in "left", a
        # key beside params that the book's node never reads
        await members.stop()
        listing = await node.event("noti", lambda d: names(d["params"]) == ["goods"])
        assert listing["left"] == [{"name": "members", "host": HOST, "port": members.port}]

        # the Python node sees the Node one in its own list too, and the Node one goes on
        # hearing the lists
        other = await mesh.start_service("other", {"GET/other": lambda p, pk: []})
        await wait_until(lambda: names(other.nodes) == ["goods", "other"], 3.0, "list in Python")
        await node.event("noti", lambda d: names(d["params"]) == ["goods", "other"])
    finally:
        await node.stop()
    await wait_until(lambda: "goods" not in names(dist.nodes()), 3.0, "the Node service's departure")


async def test_python_gateway_reaches_a_node_service(mesh):
    dist = await mesh.start_distributor()
    node = await NodeProc.start("goods.js", str(dist.port))
    try:
        port = (await node.event("listening"))["port"]
        gw = await mesh.start_gateway(timeout=10.0)
        await gateway_ready(gw, "POST/goods")
        assert gw.routes["POST/goods"] == [(HOST, port)]
        base = f"http://{HOST}:{gw.port}/goods"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.post(base, json={"name": "pen", "price": 3}) as resp:
                assert resp.status == 200
                created = await resp.json()
            assert created["errorcode"] == 0 and created["results"] == {"id": 1}
            # what the Node service got: the key in params.key, as from the book's gateway
            request = await node.event("request")
            assert request["uri"] == "/goods" and request["method"] == "POST"
            assert request["params"]["key"] == created["key"]
            assert request["params"]["name"] == "pen"

            async with http.get(base) as resp:
                listed = await resp.json()
            assert listed["errorcode"] == 0
            assert listed["results"] == [{"id": 1, "name": "pen", "price": 3}]

            # A ¶ from the gateway travels escaped, so the Node receiver parses it ...
            async with http.post(base, json={"name": "a¶b"}) as resp:
                assert (await resp.json())["results"] == {"id": 2}
            posted = await node.event("request", lambda d: d["method"] == "POST")
            assert posted["params"]["name"] == "a¶b"
            # ... but the Node service's JSON.stringify sends it back raw, splitting its
            # own reply (book defect 1): the gateway counts the pieces as bad frames, fails
            # that request with 502 at once (not a 504 after its 10 s timeout), counts it,
            # and the connection goes on serving.
            started = time.monotonic()
            async with http.get(base) as resp:
                assert resp.status == 502
                assert "¶" in (await resp.json())["errormessage"]
            assert time.monotonic() - started < 2.0
            client = next(iter(gw.clients.values()))
            assert client.conn.decoder.errors.get("bad_json", 0) >= 1
            assert gw.stats["bad_replies"] == 1
            assert "logmesh_gateway_bad_replies_total 1" in metrics_text(gw)
            async with http.post(base, json={"name": "cup"}) as resp:
                assert (await resp.json())["results"] == {"id": 3}
    finally:
        await node.stop()


@contextlib.asynccontextmanager
async def node_gate_to_goods(mesh, tmp_path):
    """A Python goods service and the book's Node gateway (gate.js), connected to it."""
    dist = await mesh.start_distributor()
    goods = make_service("goods", tmp_path, port=0, distributor=mesh.distributor_addr)
    await mesh.add(goods)
    await wait_until(lambda: names(dist.nodes()) == ["goods"], 3.0, "goods registration")
    gate = await NodeProc.start("gate.js", str(dist.port))
    try:
        port = (await gate.event("listening"))["port"]
        await gate.event("connected", lambda d: d["port"] == goods.port)
        yield dist, goods, port, gate
    finally:
        await gate.stop()


async def test_node_gateway_reaches_a_python_service(mesh, tmp_path):
    async with node_gate_to_goods(mesh, tmp_path) as (dist, goods, port, _):
        seen: list[dict] = []
        goods.on_request = lambda raw, packet, conn: seen.append(packet)
        assert any(n["name"] == "gate" and n["port"] == port for n in dist.nodes())
        base = f"http://{HOST}:{port}/goods"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.post(base, json={"name": "pen", "price": 2}) as resp:
                assert resp.status == 200
                created = await resp.json()
            assert created["errorcode"] == 0 and created["results"]["id"] == 1
            # the book's gateway put its key in params only; the reply carries it at the top
            assert "key" not in seen[0] and seen[0]["params"]["key"] == 0
            assert created["key"] == 0

            async with http.get(base) as resp:
                listed = await resp.json()
            assert listed["key"] == 1 and listed["errorcode"] == 0
            assert [(r["name"], r["price"]) for r in listed["results"]] == [("pen", 2.0)]

            async with http.get(f"{base}?id=1") as resp:
                [row] = (await resp.json())["results"]
            assert row["name"] == "pen"

            async with http.delete(f"http://{HOST}:{port}/goods?id=1") as resp:
                assert (await resp.json())["results"] == {"deleted": 1}
            async with http.get(f"http://{HOST}:{port}/nothing") as resp:
                assert resp.status == 404  # the book's gateway: bare 404


async def test_half_an_emoji_from_node_reaches_a_python_service(mesh, tmp_path):
    """JSON.stringify writes a lone surrogate as an escape orjson refuses; it arrives as U+FFFD."""
    async with node_gate_to_goods(mesh, tmp_path) as (_, _, port, _):
        body = json.dumps({"name": "cut \ud83d", "price": 1})  # ensure_ascii: "cut \\ud83d"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.post(f"http://{HOST}:{port}/goods", data=body,
                                 headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["errorcode"] == 0
            async with http.get(f"http://{HOST}:{port}/goods") as resp:
                [row] = (await resp.json())["results"]
        assert row["name"] == "cut \ufffd"


async def test_a_keyless_request_from_the_node_gate_is_counted_not_answered(mesh, tmp_path):
    """A JSON array body: the gate's params.key is lost in JSON.stringify, so the packet has no
    key. A reply with key null would kill the gate (book defect 6); the service counts it."""
    async with node_gate_to_goods(mesh, tmp_path) as (_, goods, port, gate):
        base = f"http://{HOST}:{port}/goods"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            with pytest.raises(asyncio.TimeoutError):  # nothing can answer it: the gate waits
                async with http.post(base, json=[{"name": "pen", "price": 1}],
                                     timeout=aiohttp.ClientTimeout(total=1.0)):
                    pass
            await wait_until(lambda: goods.stats["keyless"] == 1, 2.0, "the keyless count")
            assert gate.proc.returncode is None
            async with http.post(base, json={"name": "cup", "price": 2}) as resp:
                reply = await resp.json()
            assert reply["errorcode"] == 0 and reply["results"] == {"id": 1}  # nothing stored
        assert gate.proc.returncode is None
        assert 'logmesh_service_keyless_requests_total{service="goods"} 1' in metrics_text(goods)


async def test_a_raw_pilcrow_from_the_node_gate_is_answered_400_at_once(mesh, tmp_path):
    """JSON.stringify leaves ¶ raw: the gate's request reaches the service in two pieces. The
    service answers the request's key with 400 when the last piece arrives, and counts it."""
    async with node_gate_to_goods(mesh, tmp_path) as (_, goods, port, gate):
        base = f"http://{HOST}:{port}/goods"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            started = time.monotonic()
            async with http.post(base, json={"name": "a¶b", "price": 1}) as resp:
                reply = await resp.json()
            assert time.monotonic() - started < 2.0
            assert reply["key"] == 0 and reply["errorcode"] == 400
            assert "¶" in reply["errormessage"] and "\\u00b6" in reply["errormessage"]
            # a body holding two of them, with the key in the middle (the body's own "key")
            async with http.post(base, json={"name": "¶", "key": 5, "note": "x¶y"}) as resp:
                reply = await resp.json()
            assert reply["key"] == 1 and reply["errorcode"] == 400
            async with http.post(base, json={"name": "cup", "price": 2}) as resp:
                reply = await resp.json()
            assert reply["key"] == 2 and reply["results"] == {"id": 1}
        assert gate.proc.returncode is None
        assert goods.stats["framing_errors"] == 2
        assert 'logmesh_service_framing_errors_total{service="goods"} 2' in metrics_text(goods)
