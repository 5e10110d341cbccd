"""Who gets a connection slot (issue #15, item 6), with real sockets.

* The cap holds for a burst: asyncio accepts a whole burst before any
  ``connection_made`` runs, so the count must move when the protocol is made.
* A full port makes room for a newcomer by closing its oldest connection that
  has not identified itself yet (no complete first packet or hello; on HTTP,
  no complete request head, then idle keep-alive ones); only a port full of
  identified connections (on HTTP: requests in progress) refuses one.
* Silent connections are closed after a third of ``--header-timeout`` -- but
  only while the port is more than half full: the book's Node services open
  their log connection long before their first request and never reconnect it.
"""

from __future__ import annotations

import asyncio
import logging

from logmesh.hello import hello_packet
from logmesh.protocol import encode
from logmesh.security import Limits, ServerSecurity
from logmesh.security_http import oldest_victim
from logmesh.shipping.shipper import Shipper
from tests.security.conftest import TOKEN
from tests.support.logs import HOST, RawClient, book_frame, request_text, stored, wait_until


async def _burst(port: int, n: int) -> list[RawClient]:
    return list(await asyncio.gather(*(RawClient.connect(port) for _ in range(n))))


async def _open_after(clients: list[RawClient], seconds: float) -> int:
    await asyncio.gather(*(c.read_for(seconds) for c in clients))
    return sum(not c.eof for c in clients)


async def _close(clients: list[RawClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


async def test_a_burst_cannot_pass_the_cap_on_tcp(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=10)))
    clients = await _burst(srv.config.port, 50)
    still_open = await _open_after(clients, 1.0)
    assert still_open <= 10, f"{still_open} of 50 connections kept past --max-connections 10"
    st = srv.guard.stats
    assert st["refused_connections"] + st["evicted"] == 50 - still_open, st
    await _close(clients)


async def test_a_burst_cannot_pass_the_cap_on_http(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=10)))
    clients = await _burst(srv.config.http_port, 50)
    still_open = await _open_after(clients, 1.0)
    assert still_open <= 10, f"{still_open} of 50 connections kept past --max-connections 10"
    st = srv.site.stats
    assert st["refused_connections"] + st["evicted"] == 50 - still_open, st
    await _close(clients)


async def test_a_full_port_closes_its_oldest_silent_connection_for_a_shipper(
        start_logs, caplog) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=4)))
    silent = []
    for _ in range(4):  # one by one, so the first is the oldest
        silent.append(await RawClient.connect(srv.config.port))
        await wait_until(lambda: srv.ingest.stats["connections"] == len(silent))
    shipper = Shipper("goods", logs_addr=(HOST, srv.config.port))
    shipper.start()
    shipper.ship(request_text(1, "room").encode())
    try:
        await wait_until(lambda: shipper.stats["acked"] == 1, timeout=2, what="the event acked")
    finally:
        await shipper.close()
    await silent[0].read_for(0.5)
    assert silent[0].eof, "the oldest silent connection made room"
    assert srv.guard.stats["evicted"] == 1 and srv.guard.stats["refused_connections"] == 0
    assert srv.ingest.stats["connections_total"] == 5, "the shipper's first connection was taken"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    await _close(silent)


async def test_a_hello_identifies_a_connection(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(token=TOKEN, limits=Limits(max_connections=3)))
    shipper = await RawClient.connect(srv.config.port)
    await shipper.send(encode(hello_packet(TOKEN)))  # and nothing yet to ship
    await asyncio.sleep(0.2)
    silent = [await RawClient.connect(srv.config.port) for _ in range(4)]
    await shipper.read_for(0.5)
    assert not shipper.eof, "a connection that sent a good hello is never closed for room"
    await shipper.send(book_frame(request_text(1, "hello")))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 1, what="the event")
    await _close([shipper, *silent])


