"""Per-listener limits (issue #9): connections, the budget for unfinished packets,
unsent bytes per peer, and the header/idle timeouts that end slowloris."""

from __future__ import annotations

import asyncio
import socket

import orjson

from logmesh.security import Limits, ServerSecurity
from tests.support.logs import RawClient, book_frame, request_text, stored, wait_until
from tests.support.mesh import Peer

KiB = 1024


async def test_ingest_closes_connections_past_the_limit(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=3)))
    held = [await RawClient.connect(srv.config.port) for _ in range(3)]
    for i, c in enumerate(held):  # identified: a full port of these refuses a newcomer
        await c.send(book_frame(request_text(i, "held")))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 events")
    extra = await RawClient.connect(srv.config.port)
    await extra.read_for(1.0)
    assert extra.eof and srv.guard.stats["refused_connections"] == 1
    await held[0].send(book_frame("still served"))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 4, what="the event")
    for c in held:
        await c.close()


async def test_the_oldest_unfinished_packet_is_cut_when_the_budget_is_spent(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_buffered=256 * KiB)))
    stale = await RawClient.connect(srv.config.port)
    await stale.send(b'{"uri":"/logs","params":"' + b"x" * (200 * KiB))  # and never finishes
    await wait_until(lambda: srv.guard.buffered >= 200 * KiB, what="the stale partial held")
    await asyncio.sleep(0.2)
    fresh = await RawClient.connect(srv.config.port)
    frame = book_frame("y" * (150 * KiB))
    await fresh.send(frame[:100 * KiB])  # over budget now: the older packet goes
    await stale.read_for(2.0)
    assert stale.eof, "the connection with the oldest unfinished packet was cut"
    await fresh.send(frame[100 * KiB:])
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 1, what="the fresh packet stored")
    assert not fresh.eof and srv.guard.stats["buffer_limit"] == 1
    assert srv.guard.buffered == 0
    await fresh.close()


async def test_a_packet_left_unfinished_is_cut_but_an_idle_link_is_not(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(header_timeout=1.0)))
    slow = await RawClient.connect(srv.config.port)
    idle = await RawClient.connect(srv.config.port)
    await idle.send(book_frame(request_text(1, "idle")))  # then nothing: a quiet service
    try:
        for ch in b'{"uri":"/logs","params":"dribbled':
            await slow.send(bytes([ch]))
            await asyncio.sleep(0.1)  # a byte at a time: the clock runs from the packet's start
    except ConnectionError:
        pass  # cut while still dribbling: what should happen
    await slow.read_for(2.5)
    assert slow.eof and srv.guard.stats["header_timeouts"] == 1
    assert not idle.eof, "mesh links are idle by design: --idle-timeout is off by default"
    await idle.send(book_frame(request_text(2, "idle")))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, what="both idle events")
    await idle.close()


async def test_idle_timeout_when_asked_for(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(idle_timeout=1.0)))
    idle = await RawClient.connect(srv.config.port)
    await idle.read_for(3.5)
    assert idle.eof and srv.guard.stats["idle_timeouts"] == 1


async def test_a_peer_that_never_reads_its_replies_is_cut_off(mesh) -> None:
    big = "z" * (64 * KiB)
    svc = await mesh.start_service("goods", {"GET/goods": lambda p, pk: big}, register=False,
                                   security=ServerSecurity(limits=Limits(max_connection_buffer=512 * KiB)))
    hog = await Peer.connect(svc.port)
    hog.writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)
    sock = hog.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    packet = orjson.dumps({"uri": "/goods", "method": "GET", "key": 1, "params": {}}) + "¶".encode()
    for _ in range(400):  # ~25 MB of replies asked for; none read
        hog.send_raw(packet)
    await wait_until(lambda: svc.guard.stats["slow_readers"] >= 1, timeout=10,
                     what="the slow reader cut off")
    good = await Peer.connect(svc.port)
    reply = await good.request({"uri": "/goods", "method": "GET", "params": {"key": 1}})
    assert reply["errorcode"] == 0 and len(reply["results"]) == len(big)
    await good.close()
    await hog.close()
