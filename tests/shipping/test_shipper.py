"""The shipper's own bookkeeping, and every batch it sends answered (issue 14, defects 4 and 5).

Against a real in-process logs service over TCP: batches are capped in bytes
below the service's packet limit, a 413 splits a batch, events the service
rejects (or that could never be sent) are counted as ``rejected`` and logged,
and a batch nobody answers is resent over a new connection after
``ack_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from logmesh.metrics import Exposition
from logmesh.protocol import FrameSplitter, encode
from logmesh.shipping.shipper import FLUSH_EVENTS, Shipper
from logmesh.shipping.spool import Spool
from tests.support.logs import logs_starter, stored
from tests.support.waiting import wait_until

DEEP = "[" * 1000 + "]" * 1000  # msgspec raises RecursionError at ~1000 levels


async def test_close_spools_what_is_still_queued_with_its_event_id(tmp_path: Path) -> None:
    shipper = Shipper("svc", spool=Spool(tmp_path / "spool"))  # no logs service known
    shipper.start()
    shipper.ship(b'{"uri":"/a","method":"GET"}')
    shipper.ship_record("hello", {"log.level": "info"})
    await shipper.close()  # before the linger ran: close itself must spool them
    records, _ = Spool(tmp_path / "spool").take(10)
    assert [(r[0], r[1]) for r in records] == [(shipper.instance, 1), (shipper.instance, 2)]
    assert records[0][3] == '{"uri":"/a","method":"GET"}' and records[0][4] is None
    assert records[1][3] == "hello" and records[1][4] == {"log.level": "info"}


def request(i: int, size: int = 0) -> bytes:
    return orjson.dumps({"uri": "/goods", "method": "GET", "params": {"key": i, "pad": "p" * size}})


async def shipping(shipper: Shipper, port: int) -> Shipper:
    shipper._fixed_addr = ("127.0.0.1", port)
    shipper.start()
    await wait_until(lambda: shipper.client is not None and shipper.client.is_connected,
                     what="the shipper connected")
    return shipper


def settled(shipper: Shipper, total: int) -> bool:
    """Every event answered: acknowledged or rejected, none queued or in flight."""
    s = shipper.stats
    return not shipper.queue and not shipper.inflight and s["acked"] + s["rejected"] == total


def exposed(shipper: Shipper) -> str:
    ex = Exposition()
    shipper.collect_metrics(ex)
    return ex.render()


async def test_a_burst_of_big_events_goes_in_batches_under_the_packet_limit(tmp_path: Path) -> None:
    """6,000 events of ~720 bytes: 2,000 of them would be a 1.4 MB batch, never answered."""
    async with logs_starter(tmp_path) as start:
        srv = await start()  # --max-packet-size: 1 MiB
        shipper = await shipping(Shipper("goods"), srv.config.port)
        for i in range(6000):
            shipper.ship(request(i, 640))
        await wait_until(lambda: settled(shipper, 6000), 15, "every event acked")
        assert shipper.stats["acked"] == 6000 and shipper.stats["rejected"] == 0
        assert len(stored(srv.config.data_dir)) == 6000
        assert srv.ingest.stats["bad_frames"] == {}
        await shipper.close()


async def test_a_batch_keeps_every_text_as_shipped_pilcrows_and_bad_bytes_included(
        tmp_path: Path) -> None:
    """The batch is encoded from the queued events as they are (a packet's bytes turned into
    text by the encoder): a ``¶`` travels escaped, ``ö`` (whose UTF-8 ends in the ``¶``'s second
    byte) unescaped, a packet's bad bytes as U+FFFD, each event whole and in order."""
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods"), srv.config.port)
        shipper.ship(b'{"uri":"/goods","method":"GET","params":{"name":"\xc2\xb6 pen"}}')
        shipper.ship_record("r\u00f6d \u00b6 GET", {"log.level": "info", "url.path": "/\u00b6"})
        shipper.ship(b'{"uri":"/goods","method":"GET","params":{"name":"caf\xe9"}}')
        shipper.ship(b'{"uri":"/goods","method":"GET","params":{"name":"\xc3\xb6l"}}')
        await wait_until(lambda: settled(shipper, 4), 10, "every event acked")
        assert shipper.stats["acked"] == 4 and shipper.stats["rejected"] == 0
        lines = stored(srv.config.data_dir)
        assert [e["event.id"].rpartition(":")[2] for e in lines] == ["1", "2", "3", "4"]
        assert orjson.loads(lines[0]["message"])["params"]["name"] == "\u00b6 pen"
        assert lines[1]["message"] == "r\u00f6d \u00b6 GET" and lines[1]["url.path"] == "/\u00b6"
        assert lines[2]["message"] == '{"uri":"/goods","method":"GET","params":{"name":"caf\ufffd"}}'
        assert orjson.loads(lines[3]["message"])["params"]["name"] == "\u00f6l"
        await shipper.close()


