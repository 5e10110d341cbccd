"""A shipper's batch that waits for the loss ledger's look at the sibling workers' store
holds that batch only, never the event loop (logs/ingest/tcp.py ``_hold``).

The look (ShipperLedger.look) reads what a sibling appended since the last look: after a quiet
spell, up to its whole 64 MB active segment, ~0.45 s of CPU (bench/ledger_look.py). In the
event loop it held every connection's acks and /healthz as long. Here the look is gated (its
decode waits on an event), so the tests say what runs meanwhile without timing anything.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from logmesh.logs.ingest import ledger as ledger_module
from logmesh.logs.ingest import tcp
from logmesh.protocol import encode
from tests.support.logs import RawClient, request_text, stored
from tests.support.store import FakeClock, event, write_store
from tests.support.waiting import wait_until


def batch(key: int, instance: str, numbers: range) -> bytes:
    events = [[n, 1_700_000_000_000 + n, request_text(n, instance)] for n in numbers]
    return encode({"uri": "/logs", "method": "POST", "key": key, "ack": True,
                   "params": {"service": "goods", "instance": instance, "events": events}})


def sibling_events(instance: str, numbers: range) -> list:
    t = int(time.time() * 1000)
    return [event(t + i, event_id=f"{instance}:{n}", message=request_text(n, instance))
            for i, n in enumerate(numbers)]


class Gate:
    """The ledger's decode of a sibling's bytes, held until ``go`` (at most 10 s): ``waiting``
    while held, ``ended`` once it went on (by ``go``, or by the timeout in a blocked loop)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.waiting = threading.Event()
        self.go = threading.Event()
        self.ended = threading.Event()
        real = ledger_module._event_ids

        def gated(data: bytes) -> list[str]:
            if self.armed and data:
                self.armed = False
                self.waiting.set()
                self.go.wait(10)
                self.ended.set()
            return real(data)

        monkeypatch.setattr(ledger_module, "_event_ids", gated)


def ids_stored(data_dir) -> Counter:
    return Counter(e.get("event.id") for e in stored(data_dir))


async def service_and_sibling(start_logs, instance: str = "other", last: int = 40):
    """An in-process logs service (stream 0) and a sibling's writer (stream 1) on its data
    directory, which stored ``instance``'s 1..``last`` after the service started."""
    srv = await start_logs()
    data = srv.config.data_dir
    sibling = await write_store(data, [sibling_events(instance, range(1, last + 1))], worker=1,
                                clock=FakeClock(int(time.time() * 1000)), seal_each=False)
    return srv, data, sibling


async def known_shipper(port: int, instance: str, last: int) -> RawClient:
    """A connection whose shipper sent ``instance``'s 1..``last``, acked: it needs no look."""
    client = await RawClient.connect(port)
    await client.send(batch(1, instance, range(1, last + 1)))
    assert (await client.replies(1))[0]["acked"] == last
    return client


async def test_a_connection_is_answered_while_another_ones_batch_waits_for_the_look(
        start_logs, monkeypatch):
    """Fails on the look in the loop: the other shipper's ack came only after the look."""
    gate = Gate(monkeypatch)
    srv, data, sibling = await service_and_sibling(start_logs)
    a = b = None
    try:
        a = await known_shipper(srv.config.port, "a", 10)
        # the sibling stored b's batch and was killed before its ack: b resends it here
        await sibling.durable(sibling.append_events(sibling_events("b", range(1, 11))))
        gate.armed = True
        b = await RawClient.connect(srv.config.port)
        await b.send(batch(1, "b", range(1, 11)))
        await wait_until(gate.waiting.is_set, 15, "the look at the sibling's bytes")
        await a.send(batch(2, "a", range(11, 21)))
        replies = await a.replies(2, timeout=15)
        assert not gate.ended.is_set(), "the other connection waited for the look"
        assert replies[1] == {"key": 2, "errorcode": 0, "acked": 10, "features": tcp.FEATURES}
        assert b.received == b"", "b's batch is answered after the look"
        gate.go.set()
        assert (await b.replies(1, timeout=15)) == [{"key": 1, "errorcode": 0, "acked": 10, "features": tcp.FEATURES}]
        await b.send(batch(2, "b", range(11, 16)))
        assert (await b.replies(2))[1]["acked"] == 5
    finally:
        gate.go.set()
        for client in (a, b):
            if client is not None:
                await client.close()
        await sibling.close()
    got = ids_stored(data)
    assert [k for k, n in got.items() if n > 1] == [], "the resend is stored once"
    assert {f"b:{n}" for n in range(1, 16)} | {f"a:{n}" for n in range(1, 21)} <= set(got)
    assert srv.ingest.stats["duplicates"] == 10
    assert srv.ingest.held_bytes == 0


