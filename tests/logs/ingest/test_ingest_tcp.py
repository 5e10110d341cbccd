"""Book-protocol ingest over TCP: what is stored, what is answered, and bad input survived.

DESIGN.md §1: a plain log packet is never answered (the book's Node services
drop their log connection on any data received); acknowledgements are for
logmesh's batch packets only, sent once the events are durable; any bad frame
is counted by reason in /metrics and the connection goes on.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading

import pytest

from logmesh.logs.ingest.tcp import FEATURES
from logmesh.metrics import Exposition
from logmesh.protocol import encode
from tests.support.logs import (
    RawClient,
    bad_frames,
    book_frame,
    metrics,
    request_text,
    stored,
    wait_until,
)


def batch_packet(key: int, instance: str, numbers: range | list[int], service: str = "goods") -> dict:
    events = [[n, 1_700_000_000_000 + n, request_text(n, instance)] for n in numbers]
    return {"uri": "/logs", "method": "POST", "key": key, "ack": True,
            "params": {"service": service, "instance": instance, "events": events}}


async def test_book_packets_are_stored_and_never_answered(start_logs):
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    texts = [request_text(i, "book") for i in range(5)]
    await client.send(b"".join(book_frame(t) for t in texts))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 5, what="5 stored events")
    assert await client.read_for(0.5) == b"", "a plain book client must receive zero bytes"
    assert not client.eof
    events = stored(srv.config.data_dir)
    assert [e["message"] for e in events] == texts
    for i, e in enumerate(events):
        assert e["url.path"] == "/goods" and e["http.request.method"] == "GET"
        assert e["params"] == {"key": i} and e["key"] == str(i)
        assert e["trace.id"] == f"book-{i}"
        assert e["source.address"] == "127.0.0.1" and e["source.port"] == client.local_port
    await client.close()


async def test_escaped_delimiter_and_split_reads(start_logs):
    """¶ escaped inside strings, frames cut anywhere (also inside ¶ and inside a character)."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    texts = [request_text(0, "esc", name="a¶b"), "상품¶ 로그 " * 3, request_text(2, "esc", name="¶¶")]
    data = b"".join(book_frame(t) for t in texts)
    assert data.count("¶".encode()) == 3, "a ¶ inside a string travels escaped"
    first = len(book_frame(texts[0]))
    # cut after 1 and 7 bytes, between the two bytes of the first ¶, inside a Korean
    # character of the second frame, and before the last byte
    korean = data.index("상".encode()) + 1
    cuts = sorted({1, 7, first - 1, korean, len(data) - 1})
    prev = 0
    for cut in [*cuts, len(data)]:
        await client.send(data[prev:cut])
        await asyncio.sleep(0.02)
        prev = cut
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 stored events")
    assert [e["message"] for e in stored(srv.config.data_dir)] == texts
    assert await client.read_for(0.2) == b""
    await client.close()


GARBAGE = [
    (b"\xff\xfe\xfd not even text", "bad_json"),  # not JSON even with U+FFFD for its bytes
    (b'{"uri":"/logs","method":"POST","key":0,"params":', "bad_json"),
    (b"not json at all", "bad_json"),
    (b'["an array, not a packet"]', "bad_json"),
]


@pytest.mark.parametrize("one_read", [False, True], ids=["separate-writes", "one-write"])
async def test_bad_frames_are_counted_and_the_connection_goes_on(start_logs, one_read):
    srv = await start_logs(max_frame_bytes=4096)
    client = await RawClient.connect(srv.config.port)
    oversized = book_frame("x" * 10_000)
    good = [request_text(i, "good") for i in range(4)]
    stream = [book_frame(good[0])]
    for garbage, _ in GARBAGE:
        stream.append(garbage + "¶".encode())
    stream.append(oversized)
    stream += [book_frame(t) for t in good[1:]]
    if one_read:
        await client.send(b"".join(stream))
    else:
        for part in stream:
            await client.send(part)
            await asyncio.sleep(0.01)

    data_dir = srv.config.data_dir
    await wait_until(lambda: len(stored(data_dir)) >= 4, what="the valid packets stored")
    assert [e["message"] for e in stored(data_dir)] == good, "valid packets around garbage are stored"
    assert await client.read_for(0.3) == b"" and not client.eof, "the connection stays open, silent"

    samples = await metrics(srv.config.http_port)
    expected: dict[str, int] = {"too_large": 1}
    for _, reason in GARBAGE:
        expected[reason] = expected.get(reason, 0) + 1
    for reason, count in expected.items():
        assert bad_frames(samples, reason) == count, (reason, samples)

    # the same connection still works, and so does the service
    await client.send(book_frame(request_text(9, "after")))
    await wait_until(lambda: len(stored(data_dir)) == 5, what="a packet after the garbage")
    assert not client.eof
    other = await RawClient.connect(srv.config.port)
    await other.send(book_frame(request_text(10, "other")))
    await wait_until(lambda: len(stored(data_dir)) == 6, what="a packet on a new connection")
    await client.close()
    await other.close()