async def test_a_shipper_with_no_linger_sends_at_once(tmp_path: Path) -> None:
    """The linger ends on a tick of the wall clock (a multiple of it): with none, no tick to
    wait for (and no division by zero in the sending task)."""
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods", linger=0), srv.config.port)
        for i in range(3):
            shipper.ship(request(i))
            await wait_until(lambda i=i: settled(shipper, i + 1), 10, "the event acked")
        assert shipper.stats["acked"] == 3 and shipper._task is not None and not shipper._task.done()
        assert len(stored(srv.config.data_dir)) == 3
        await shipper.close()


async def test_each_linger_is_woken_by_the_first_event_after_the_last_send(tmp_path: Path) -> None:
    """ship skips the wake-up while one is pending (Shipper._woken): the sending task must
    still be woken for every later linger, including the events that come during one."""
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods", linger=0.02), srv.config.port)
        total = 0
        for burst in (1, 5, 2):
            for _ in range(burst):
                total += 1
                shipper.ship(request(total))
                await asyncio.sleep(0.007)  # some land in the linger that the first one began
            await wait_until(lambda total=total: settled(shipper, total), 10, "the burst acked")
        assert shipper.stats["acked"] == total == 8
        assert len(stored(srv.config.data_dir)) == 8
        await shipper.close()


async def test_a_linger_ends_once_flush_events_wait(tmp_path: Path) -> None:
    """A busy shipper does not hold a whole linger's events: the logs service handles a batch
    in one run of its loop, and on a small machine the request path waits behind that run
    (#22: p99 4.2 ms at ~850 events a batch). Once FLUSH_EVENTS wait, they go at once; fewer
    still wait for the tick (here days away, so only the early end can send them)."""
    linger = 1e6
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods", linger=linger), srv.config.port)
        for i in range(FLUSH_EVENTS - 1):
            shipper.ship(request(i))
        await asyncio.sleep(0.3)
        assert shipper.stats["sent"] == 0  # fewer than FLUSH_EVENTS: the linger holds them
        shipper.ship(request(FLUSH_EVENTS - 1))
        await wait_until(lambda: settled(shipper, FLUSH_EVENTS), 30, "the full batch acked")
        shipper.ship_record("after", {"log.level": "info"})  # the next linger begins
        for i in range(FLUSH_EVENTS - 1):
            shipper.ship_record(f"r{i}", {"log.level": "info"})
        await wait_until(lambda: settled(shipper, 2 * FLUSH_EVENTS), 30, "the second batch acked")
        assert len(stored(srv.config.data_dir)) == 2 * FLUSH_EVENTS
        await shipper.close()


async def test_an_event_over_the_batch_limit_alone_is_rejected_here(tmp_path: Path, caplog) -> None:
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods", batch_bytes=4096), srv.config.port)
        shipper.ship(request(1))
        shipper.ship(request(2, 10_000))  # alone over 4 KiB: never sent
        shipper.ship_record("too big for JSON", {"n": 2**70})  # orjson: over 64 bits
        shipper.ship(request(4))
        await wait_until(lambda: settled(shipper, 4), 5, "every event answered")
        assert shipper.stats["acked"] == 2 and shipper.stats["rejected"] == 2
        assert [e["event.id"].rpartition(":")[2] for e in stored(srv.config.data_dir)] == ["1", "4"]
        assert 'logmesh_shipper_rejected_events_total{service="goods"} 2' in exposed(shipper)
        assert "over the batch limit of 4096" in caplog.text
        assert "cannot be encoded" in caplog.text
        await shipper.close()