async def test_a_full_http_port_closes_its_oldest_silent_connection_for_a_request(
        start_logs, caplog) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=4)))
    silent = [await RawClient.connect(srv.config.http_port) for _ in range(4)]
    await asyncio.sleep(0.2)
    newcomer = await RawClient.connect(srv.config.http_port)  # one try: no client retries
    await newcomer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await newcomer.read_for(1.0)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    await silent[0].read_for(0.5)
    assert silent[0].eof and srv.site.stats["evicted"] >= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    await _close([*silent, newcomer])


async def test_idle_keep_alive_connections_make_room_too(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=4)))
    idle = [await RawClient.connect(srv.config.http_port) for _ in range(4)]
    for c in idle:  # one request each, then silent on a kept-alive connection
        await c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await c.read_for(0.2)
        assert c.received.startswith(b"HTTP/1.1 200") and not c.eof
    newcomer = await RawClient.connect(srv.config.http_port)
    await newcomer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await newcomer.read_for(1.0)).startswith(b"HTTP/1.1 200")
    await idle[0].read_for(0.5)
    assert idle[0].eof and srv.site.stats["evicted"] == 1, "the oldest idle one made room"
    await _close([*idle, newcomer])


async def test_silent_connections_time_out_only_while_the_port_fills(start_logs) -> None:
    srv = await start_logs(
        security=ServerSecurity(limits=Limits(max_connections=4, header_timeout=3.0)))  # a silent one: 1 s
    lone = await RawClient.connect(srv.config.port)
    await lone.read_for(2.5)
    assert not lone.eof, "a quiet book client keeps its log connection while there is room"
    talker = await RawClient.connect(srv.config.port)
    await talker.send(book_frame(request_text(1, "talker")))
    more = [await RawClient.connect(srv.config.port) for _ in range(2)]  # 4 of 4: full
    await asyncio.gather(*(c.read_for(3.5) for c in [lone, *more]))
    assert lone.eof, "the oldest silent connection timed out once the port filled"
    assert srv.guard.stats["identify_timeouts"] >= 2 and srv.ingest.stats["connections"] <= 2, \
        "silent connections are closed until the port is half full"
    await talker.send(book_frame(request_text(2, "talker")))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, what="the talker's events")
    await _close([lone, talker, *more])


class _Conn:
    def __init__(self, requests: int = 0, idle: bool = True, made: bool = True) -> None:
        self.requests, self.idle = requests, idle
        self.transport = object() if made else None


def test_making_room_looks_at_the_oldest_connections_not_at_every_one() -> None:
    """A full HTTP port's eviction stops at the oldest connection that never sent a request:
    a pass over all 1,024 per newcomer (177 us) was most of the logs worker's CPU in a
    reconnecting idle flood. Same choice as before: a silent one before any idle keep-alive
    one, a handshake never made within the grace forgotten, one under way left alone."""
    busy, kept, stale, handshake = _Conn(1, idle=False), _Conn(2), _Conn(made=False), _Conn(made=False)
    flood = [_Conn() for _ in range(1_020)]
    conns = {busy: 0.0, kept: 0.0, stale: 0.0, handshake: 99.0, **dict.fromkeys(flood, 1.0)}
    looked: list[_Conn] = []

    def silent(c: _Conn) -> bool:
        looked.append(c)
        return c.idle and c.requests == 0

    victim = oldest_victim(conns, 100.0, 16.0, gone=lambda c: False, silent=silent,
                           idle=lambda c: c.idle)
    assert victim is flood[0] and looked == [busy, kept, flood[0]]
    assert stale not in conns and handshake in conns and len(conns) == 1_023
    for c in flood:
        del conns[c]
    assert oldest_victim(conns, 100.0, 16.0, gone=lambda c: False, silent=silent,
                         idle=lambda c: c.idle) is kept
    assert oldest_victim(conns, 100.0, 16.0, gone=lambda c: c is kept, silent=silent,
                         idle=lambda c: c.idle) is None and kept not in conns
