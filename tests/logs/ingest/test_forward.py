"""Fluent's forward protocol on --forward-port: fluent-logger (the PyPI client) in Message
mode, and the Forward, PackedForward and CompressedPackedForward modes with the ``chunk``
option, acked only once stored; bad msgpack ends that connection only, counted."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time

import msgpack
import pytest
from fluent import handler as fluent_handler
from fluent import sender as fluent_sender

from logmesh.security import Limits, ServerSecurity
from tests.logs.ingest.sockets_support import ingest_errors, ingest_events, logmesh_query
from tests.support.logs import HOST, RawClient, stored, wait_until


@pytest.fixture
async def forward(start_logs):
    return await start_logs(forward_port=0)


def port(server) -> int:
    return server.listeners.bound["forward"]


async def emit(sender, label: str, record: dict) -> None:
    ok = await asyncio.to_thread(sender.emit, label, record)
    assert ok, sender.last_error


async def test_fluent_logger_sender_and_handler(forward):
    plain = fluent_sender.FluentSender("shop", host=HOST, port=port(forward))
    precise = fluent_sender.FluentSender("shop", host=HOST, port=port(forward),
                                         nanosecond_precision=True)
    when = int(time.time()) - 60
    try:
        await emit(plain, "orders", {"message": "order placed", "order": {"id": 7}, "log.level": "warning"})
        await emit(precise, "orders", {"log": "from a log field", "service": "checkout"})
        ok = await asyncio.to_thread(precise.emit_with_time, "timed", when + 0.25, {"message": "t"})
        assert ok, precise.last_error
    finally:
        plain.close()
        precise.close()
    log = logging.Logger("fluent-test")
    h = fluent_handler.FluentHandler("shop.py", host=HOST, port=port(forward))
    h.setFormatter(fluent_handler.FluentRecordFormatter({"message": "%(message)s",
                                                         "log.level": "%(levelname)s"}))
    log.addHandler(h)
    try:
        await asyncio.to_thread(log.error, "payment failed")
    finally:
        h.close()
    await wait_until(lambda: len(stored(forward.config.data_dir)) == 4, what="4 events")
    [order] = await logmesh_query(forward, "service.name:shop.orders")
    assert order["message"] == "order placed" and order["log.level"] == "warning"
    assert order["labels"] == {"order": {"id": 7}}
    assert abs(order["@timestamp"] - order["received_at"]) < 2000
    [log_field] = await logmesh_query(forward, "service.name:checkout")
    assert log_field["message"] == "from a log field"
    [handled] = await logmesh_query(forward, "service.name:shop.py")
    assert handled["message"] == "payment failed" and handled["log.level"] == "ERROR"
    [timed] = await logmesh_query(forward, "service.name:shop.timed")
    assert timed["@timestamp"] == when * 1000 + 250  # the EventTime's milliseconds
    assert await ingest_events(forward, "forward") == 4


async def answer(client: RawClient, timeout: float = 5.0) -> object:
    """The first msgpack object the server sends back."""
    deadline = time.monotonic() + timeout
    while not client.received and not client.eof and time.monotonic() < deadline:
        await client.read_for(0.05)
    await client.read_for(0.05)
    return msgpack.unpackb(bytes(client.received))


def entries(n: int, tag: str) -> list:
    now = int(time.time())
    return [[now, {"message": f"{tag} {i}", "i": i}] for i in range(n)]


def packed(items: list) -> bytes:
    return b"".join(msgpack.packb(e) for e in items)


@pytest.mark.parametrize("mode", ["forward", "packed", "compressed"])
async def test_modes_with_chunk_acked_once_stored(forward, mode):
    items = entries(50, mode)
    if mode == "forward":
        message = ["batch", items, {"chunk": "c-1"}]
    elif mode == "packed":
        message = ["batch", packed(items), {"chunk": "c-1", "size": 50}]
    else:  # Fluent Bit sends gzip members one after another: two here
        blob = gzip.compress(packed(items[:20])) + gzip.compress(packed(items[20:]))
        message = ["batch", blob, {"chunk": "c-1", "size": 50, "compressed": "gzip"}]
    client = await RawClient.connect(port(forward))
    await client.send(msgpack.packb(message))
    assert await answer(client) == {"ack": "c-1"}
    # Acked means durable: the events are in the segment file already.
    assert [e["message"] for e in stored(forward.config.data_dir)] == [f"{mode} {i}" for i in range(50)]
    assert forward.writer.durable_seq >= max(e["seq"] for e in stored(forward.config.data_dir))
    assert not client.eof
    await client.close()


async def test_bad_msgpack_ends_the_connection_keeps_what_came_before(forward):
    client = await RawClient.connect(port(forward))
    good = msgpack.packb(["t", entries(3, "before"), {"chunk": "ok-1"}])
    await client.send(good + b"\xc1\xc1\xc1 not msgpack")  # 0xc1 is never used by msgpack
    await client.read_for(2)
    assert client.eof, "the stream cannot be read past bad bytes: closed"
    assert msgpack.unpackb(bytes(client.received)) == {"ack": "ok-1"}
    assert [e["message"] for e in stored(forward.config.data_dir)] == [f"before {i}" for i in range(3)]
    assert await ingest_errors(forward, "forward") == {"bad_msgpack": 1}
    # The service goes on: fluent-logger, on a new connection, is stored.
    sender = fluent_sender.FluentSender("after", host=HOST, port=port(forward))
    try:
        await emit(sender, "x", {"message": "still taken"})
    finally:
        sender.close()
    await wait_until(lambda: len(stored(forward.config.data_dir)) == 4, what="the later event")


async def test_bad_entries_are_counted_the_others_stored(forward):
    client = await RawClient.connect(port(forward))
    now = int(time.time())
    message = ["t", [[now, {"message": "good 1"}], [now, "not a record"],
                     [now, {"message": "bad time", "@timestamp": "yesterday"}],
                     [now, {"message": "good 2"}]], {"chunk": "mixed"}]
    await client.send(msgpack.packb(message) + msgpack.packb({"not": "a message"}))
    assert await answer(client) == {"ack": "mixed"}
    assert [e["message"] for e in stored(forward.config.data_dir)] == ["good 1", "good 2"]
    assert await ingest_errors(forward, "forward") == {"bad_entry": 1, "bad_timestamp": 1,
                                                        "bad_message": 1}
    await client.close()


async def test_a_message_over_the_size_limit_is_refused(start_logs):
    srv = await start_logs(forward_port=0, max_frame_bytes=64 * 1024)
    client = await RawClient.connect(port(srv))
    await client.send(msgpack.packb(["t", [[1, {"message": "x" * 200_000}]]]))
    await client.read_for(2)
    assert client.eof and stored(srv.config.data_dir) == []
    assert await ingest_errors(srv, "forward") == {"too_large": 1}


async def test_garbage_messages_cannot_hold_the_port(start_logs):
    """Complete but bad messages, one per connection, used to count as a client that had
    spoken: the port filled with them and a real sender was refused. As Fluentd closes a
    connection whose data it cannot take, the message is counted and the connection closed."""
    cap = 8
    srv = await start_logs(forward_port=0, security=ServerSecurity(limits=Limits(max_connections=cap)))
    good = await RawClient.connect(port(srv))
    await good.send(msgpack.packb(["t", entries(2, "early"), {"chunk": "early"}]))
    assert await answer(good) == {"ack": "early"}
    bad = [await RawClient.connect(port(srv)) for _ in range(cap - 1)]
    garbage = [msgpack.packb({"not": "a message"}), msgpack.packb(["t", [[1, "no record"]]]),
               msgpack.packb(["only a tag"]), msgpack.packb(42)]
    for i, client in enumerate(bad):
        await client.send(garbage[i % len(garbage)])
    await asyncio.gather(*(c.read_for(10) for c in bad))  # returns at the server's close
    assert all(c.eof for c in bad), "a connection that sent only garbage is closed"
    errors = await ingest_errors(srv, "forward")
    assert errors == {"bad_message": 5, "bad_entry": 2}, errors
    # A newcomer connects, and the sender that was there all along is still served.
    late = await RawClient.connect(port(srv))
    await late.send(msgpack.packb(["t", entries(3, "late"), {"chunk": "late"}]))
    assert await answer(late) == {"ack": "late"}
    good.received.clear()
    await good.send(msgpack.packb(["t", entries(1, "again"), {"chunk": "again"}]))
    assert await answer(good) == {"ack": "again"}
    assert not good.eof and not late.eof
    assert len(stored(srv.config.data_dir)) == 6
    await good.close()
    await late.close()