async def test_a_batch_whose_connection_closed_while_it_waited_is_stored_once_with_its_resend(
        start_logs, monkeypatch):
    """Its connection paused, the close is seen once the batch is handled: stored, never acked,
    the shipper sends it again over a new connection, where it is a resend."""
    gate = Gate(monkeypatch)
    srv, data, sibling = await service_and_sibling(start_logs)
    try:
        gate.armed = True
        b = await RawClient.connect(srv.config.port)
        await b.send(batch(1, "b", range(1, 11)))
        await wait_until(gate.waiting.is_set, 15, "the look at the sibling's bytes")
        await b.close()
        gate.go.set()
        await wait_until(lambda: srv.ingest.held_bytes == 0, 15, "the look's end")
        await wait_until(lambda: srv.ingest.stats["connections"] == 0, 5, "the close")
        b = await RawClient.connect(srv.config.port)
        await b.send(batch(1, "b", range(1, 11)))
        assert (await b.replies(1))[0]["acked"] == 10
        await b.close()
    finally:
        gate.go.set()
        await sibling.close()
    assert sorted(k for k in ids_stored(data) if k and k.startswith("b:")) == \
        sorted(f"b:{n}" for n in range(1, 11))


async def test_past_the_held_bytes_a_batch_is_judged_at_once(start_logs, monkeypatch):
    """The bytes held for looks are bounded: past HELD_BYTES the look runs in the loop, as
    before the thread, and the resend is still stored once."""
    monkeypatch.setattr(tcp, "HELD_BYTES", 100)
    srv, data, sibling = await service_and_sibling(start_logs, "b", 10)
    try:
        b = await RawClient.connect(srv.config.port)
        await b.send(batch(1, "b", range(1, 16)))
        assert (await b.replies(1))[0]["acked"] == 15
        await b.close()
    finally:
        await sibling.close()
    got = ids_stored(data)
    assert sorted(k for k in got if k and k.startswith("b:")) == sorted(f"b:{n}" for n in range(1, 16))
    assert [k for k, n in got.items() if n > 1] == []
    assert srv.ingest.held_bytes == 0


async def test_frames_after_a_held_batch_and_reads_meanwhile_keep_their_order(start_logs, monkeypatch):
    """A read with a known shipper's batch, then a new instance's (held), then more: the first
    is acked at once, the rest in the order they came, each stored once."""
    gate = Gate(monkeypatch)
    srv, data, sibling = await service_and_sibling(start_logs)
    try:
        c = await known_shipper(srv.config.port, "x", 5)
        await sibling.durable(sibling.append_events(sibling_events("y", range(1, 4))))
        gate.armed = True
        await c.send(batch(2, "x", range(6, 11)) + batch(3, "y", range(1, 6)) + batch(4, "x", range(11, 16)))
        await wait_until(gate.waiting.is_set, 15, "the look at the sibling's bytes")
        assert [r["key"] for r in await c.replies(2)] == [1, 2]
        await c.send(batch(5, "y", range(6, 9)))
        gate.go.set()
        replies = await c.replies(5, timeout=15)
        assert [(r["key"], r["acked"]) for r in replies] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 3)]
        await c.close()
    finally:
        gate.go.set()
        await sibling.close()
    got = ids_stored(data)
    assert [k for k, n in got.items() if n > 1] == []
    assert {f"x:{n}" for n in range(1, 16)} | {f"y:{n}" for n in range(1, 9)} <= set(got)
    assert srv.ingest.stats["duplicates"] == 3



def book_with_id(text: str, event_id: str) -> bytes:
    return encode({"uri": "/logs", "params": text, "event.id": event_id})


async def test_a_book_packets_unknown_event_id_waits_for_the_look_off_the_loop(start_logs, monkeypatch):
    """A fire-and-forget packet whose ``event.id`` names an instance unknown here, past its
    first event, needs the same look as a shipper's batch. Fails on the look in the loop: the
    other shipper's ack came only after it. The packet is stored once after the look, and its
    copy (stored by the sibling) is a duplicate."""
    gate = Gate(monkeypatch)
    srv, data, sibling = await service_and_sibling(start_logs)
    a = c = None
    try:
        a = await known_shipper(srv.config.port, "a", 10)
        # the sibling stored u:1..3 (a book service's events, numbered by its shipper) since
        await sibling.durable(sibling.append_events(sibling_events("u", range(1, 4))))
        gate.armed = True
        c = await RawClient.connect(srv.config.port)
        await c.send(book_with_id("again", "u:3") + book_with_id("new", "u:4"))
        await wait_until(gate.waiting.is_set, 15, "the look at the sibling's bytes")
        await a.send(batch(2, "a", range(11, 21)))
        replies = await a.replies(2, timeout=15)
        assert not gate.ended.is_set(), "the other connection waited for the look"
        assert replies[1] == {"key": 2, "errorcode": 0, "acked": 10, "features": tcp.FEATURES}
        gate.go.set()
        await wait_until(lambda: srv.ingest.held_bytes == 0, 15, "the look's end")
        await wait_until(lambda: ids_stored(data)["u:4"] == 1, 15, "u:4 stored")
    finally:
        gate.go.set()
        for client in (a, c):
            if client is not None:
                await client.close()
        await sibling.close()
    got = ids_stored(data)
    assert [k for k, n in got.items() if n > 1] == [], "u:3, stored by the sibling, is stored once"
    assert srv.ingest.stats["duplicates"] == 1