async def test_a_packet_whose_params_are_not_a_string_is_stored_as_the_logged_request(start_logs):
    """What the book's gate forwards for an HTTP ``POST /logs``: params an object. The book's
    logs service stores every packet; so does logmesh, the packet being the logged request."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    gate = {"uri": "/logs", "method": "POST", "params": {"msg": "disk full", "key": 3}}
    number = {"uri": "/logs", "method": "POST", "key": 0, "params": 42}
    hello = {"uri": "/auth", "method": "POST", "key": 0, "params": {"token": "secret"}}
    await client.send(encode(gate) + encode(hello) + encode(number) + book_frame(request_text(1)))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 stored events")
    first, second, third = stored(srv.config.data_dir)
    assert first["message"] == encode(gate)[:-2].decode()  # the packet's text, verbatim
    assert first["url.path"] == "/logs" and first["http.request.method"] == "POST"
    assert first["params"] == {"msg": "disk full", "key": 3} and first["key"] == "3"
    assert second["message"] == encode(number)[:-2].decode() and second["params"] == 42
    assert third["trace.id"] == "t-1"
    assert all("secret" not in e["message"] for e in stored(srv.config.data_dir)), "a hello is no log"
    assert await client.read_for(0.3) == b"", "never answered"
    samples = await metrics(srv.config.http_port)
    assert samples[("logmesh_received_events_total", frozenset({("worker", "0")}))] == 3
    assert bad_frames(samples, "not_a_log") == 0
    await client.close()


async def test_bad_utf8_is_kept_replaced_and_marked(start_logs):
    """Bytes that are not UTF-8 become U+FFFD, as the fixed Node logs service (Buffer.toString)
    keeps them; the event is labelled and counted. Not JSON even then: a bad frame, bad_json."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    await client.send(b"".join(f + "¶".encode() for f in [
        b'{"uri":"/logs","method":"POST","key":0,"params":"caf\xe9"}',  # latin-1 in a string
        b'{"uri":"/lo\xc3gs","method":"POST","key":0,"params":"x"}',  # a cut character
        b'{"uri":"/logs","method":"POST","key":0,"params":"{\\"uri\\":\\"/goods\\",'
        b'\\"method\\":\\"GET\\",\\"params\\":{\\"n\\":\\"\xed\xa0\x80\\",\\"key\\":7}}"}',
        b'{"uri":"/logs","method":"POST","params":{"msg":"\xff","key":8}}',  # an object, as from a gate
        b"\xff\xfe not even JSON",
    ]) + book_frame(request_text(9)))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 5, what="5 stored events")
    events = stored(srv.config.data_dir)
    assert [e["message"] for e in events[:2]] == ["caf\ufffd", "x"]
    assert events[2]["params"] == {"n": "\ufffd" * 3, "key": 7} and events[2]["url.path"] == "/goods"
    assert events[3]["params"] == {"msg": "\ufffd", "key": 8}
    assert [e.get("labels") for e in events] == [{"logmesh.replaced": "bad_utf8"}] * 4 + [None]
    assert await client.read_for(0.3) == b"" and not client.eof
    # an acked batch is told (400), never stored with its text changed
    await client.send(b'{"uri":"/lo\xe9gs","method":"POST","key":4,"ack":true,'
                      b'"params":{"events":[[1,1,"x"]]}}' + "¶".encode())
    [reply] = await client.replies(1)
    assert reply["key"] == 4 and reply["errorcode"] == 400
    samples = await metrics(srv.config.http_port)
    assert bad_frames(samples, "bad_utf8") == 1  # that one; the frame not JSON either is bad_json
    assert bad_frames(samples, "bad_json") == 1
    assert srv.ingest.stats["replaced"] == {"bad_utf8": 4}
    ex = Exposition()
    srv.ingest.add_metrics(ex, {"worker": "0"})
    assert 'logmesh_replaced_events_total{reason="bad_utf8",worker="0"} 4' in ex.render()
    assert len(stored(srv.config.data_dir)) == 5
    await client.close()


async def test_acked_batch_is_answered_once_durable_and_stored_once(start_logs):
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    await client.send(encode(batch_packet(1, "goods-abc", range(1, 101))))
    [reply] = await client.replies(1)
    assert reply == {"key": 1, "errorcode": 0, "acked": 100, "features": FEATURES}
    assert srv.writer.durable_seq >= 0
    events = stored(srv.config.data_dir)  # durable means written: visible right away
    assert [e["event.id"] for e in events] == [f"goods-abc:{n}" for n in range(1, 101)]
    assert all(e["service.name"] == "goods" and e["service.instance"] == "goods-abc" for e in events)
    assert events[0]["@timestamp"] == 1_700_000_000_001

    # a resend (after a lost ack) is acknowledged again but stored once
    await client.send(encode(batch_packet(2, "goods-abc", range(51, 151))))
    replies = await client.replies(2)
    assert replies[1] == {"key": 2, "errorcode": 0, "acked": 100, "features": FEATURES}
    numbers = [int(e["event.id"].rpartition(":")[2]) for e in stored(srv.config.data_dir)]
    assert sorted(numbers) == list(range(1, 151))
    assert srv.ingest.stats["duplicates"] == 50
    await client.close()


