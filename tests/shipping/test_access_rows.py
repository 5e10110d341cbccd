"""The gateway's access log shipped as a row (logmesh/access_log.py): only to a logs node that
says it reads rows; to any other node, to the spool, as a book packet, it is the record it stands
for, and what a logmesh logs service stores of a row is that record's line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson

from logmesh import access_log
from logmesh.protocol import FrameSplitter, encode
from logmesh.shipping.shipper import Shipper
from logmesh.shipping.spool import Spool
from tests.shipping.test_shipper import SilentNode, book_packet, settled, shipping
from tests.support.logs import logs_starter, stored
from tests.support.waiting import wait_until

ROWS = [("GET", "/goods", 200, f"{i:032x}", "info", 1_234 + i * 1_001, 0, "goods",
         "127.0.0.1:9010") for i in range(5)]


def records(rows: list[tuple]) -> list[list]:
    """The events' raw and extra as a node that reads no rows must get them."""
    return [list(access_log.record(row)) for row in rows]


class AckingNode:
    """A logs node that acks every batch at once; ``features(n)``: what its acks say on its
    n-th connection (None: nothing, as an older logmesh); ``drop(n)``: close that connection
    on its first batch of events instead of acking it. Keeps (connection, packet)."""

    def __init__(self, features: Callable[[int], list | None],
                 drop: Callable[[int], bool] = lambda n: False) -> None:
        self.features, self.drop = features, drop
        self.got: list[tuple[int, dict]] = []
        self.conns = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns += 1
        n = self.conns
        splitter = FrameSplitter()
        while data := await reader.read(65536):
            for frame in splitter.feed(data):
                packet = orjson.loads(frame)
                self.got.append((n, packet))
                events = packet["params"]["events"]
                if events and self.drop(n):
                    writer.close()
                    return
                reply = {"key": packet["key"], "errorcode": 0, "acked": len(events)}
                if self.features(n) is not None:
                    reply["features"] = self.features(n)
                writer.write(encode(reply))

    def events(self, conn: int | None = None) -> list[list]:
        return [e for n, p in self.got if conn in (None, n) for e in p["params"]["events"]]

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_node_that_does_not_say_it_reads_rows_gets_records() -> None:
    """An older logmesh logs service would refuse a row as a bad event, and the shipper never
    resends what was refused: it must only ever get records."""
    for features in (None, [], ["something_else"], "access_rows"):
        node = AckingNode(lambda n, f=features: f)
        shipper = await shipping(Shipper("gateway", linger=0), await node.start())
        for i, row in enumerate(ROWS):
            shipper.ship_row(row)
            await wait_until(lambda i=i, s=shipper: settled(s, i + 1), 3, "acked")
        assert [e[2:] for e in node.events()] == records(ROWS), features
        await shipper.close()
        node.close()


async def test_a_node_that_says_it_reads_rows_gets_rows_after_its_first_answer() -> None:
    node = AckingNode(lambda n: [access_log.FEATURE])
    shipper = await shipping(Shipper("gateway", linger=0), await node.start())
    await wait_until(lambda: shipper.speaks == "ack", 3, "the probe answered")
    for i, row in enumerate(ROWS):
        shipper.ship_row(row)
        await wait_until(lambda i=i: settled(shipper, i + 1), 3, "acked")
    assert [e[2] for e in node.events()] == [list(row) for row in ROWS]
    await shipper.close()
    node.close()


async def test_rows_in_flight_are_resent_as_records_to_a_node_that_reads_none() -> None:
    """The connection moves (a restart, a failover) to an older node: a row sent to the new one
    and not acked goes again, as its record."""
    node = AckingNode(lambda n: [access_log.FEATURE] if n == 1 else None, drop=lambda n: n == 1)
    shipper = await shipping(Shipper("gateway", linger=0, ack_timeout=1.0), await node.start())
    await wait_until(lambda: shipper.speaks == "ack", 3, "the probe answered")
    shipper.ship_row(ROWS[0])
    await wait_until(lambda: settled(shipper, 1), 5, "acked on the second connection")
    assert [e[2] for e in node.events(1)] == [list(ROWS[0])]
    assert [e[2:] for e in node.events(2)] == records(ROWS[:1])
    await shipper.close()
    node.close()


async def test_rows_are_spooled_and_sent_as_book_packets_as_their_records(tmp_path: Path) -> None:
    shipper = Shipper("gateway", spool=Spool(tmp_path / "spool"))  # no logs node known yet
    shipper.start()
    shipper.ship_row(ROWS[0])
    await shipper.close()
    [spooled], _ = Spool(tmp_path / "spool").take(10)
    assert spooled[1:2] + spooled[3:] == [1, *records(ROWS[:1])[0]]

    node = SilentNode()  # the book's logs service: the message alone
    shipper = await shipping(Shipper("gateway", probe_timeout=0.2), await node.start())
    shipper.ship_row(ROWS[1])
    await wait_until(lambda: node.book_params(), 3, "a book packet")
    assert node.packets[0][1:] == [book_packet("GET /goods 200 2.235ms")]
    await shipper.close()
    node.close()


async def test_a_logmesh_logs_service_stores_a_row_as_its_record(tmp_path: Path) -> None:
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("gateway", linger=0), srv.config.port)
        await wait_until(lambda: shipper.speaks == "ack", 3, "the probe answered")
        assert shipper._rows, "a logmesh logs service says it reads rows"
        for row in ROWS:
            shipper.ship_row(row)
        await wait_until(lambda: settled(shipper, len(ROWS)), 5, "every row acked")
        lines = sorted(stored(srv.config.data_dir), key=lambda e: e["event.id"])
        for line, (message, extra) in zip(lines, records(ROWS), strict=True):
            assert line["message"] == message
            assert {k: line.get(k, line.get("labels", {}).get(k)) for k in extra} == extra
        await shipper.close()