async def test_a_batch_the_service_finds_too_large_is_split_in_halves(tmp_path: Path) -> None:
    async with logs_starter(tmp_path) as start:
        srv = await start(max_frame_bytes=8192)  # lower than the shipper's batch_bytes
        shipper = Shipper("goods", batch_bytes=64 * 1024, spool=Spool(tmp_path / "spool"))
        for i in range(40):  # spooled first (no logs service yet): the spool's batches split too
            shipper.ship(request(i, 900))
        shipper._spill()
        await shipping(shipper, srv.config.port)
        for i in range(40, 80):
            shipper.ship(request(i, 900))
        shipper.ship(request(80, 10_000))  # fits the shipper's limit, not the service's
        await wait_until(lambda: settled(shipper, 81) and not shipper.spool.has_pending, 10,
                         "every event answered")
        assert shipper.stats["acked"] == 80 and shipper.stats["rejected"] == 1
        assert len(stored(srv.config.data_dir)) == 80
        assert shipper.spool.head == shipper.spool.read_pos, "the spool committed what was acked"
        await shipper.close()


async def test_events_the_service_rejects_are_counted_and_logged(tmp_path: Path, caplog) -> None:
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods"), srv.config.port)
        shipper.ship(request(1))
        shipper.ship_record('{"uri":"/deep","params":' + DEEP + "}", {})
        shipper.ship(request(3))
        await wait_until(lambda: settled(shipper, 3), 5, "every event answered")
        assert shipper.stats["acked"] == 2 and shipper.stats["rejected"] == 1
        assert "too_deep" in caplog.text
        await shipper.close()


async def test_an_unanswered_batch_is_resent_on_a_new_connection(tmp_path: Path) -> None:
    """A service that swallows a batch (here: its first connection answers only the probe)."""
    connections: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        splitter = FrameSplitter()
        while data := await reader.read(65536):
            for frame in splitter.feed(data):
                packet = orjson.loads(frame)
                if len(connections) > 1 or not packet["params"]["events"]:
                    writer.write(encode({"key": packet["key"], "errorcode": 0,
                                         "acked": len(packet["params"]["events"])}))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    shipper = await shipping(Shipper("goods", ack_timeout=0.3), port)
    t0 = time.monotonic()
    for i in range(10):
        shipper.ship(request(i))
    await wait_until(lambda: settled(shipper, 10), 5, "the resend acked")
    assert 0.3 <= time.monotonic() - t0 < 3
    assert len(connections) == 2 and shipper.stats["resent"] == 10
    await shipper.close()
    server.close()


async def test_log_handler_flush_is_not_held_by_one_bad_record(tmp_path: Path) -> None:
    from logmesh import LogHandler

    async with logs_starter(tmp_path) as start:
        srv = await start()
        handler = LogHandler("billing", "127.0.0.1", srv.config.port)
        logger = logging.getLogger("test.flush")
        logger.propagate = False
        logger.addHandler(handler)
        try:
            logger.warning("before")
            logger.warning('{"params":%s}', DEEP)  # the service cannot decode it: rejected
            logger.warning("huge number", extra={"n": 2**70})  # cannot be encoded: rejected here
            logger.warning("after")
            t0 = time.monotonic()
            await asyncio.to_thread(handler.flush, 5)
            assert time.monotonic() - t0 < 3
            assert handler.shipper.stats["acked"] == 2 and handler.shipper.stats["rejected"] == 2
            assert [e["message"] for e in stored(srv.config.data_dir)] == ["before", "after"]
        finally:
            logger.removeHandler(handler)
            await asyncio.to_thread(handler.close)



