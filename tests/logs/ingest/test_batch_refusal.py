"""Every acked batch is answered (issue 14, defects 4 and 5).

An acked batch gets one reply whatever it holds: ``acked`` for the events
stored (or already stored), ``rejected`` naming by index the events no reader
could read back, a 413 when the batch is over ``--max-packet-size`` and a 400
when it cannot be decoded at all. The good packets and events around a
hostile one are stored.
"""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.ingest import tcp
from logmesh.logs.ingest.common import Rejected
from logmesh.logs.ingest.tcp import FEATURES
from logmesh.protocol import DELIMITER, encode
from tests.support.logs import (
    RawClient,
    bad_frames,
    book_frame,
    metrics,
    request_text,
    stored,
    wait_until,
)

DEEP = "[" * 1000 + "]" * 1000  # msgspec raises RecursionError at ~1000 levels


def event(n: int, raw: str | None = None) -> list:
    return [n, 1_700_000_000_000 + n, raw if raw is not None else request_text(n, "b")]


def batch(key: int, events: list, instance: str = "goods-x") -> dict:
    return {"uri": "/logs", "method": "POST", "key": key, "ack": True,
            "params": {"service": "goods", "instance": instance, "events": events}}


def ids(data_dir) -> list[str]:
    return [e.get("event.id") or e["message"] for e in stored(data_dir)]


async def test_a_batch_over_the_packet_limit_is_refused_by_its_key(start_logs):
    srv = await start_logs(max_frame_bytes=4096)
    client = await RawClient.connect(srv.config.port)
    big = encode(batch(7, [event(n) for n in range(1, 200)]))
    assert len(big) > 4096
    await client.send(book_frame("before") + big + encode(batch(8, [event(500)])))
    r413, r8 = sorted(await client.replies(2), key=lambda r: r["key"])
    assert r413 == {"key": 7, "errorcode": 413,
                    "errormessage": f"batch of {len(big) - len(DELIMITER)} bytes over the limit of 4096"}
    assert r8 == {"key": 8, "errorcode": 0, "acked": 1, "features": FEATURES}
    # the same over many reads, and a too-large plain book packet is still never answered
    for i in range(0, len(big), 1000):
        await client.send(big.replace(b'"key":7', b'"key":9')[i : i + 1000])
    await client.send(book_frame("x" * 5000) + book_frame("after"))
    replies = await client.replies(3)
    assert replies[2]["key"] == 9 and replies[2]["errorcode"] == 413
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="the good packets")
    assert ids(srv.config.data_dir) == ["before", "goods-x:500", "after"]
    assert await client.read_for(0.2) == bytes(client.received), "nothing more: not for a book packet"
    assert bad_frames(await metrics(srv.config.http_port), "too_large") == 3
    await client.close()


async def test_an_event_nested_too_deep_is_rejected_by_index_and_the_rest_stored(start_logs):
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    deep = '{"uri":"/goods","method":"GET","params":' + DEEP + "}"
    await client.send(encode(batch(1, [event(1), event(2, deep), event(3)])))
    [reply] = await client.replies(1)
    assert reply == {"key": 1, "errorcode": 0, "acked": 2, "features": FEATURES, "rejected": [[1, "too_deep"]]}
    assert ids(srv.config.data_dir) == ["goods-x:1", "goods-x:3"]
    assert srv.ingest.stats["rejected"] == {"too_deep": 1}
    # its resend is rejected again, never taken for a duplicate of something stored
    await client.send(encode(batch(2, [event(2, deep), event(3)])))
    replies = await client.replies(2)
    assert replies[1] == {"key": 2, "errorcode": 0, "acked": 1, "features": FEATURES, "rejected": [[0, "too_deep"]]}
    assert len(stored(srv.config.data_dir)) == 2
    await client.close()


