"""The shipper's heartbeat and node address (issue 17 item 2): every batch names the node the
shipper serves, and a shipper with nothing to send says it is alive with an empty acked batch,
so the logs service tells a quiet service from a frozen or dead one. Never to the book's logs
service, which would store each one."""

from __future__ import annotations

import asyncio
import time

import orjson

from logmesh.mesh.service import Service
from logmesh.protocol import FrameSplitter, encode
from logmesh.shipping.shipper import HEARTBEAT_SECONDS, Shipper
from tests.shipping.test_shipper import SilentNode, request, shipping
from tests.support.waiting import wait_until


class AnsweringNode:
    """A logs node that acknowledges every acked batch at once; what it was sent, with when."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, dict]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = FrameSplitter()
        while data := await reader.read(65536):
            for frame in splitter.feed(data):
                packet = orjson.loads(frame)
                self.packets.append((time.monotonic(), packet))
                if packet.get("ack"):
                    events = packet["params"]["events"]
                    writer.write(encode({"key": packet["key"], "errorcode": 0, "acked": len(events)}))

    def empty(self) -> list[tuple[float, dict]]:
        return [(t, p) for t, p in self.packets if p.get("ack") and not p["params"]["events"]]

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_an_idle_shipper_beats_and_every_batch_names_its_node() -> None:
    node = AnsweringNode()
    port = await node.start()
    svc = Service("goods", 0, {}, distributor=None)
    shipper = Shipper("goods", logs_addr=("127.0.0.1", port), heartbeat=0.3)
    shipper.attach(svc)
    await svc.start()  # starts the shipper: the node is the service's address once it listens
    try:
        await wait_until(lambda: shipper.speaks == "ack", 3, "the probe answered")
        await wait_until(lambda: len(node.empty()) >= 4, 3, "the probe and three heartbeats")
        beats = [t for t, _ in node.empty()]
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert all(0.25 <= g < 0.6 for g in gaps), gaps
        for _, packet in node.packets:
            assert packet["params"]["node"] == ["127.0.0.1", svc.port]
            assert packet["params"]["heartbeat"] == 0.3
            assert packet["params"]["service"] == "goods" and packet["params"]["instance"] == shipper.instance
        assert shipper.heartbeats >= 3
        # busy: events go out at least every heartbeat, and no heartbeat comes between them
        before = len(node.empty())
        for i in range(10):
            shipper.ship(request(i))
            await asyncio.sleep(0.1)
        assert len(node.empty()) == before
        shipped = [p for _, p in node.packets if p.get("ack") and p["params"]["events"]]
        assert sum(len(p["params"]["events"]) for p in shipped) == 10
    finally:
        await svc.stop()
        node.close()


async def test_no_heartbeat_to_the_books_logs_service() -> None:
    node = SilentNode()
    port = await node.start()
    shipper = await shipping(Shipper("goods", probe_timeout=0.1, heartbeat=0.2), port)
    await wait_until(lambda: shipper.speaks == "book", 2, "book packets after the probe's time")
    await asyncio.sleep(0.8)
    [packets] = node.packets
    assert len(packets) == 1 and packets[0]["params"]["events"] == [], "the probe alone"
    assert "node" not in packets[0]["params"], "a shipper serving no node names none"
    assert shipper.heartbeats == 0
    await shipper.close()
    node.close()


def test_the_default_heartbeat_is_well_inside_the_logs_services_silence() -> None:
    from logmesh.logs.health import SILENT_AFTER_MS

    assert HEARTBEAT_SECONDS * 1000 * 2 < SILENT_AFTER_MS