class SilentNode:
    """A logs node that answers nothing, as the book's Node logs service: what it was sent."""

    def __init__(self) -> None:
        self.packets: list[list[dict]] = []  # per connection
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got: list[dict] = []
        self.packets.append(got)
        splitter = FrameSplitter()
        while data := await reader.read(65536):
            got.extend(orjson.loads(frame) for frame in splitter.feed(data))

    def book_params(self) -> list[str]:
        return [p["params"] for conn in self.packets for p in conn if p.get("key") == 0]

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


def book_packet(raw: bytes | str) -> dict:
    return {"uri": "/logs", "method": "POST", "key": 0,
            "params": raw.decode() if isinstance(raw, bytes) else raw}


async def test_a_logs_node_that_never_answers_gets_the_books_packets(caplog) -> None:
    """The book's Node logs service answers nothing: after the probe's time the connection
    speaks the chapter's packets, exactly, fire and forget, said once in the log."""
    node = SilentNode()
    port = await node.start()
    shipper = await shipping(Shipper("goods", probe_timeout=0.3, ack_timeout=0.5), port)
    assert 'logmesh_shipper_mode{mode="unknown",service="goods"} 1' in exposed(shipper)
    shipper.ship(request(1))
    shipper.ship_record("a log record", {"log.level": "info"})
    await wait_until(lambda: len(node.book_params()) == 2, 3, "the book's packets")
    shipper.ship(request(3))
    await wait_until(lambda: len(node.book_params()) == 3, 3, "one more")
    await asyncio.sleep(0.7)  # past ack_timeout: no batch is waiting for an answer
    [packets] = node.packets  # one connection, never dropped
    probe, *rest = packets
    assert probe["ack"] is True and probe["params"]["events"] == [], "the probe: an empty batch"
    assert rest == [book_packet(request(1)), book_packet("a log record"), book_packet(request(3))]
    assert shipper.stats["sent"] == 3 and not shipper.inflight and not shipper.queue
    said = [r.getMessage() for r in caplog.records if "does not acknowledge" in r.getMessage()]
    assert said == [f"goods: logs node at 127.0.0.1:{port} does not acknowledge (the book's logs "
                    "service?); shipping book packets, fire and forget"]
    text = exposed(shipper)
    assert 'logmesh_shipper_mode{mode="book",service="goods"} 1' in text
    assert 'logmesh_shipper_mode{mode="ack",service="goods"} 0' in text
    await shipper.close()
    node.close()


async def test_spooled_events_go_to_a_silent_node_as_book_packets(tmp_path: Path) -> None:
    node = SilentNode()
    port = await node.start()
    shipper = Shipper("goods", spool=Spool(tmp_path / "spool"), probe_timeout=0.2)
    for i in range(3):  # no logs node yet: spooled
        shipper.ship(request(i))
    shipper._spill()
    await shipping(shipper, port)
    shipper.ship(request(3))
    await wait_until(lambda: len(node.book_params()) == 4, 3, "spooled and new events")
    assert node.book_params() == [request(i).decode() for i in range(4)]
    assert not shipper.spool.has_pending and shipper.spool.head == shipper.spool.read_pos
    await shipper.close()
    node.close()


async def test_a_logmesh_logs_service_answers_the_probe_and_gets_acked_batches(tmp_path: Path) -> None:
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = await shipping(Shipper("goods", probe_timeout=5.0), srv.config.port)
        t0 = time.monotonic()
        await wait_until(lambda: shipper.speaks == "ack", 3, "the probe answered")
        assert time.monotonic() - t0 < 1.0, "an answer, not the probe's timeout"
        for i in range(5):
            shipper.ship(request(i))
        await wait_until(lambda: settled(shipper, 5), 5, "every event acked")
        assert len(stored(srv.config.data_dir)) == 5, "the probe itself stores nothing"
        assert 'logmesh_shipper_mode{mode="ack",service="goods"} 1' in exposed(shipper)
        await shipper.close()