async def test_bad_batch_is_refused_with_an_error(start_logs):
    """A batch whose events cannot be read at all gets a 400; a bad event costs only itself
    (tests/logs/ingest/test_batch_refusal.py)."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    bad = {"uri": "/logs", "method": "POST", "key": 5, "ack": True,
           "params": {"service": "goods", "instance": "i", "events": "not a list"}}
    await client.send(encode(bad))
    # a batch cut short: not even its envelope decodes, but its key and ack are readable
    await client.send(encode(batch_packet(6, "goods-cut", [1]))[:-20] + "¶".encode())
    # events of the wrong shape: rejected one by one, the batch is answered
    await client.send(encode({**bad, "key": 7, "params": {"events": [["not", "a", "batch"]]}}))
    replies = await client.replies(3)
    assert [r["key"] for r in replies] == [5, 6, 7]
    assert [r["errorcode"] for r in replies] == [400, 400, 0], replies
    assert replies[2] == {"key": 7, "errorcode": 0, "acked": 0, "features": FEATURES, "rejected": [[0, "bad_event"]]}
    assert stored(srv.config.data_dir) == []
    assert not client.eof
    await client.close()


@pytest.fixture
def blocked_fsync(monkeypatch):
    """Hold every fsync of a segment (not of directories or indexes) until ``release()``."""
    gate = threading.Event()
    real = os.fsync
    held = []

    def fsync(fd):
        if not gate.is_set() and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).endswith(".ndjson"):
            held.append(fd)
            gate.wait(10)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    yield gate
    gate.set()


async def test_resend_is_not_acked_before_the_first_copy_is_durable(start_logs, blocked_fsync):
    """The first copy is buffered and its fsync not done: acking the resend would promise too much."""
    srv = await start_logs()
    first = await RawClient.connect(srv.config.port)
    await first.send(encode(batch_packet(1, "goods-r", range(1, 11))))
    await wait_until(lambda: srv.writer.written_seq >= 0, what="the first copy written")
    await first.close()  # the shipper lost its connection before the ack

    second = await RawClient.connect(srv.config.port)  # ... reconnected and resent
    await second.send(encode(batch_packet(1, "goods-r", range(1, 11))))
    await wait_until(lambda: srv.ingest.stats["duplicates"] == 10, what="the resend seen as duplicates")
    assert await second.read_for(0.5) == b"", "acknowledged before the events were durable"
    blocked_fsync.set()
    [reply] = await second.replies(1)
    assert reply == {"key": 1, "errorcode": 0, "acked": 10, "features": FEATURES}
    assert len(stored(srv.config.data_dir)) == 10
    await second.close()


async def test_disk_full_answers_507_at_once_and_a_resend_is_acked_once_written(start_logs,
                                                                                monkeypatch):
    """Nothing is acknowledged while the disk fails, but the batch is answered (507) at once
    instead of held; the events stay buffered, are written when space is back, and the
    shipper's resend is acknowledged without a second copy (issue 14)."""
    srv = await start_logs()
    real_write = os.write
    failing = threading.Event()
    failing.set()

    def write(fd, data):
        if failing.is_set() and os.readlink(f"/proc/self/fd/{fd}").endswith(".ndjson"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", lambda fd, bufs: write(fd, b"".join(bufs)))  # the store's
    client = await RawClient.connect(srv.config.port)
    await client.send(encode(batch_packet(1, "goods-full", range(1, 21))))
    [reply] = await client.replies(1, timeout=5)
    assert reply["key"] == 1 and reply["errorcode"] == 507, reply
    assert stored(srv.config.data_dir) == []
    samples = await metrics(srv.config.http_port)
    assert samples[("logmesh_store_write_errors_total", frozenset({("worker", "0")}))] >= 1
    assert samples[("logmesh_store_writable", frozenset({("worker", "0")}))] == 0

    failing.clear()  # space is back: the held events are written by the retry
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 20, what="the held events written")
    await wait_until(lambda: srv.writer.failure is None, what="the store writing again")
    await client.send(encode(batch_packet(2, "goods-full", range(1, 21))))  # the resend
    reply = (await client.replies(2, timeout=5))[-1]
    assert reply == {"key": 2, "errorcode": 0, "acked": 20, "features": FEATURES}
    assert [e["event.id"] for e in stored(srv.config.data_dir)] == [f"goods-full:{n}" for n in range(1, 21)]
    await client.close()


async def test_metrics_count_events_and_connections(start_logs):
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    await client.send(b"".join(book_frame(request_text(i)) for i in range(3)))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3)
    samples = await metrics(srv.config.http_port)
    w = frozenset({("worker", "0")})
    assert samples[("logmesh_received_events_total", w)] == 3
    assert samples[("logmesh_ingest_connections", w)] == 1
    await client.close()
