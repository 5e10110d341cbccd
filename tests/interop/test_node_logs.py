"""logmesh and the chapter's Node.js logs service, both ways (issue 15 items 1, 2 and 5).

``node/logs.js`` is the chapter's logs service on the book's tcpServer: it
registers with the distributor as ``logs``, answers nothing, and appends
``<date>\\t<address>\\t<port>\\t<JSON of the packet>`` to its log.txt for every
packet.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import orjson
import pytest

from logmesh.examples.resource import make_service
from logmesh.mesh.gateway import Gateway
from logmesh.shipping.shipper import Shipper
from logmesh.shipping.spool import Spool
from tests.interop.test_node_interop import NodeProc, metrics_text
from tests.support.logs import logs_starter, stored
from tests.support.mesh import HOST, gateway_ready, names, wait_until

DELIM = "¶".encode()


def node_log(path: Path) -> list[tuple[str, int, dict]]:
    """(address, port, packet) of every complete line of the Node service's log.txt."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text("utf-8").split("\n")[:-1]:
        _, address, port, packet = line.split("\t", 3)
        out.append((address, int(port), orjson.loads(packet)))
    return out


async def start_node_logs(mesh, log_txt: Path) -> NodeProc:
    dist = mesh.distributor
    node = await NodeProc.start("logs.js", str(dist.port), str(log_txt))
    port = (await node.event("listening"))["port"]
    await wait_until(lambda: any(n["name"] == "logs" and n["port"] == port for n in dist.nodes()),
                     5.0, "the Node logs service registered")
    node.port = port
    return node


async def test_a_logmesh_service_and_gateway_ship_to_the_node_logs_service(mesh, tmp_path):
    """Default options: each shipper probes, hears nothing, says so once and sends the book's
    packets; every request reaches the Node service's log.txt, and the Node service lives."""
    await mesh.start_distributor()
    log_txt = tmp_path / "log.txt"
    node = await start_node_logs(mesh, log_txt)
    try:
        goods = make_service("goods", tmp_path, port=0, distributor=mesh.distributor_addr)
        Shipper("goods", spool=Spool(tmp_path / "spool")).attach(goods)  # as `logmesh service`
        await mesh.add(goods)
        gw = Gateway(HOST, 0, distributor=mesh.distributor_addr, timeout=5.0)
        gw.attach_shipper(Shipper("gateway"))  # as `logmesh gateway`
        await gw.start()
        mesh.stoppers.append(gw.stop)
        await gateway_ready(gw, "POST/goods")

        base = f"http://{HOST}:{gw.port}/goods"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.post(base, json={"name": "pen", "price": 1}) as resp:
                assert (await resp.json())["errorcode"] == 0
            async with http.get(base) as resp:
                assert (await resp.json())["errorcode"] == 0

        def book_lines() -> list[tuple[int, dict]]:
            return [(port, p) for _, port, p in node_log(log_txt) if p.get("key") == 0]

        await wait_until(lambda: len(book_lines()) == 4, 5.0, "4 book packets in log.txt")
        lines = node_log(log_txt)
        probes = [p for _, _, p in lines if p.get("ack")]
        assert sorted(p["params"]["service"] for p in probes) == ["gateway", "goods"]
        assert all(p["params"]["events"] == [] for p in probes), "a probe carries no event"
        assert len(lines) == 6, "two probes, four log packets: nothing else, nothing twice"
        for _, packet in book_lines():  # the chapter's packet, exactly
            assert list(packet) == ["uri", "method", "key", "params"]
            assert packet["uri"] == "/logs" and packet["method"] == "POST"
        logged = [p["params"] for _, p in book_lines()]
        requests = [orjson.loads(t) for t in logged if t.startswith("{")]
        assert [(r["method"], r["uri"]) for r in requests] == [("POST", "/goods"), ("GET", "/goods")]
        assert requests[0]["params"]["name"] == "pen"
        access = sorted(t.rsplit(" ", 1)[0] for t in logged if not t.startswith("{"))
        assert access == ["GET /goods 200", "POST /goods 200"]
        assert node.proc.returncode is None, "the Node logs service is alive"
        for shipper in (goods.shipper, gw.shipper):
            assert shipper.stats["sent"] == 2 and not shipper.queue and not shipper.inflight
        assert not goods.shipper.spool.has_pending
        assert 'logmesh_shipper_mode{mode="book",service="goods"} 1' in metrics_text(goods)
        assert 'logmesh_shipper_mode{mode="book",service="gateway"} 1' in metrics_text(gw)
    finally:
        await node.stop()


async def test_the_node_gate_posting_to_logs_is_stored(mesh, tmp_path):
    """The book's gate forwards an HTTP POST /logs as a packet whose params is the body (an
    object, with the gate's key): the book's service stores it, and so does logmesh."""
    dist = await mesh.start_distributor()
    async with logs_starter(tmp_path, distributor=mesh.distributor_addr) as start:
        srv = await start()
        await wait_until(lambda: "logs" in names(dist.nodes()), 5.0, "logs registered")
        gate = await NodeProc.start("gate.js", str(dist.port))
        try:
            port = (await gate.event("listening"))["port"]
            await gate.event("connected", lambda d: d["port"] == srv.config.port)
            async with aiohttp.ClientSession() as http:
                with pytest.raises(asyncio.TimeoutError):  # a log is never answered: the gate waits
                    async with http.post(f"http://{HOST}:{port}/logs", json={"msg": "from the gate"},
                                         timeout=aiohttp.ClientTimeout(total=1.0)):
                        pass
            await wait_until(lambda: stored(srv.config.data_dir), 5.0, "the packet stored")
            [event] = stored(srv.config.data_dir)
            assert orjson.loads(event["message"]) == {"uri": "/logs", "method": "POST",
                                                      "params": {"msg": "from the gate", "key": 0}}
            assert event["url.path"] == "/logs" and event["params"]["msg"] == "from the gate"
            assert srv.ingest.stats["bad_frames"] == {}
            assert gate.proc.returncode is None
        finally:
            await gate.stop()


async def test_bad_utf8_is_kept_as_the_node_logs_service_keeps_it(mesh, tmp_path):
    """The same bytes to both: logmesh stores the text Node's Buffer.toString makes of them."""
    await mesh.start_distributor()
    log_txt = tmp_path / "log.txt"
    node = await start_node_logs(mesh, log_txt)
    frames = [b'{"uri":"/logs","method":"POST","key":0,"params":"caf\xe9 \xed\xa0\x80 \xf0\x9f\x98!"}',
              b'{"uri":"/logs","method":"POST","key":0,"params":"\xc3(\xff\xfe ok"}']
    data = b"".join(f + DELIM for f in frames)
    try:
        async with logs_starter(tmp_path) as start:
            srv = await start()
            for port in (node.port, srv.config.port):
                with socket.create_connection((HOST, port), timeout=5) as sock:
                    sock.sendall(data)
                    await asyncio.sleep(0.2)  # the book's services lose what the close cuts off
            await wait_until(lambda: len(node_log(log_txt)) == 2, 5.0, "Node's two lines")
            await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, 5.0, "logmesh's two")
            node_texts = [p["params"] for _, _, p in node_log(log_txt)]
            assert all("\ufffd" in t for t in node_texts)
            events = stored(srv.config.data_dir)
            assert [e["message"] for e in events] == node_texts
            assert [e["labels"] for e in events] == [{"logmesh.replaced": "bad_utf8"}] * 2
    finally:
        await node.stop()