async def slow_prober(late: Callable[[int], bool]) -> tuple[asyncio.Server, list[tuple[int, dict]], list]:
    """A logs node that acks every batch and answers a probe 0.5 s late on the connections
    ``late(n)`` picks (n from 1): what it got, as (connection, packet), and its connections."""
    got: list[tuple[int, dict]] = []
    conns: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)
        n = len(conns)
        splitter = FrameSplitter()
        while data := await reader.read(65536):
            for frame in splitter.feed(data):
                packet = orjson.loads(frame)
                got.append((n, packet))
                if packet.get("ack"):
                    if late(n) and not packet["params"]["events"]:
                        await asyncio.sleep(0.5)  # busy: the probe answered past its time
                    writer.write(encode({"key": packet["key"], "errorcode": 0,
                                         "acked": len(packet["params"]["events"])}))

    return await asyncio.start_server(serve, "127.0.0.1", 0), got, conns


async def test_a_late_answer_to_the_probe_turns_acked_batches_back_on() -> None:
    """A logs service too busy to answer within the probe's time is no book service."""
    server, got, _ = await slow_prober(lambda n: True)
    shipper = await shipping(Shipper("goods", probe_timeout=0.1),
                             server.sockets[0].getsockname()[1])
    await wait_until(lambda: shipper.speaks == "book", 2, "book packets after the probe's time")
    shipper.ship(request(1))
    await wait_until(lambda: shipper.speaks == "ack", 2, "the late answer")
    shipper.ship(request(2))
    await wait_until(lambda: shipper.stats["acked"] == 1, 2, "an acked batch")
    assert [p["key"] == 0 for _, p in got[1:]] == [True, False]  # request 1 as a book packet
    await shipper.close()
    server.close()


async def test_a_node_that_answered_once_is_waited_for_not_sent_book_packets() -> None:
    """A logs node that acknowledged on an earlier connection is a logmesh logs service: a new
    connection whose probe it answers late (busy, its first read waiting on the loss ledger's
    look) must not get fire-and-forget packets, which a crash of the node then loses."""
    server, got, conns = await slow_prober(lambda n: n > 1)
    shipper = await shipping(Shipper("goods", probe_timeout=0.1),
                             server.sockets[0].getsockname()[1])
    await wait_until(lambda: shipper.speaks == "ack", 2, "the first connection's answer")
    conns[0].close()  # the node restarts
    await wait_until(lambda: len(conns) == 2, 5, "a new connection")
    shipper.ship(request(1))
    await asyncio.sleep(0.3)  # past the probe's time, before its answer
    assert shipper.speaks != "book"
    await wait_until(lambda: shipper.stats["acked"] == 1, 3, "request 1 acked")
    assert [p["key"] for n, p in got if n == 2 and p.get("key") == 0] == [], "no book packet"
    await shipper.close()
    server.close()


async def test_ack_mode_never_falls_back() -> None:
    node = SilentNode()
    port = await node.start()
    shipper = await shipping(Shipper("goods", mode="ack", probe_timeout=0.1), port)
    shipper.ship(request(1))
    await asyncio.sleep(0.4)
    assert [p.get("ack") for p in node.packets[0]] == [True] and shipper.inflight
    await shipper.close()
    node.close()


async def test_book_packets_wait_for_a_node_that_does_not_read(tmp_path: Path) -> None:
    """Nothing is answered, so the socket's buffer is the only backpressure: past it, events
    wait in the queue, then in the spool, instead of piling up in memory unbounded."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never reads

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    shipper = await shipping(Shipper("goods", mode="book", spool=Spool(tmp_path / "spool"),
                                     max_queue=2000), server.sockets[0].getsockname()[1])
    for _ in range(20):
        for i in range(2000):
            shipper.ship(request(i, 1000))
        await asyncio.sleep(0.02)
    await wait_until(lambda: not shipper.queue or shipper.stats["spooled"], 5, "backpressure")
    transport = shipper.client.conn.transport
    assert transport.get_write_buffer_size() < 8 * 1024 * 1024
    assert shipper.stats["spooled"] > 0 and shipper.stats["dropped"] == 0
    await shipper.close(timeout=0.1)
    server.close()