async def test_events_of_the_wrong_shape_are_rejected_one_by_one(start_logs):
    """The whole-batch decode fails; event by event, the good ones are stored."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    deep = '{"uri":"/goods","method":"GET","params":' + DEEP + "}"
    packet = encode(batch(3, [event(1), ["not", "an", "event"], event(3), event(4, "BAD-UTF8"),
                              event(5, deep), event(6)]))
    await client.send(packet.replace(b"BAD-UTF8", b"caf\xe9"))
    [reply] = await client.replies(1)
    assert reply == {"key": 3, "errorcode": 0, "acked": 3, "features": FEATURES,
                     "rejected": [[1, "bad_event"], [3, "bad_utf8"], [4, "too_deep"]]}
    assert ids(srv.config.data_dir) == ["goods-x:1", "goods-x:3", "goods-x:6"]
    await client.close()


async def test_what_request_event_rejects_is_named_with_its_reason(start_logs, monkeypatch):
    real = tcp.request_event

    def request_event(raw, **kw):
        if "REFUSE" in raw:
            raise Rejected("bad_timestamp", "out of range")
        return real(raw, **kw)

    monkeypatch.setattr(tcp, "request_event", request_event)
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    await client.send(encode(batch(4, [event(1, "REFUSE"), event(2)]))
                      + book_frame("REFUSE") + encode({**orjson.loads(book_frame("ok")[:-2]),
                                                       "event.id": "b:1"}))
    [reply] = await client.replies(1)
    assert reply == {"key": 4, "errorcode": 0, "acked": 1, "features": FEATURES, "rejected": [[0, "bad_timestamp"]]}
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 2, what="the good events")
    assert ids(srv.config.data_dir) == ["goods-x:2", "b:1"]
    assert srv.ingest.stats["rejected"] == {"bad_timestamp": 1}
    assert bad_frames(await metrics(srv.config.http_port), "bad_timestamp") == 1
    assert await client.read_for(0.2) == bytes(client.received), "a book packet is never answered"
    await client.close()


async def test_a_batch_too_deep_to_decode_at_all_is_refused(start_logs):
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    good = encode(batch(5, [event(1)]))
    deep = good.replace(b"]]}}", b',{"x":' + DEEP.encode() + b"}]]}}").replace(b'"key":5', b'"key":6')
    await client.send(deep + encode(batch(7, [event(2)])))
    replies = sorted(await client.replies(2), key=lambda r: r["key"])
    assert replies[0]["key"] == 6 and replies[0]["errorcode"] == 400, replies
    assert replies[1] == {"key": 7, "errorcode": 0, "acked": 1, "features": FEATURES}
    assert ids(srv.config.data_dir) == ["goods-x:2"]
    assert bad_frames(await metrics(srv.config.http_port), "too_deep") == 1
    await client.close()


@pytest.mark.parametrize("head", [
    b'{"uri":"/logs","key":1,"params":{"ack":true,',  # ack inside params: not an acked batch
    b'{"uri":"/logs","m":"{\\"key\\":1,\\"ack\\":true}","params":',  # inside a string
    b'{"uri":"/logs","ack":true,"params":{"key":3,',  # key inside params only
])
def test_only_a_top_level_key_and_ack_make_an_acked_batch(head):
    assert tcp.acked_key(head) is None


def test_acked_key_reads_what_the_shipper_writes():
    assert tcp.acked_key(encode(batch(12, [event(1)]))) == 12
    assert tcp.acked_key(b'{"key": "k-1", "ack": true, "params":') == "k-1"


async def test_a_batch_that_fails_half_way_is_answered_and_its_resend_stored(start_logs, monkeypatch):
    """An error nobody foresaw: a 500, nothing of the batch stored or taken as received."""
    real = tcp.request_event
    broken = {"on": True}

    def request_event(raw, **kw):
        if broken["on"] and "BUG" in raw:
            raise KeyError("a bug")
        return real(raw, **kw)

    monkeypatch.setattr(tcp, "request_event", request_event)
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    packet = encode(batch(1, [event(1), event(2, "BUG"), event(3)]))
    await client.send(packet)
    [reply] = await client.replies(1)
    assert reply["key"] == 1 and reply["errorcode"] == 500
    broken["on"] = False
    await client.send(packet.replace(b'"key":1', b'"key":2'))
    replies = await client.replies(2)
    assert replies[1] == {"key": 2, "errorcode": 0, "acked": 3, "features": FEATURES}
    assert ids(srv.config.data_dir) == ["goods-x:1", "goods-x:2", "goods-x:3"]
    assert srv.ingest.stats["duplicates"] == 0
    await client.close()
