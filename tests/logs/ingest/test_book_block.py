"""The ingest hot path for plain book packets (logs/ingest/book_block.py).

A read of nothing but the chapter's log packets is stored without parsing
the logged requests; readers derive their fields from ``message``. These
tests pin down which reads take that path, that the lines it writes are the
events, and that the three places deriving request fields agree: the
per-packet ingest path (``request_event``), DuckDB (``with_request_fields``)
and Python readers (``derive_request``).
"""

from __future__ import annotations

import asyncio

import duckdb
import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmesh.logs.event import derive_request
from logmesh.logs.ingest.book_block import block_head, encode_block, parse_block
from logmesh.logs.ingest.common import Routes, request_event
from logmesh.logs.store.columns import (
    COLUMNS,
    SELECT_LIST,
    read_ndjson_lenient_sql,
    read_ndjson_sql,
)
from logmesh.protocol import parse_nodes
from tests.support.logs import RawClient, book_frame, request_text, stored, wait_until


def frame(**packet) -> bytes:
    return orjson.dumps(packet)


def book(text: str, **extra) -> bytes:
    return frame(uri="/logs", method="POST", key=0, params=text, **extra)


def test_plain_book_packets_take_the_block_path():
    texts = [request_text(i) for i in range(3)] + ["상품 로그", "not json", ""]
    block = parse_block([book(t) for t in texts])
    assert block is not None and block.service is None
    assert [orjson.loads(bytes(m)) for m in block.messages] == texts
    named = parse_block([book("a", **{"service.name": "goods"}), book("b", **{"service.name": "goods"})])
    assert named is not None and named.service == "goods"


@pytest.mark.parametrize("frames", [
    [book("a"), book("b", **{"event.id": "i:1"})],  # a shipper's number: ledger, per packet
    [book("a", **{"@timestamp": 5})],
    [frame(uri="/logs", method="POST", key=1, ack=True, params={"events": []})],
    [book("a"), frame(uri="/logs", method="POST", key=0, params=42)],  # not a log
    [frame(uri="/logs", method="POST", key=0)],  # no params at all
    [book("a", **{"service.name": "goods"}), book("b", **{"service.name": "members"})],
    [book("a"), b'{"uri":"/logs",\n"method":"POST","key":0,"params":"b"}'],  # a raw newline
    [book("a"), b'{"uri":"/logs","method":"POST","key":0,"params":"caf\xe9"}'],  # bad UTF-8
    [b'{"uri":"/logs","method":"POST","key":0,"params":"\\ud800"}'],  # a lone surrogate
    [book("a"), b"not json"],
], ids=["event-id", "timestamp", "batch", "params-number", "no-params", "two-services",
        "newline", "bad-utf8", "lone-surrogate", "garbage"])
def test_anything_else_takes_the_per_packet_path(frames):
    assert parse_block(frames) is None


def test_encoded_block_is_one_event_per_line():
    texts = [request_text(i) for i in range(4)] + ['with "quotes" and \\ and ¶']
    block = parse_block([book(t) for t in texts])
    assert block is not None
    seqs = range(64, 64 + 5 * 64, 64)
    data = encode_block(block.messages, seqs, block_head(1_700_000_000_123, ("127.0.0.1", 4321), "goods"))
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert data.endswith(b"}\n") and len(lines) == 5
    assert [e["seq"] for e in lines] == list(seqs)
    assert [e["message"] for e in lines] == texts
    assert lines[0] | {"message": None} == {
        "seq": 64, "@timestamp": 1_700_000_000_123, "received_at": 1_700_000_000_123,
        "source.address": "127.0.0.1", "source.port": 4321, "log.level": "info",
        "service.name": "goods", "message": None}


# Request texts whose fields the three derivations must agree on.
TEXTS = [
    request_text(7, "t", name="pen"),  # the book's gateway: the key inside params
    '{"uri":"/members","method":"POST","key":3,"params":{"username":"kim"}}',
    '{"uri":"/goods","method":"GET","params":{"key":"k-1"}}',
    '{"uri":"/purchases","method":"DELETE","params":{"id":1,"key":2},"trace.id":"abc"}',
    '{"uri":"/goods","method":"GET"}',
    '{"uri":"/goods","method":"GET","params":[1,2],"key":null}',
    '{"uri":"/상품","method":"GET","params":{"이름":"볼펜","key":5}}',
    '{"uri":"/goods","method":"GET","params":"text params"}',
    '{"unrelated":true}',
    '{"uri":"/goods","method":"POST","params":{"name":"cut \\ud83d","key":6}}',  # Node: half an emoji
    '{"uri":"/goods","method":"POST","params":{"name":"\\ud83d\\ude00 \\\\ud800","key":8}}',
    "[1, 2, 3]",
    "plain text, not a packet",
    "{not json",
]
FIELDS = ("http.request.method", "url.path", "trace.id", "key", "params")


def _ingested(text: str) -> dict:
    """The fields the per-packet path stores for ``text`` (what the block path used to)."""
    ev = request_event(text, ts=1, received_at=1, service=None, instance=None, event_id=None,
                       source=None, routes=Routes())
    return {k: v for k, v in orjson.loads(msgspec.json.encode(ev)).items() if k in FIELDS}


def test_every_reader_derives_what_ingest_would_have_stored(tmp_path):
    lines = [{"seq": i, "@timestamp": 1, "message": t} for i, t in enumerate(TEXTS)]
    path = tmp_path / "w00-0000000000000000.ndjson"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    con = duckdb.connect()
    names = [n for n, _ in COLUMNS]
    for read in (read_ndjson_sql, read_ndjson_lenient_sql):
        rows = con.execute(f"SELECT {SELECT_LIST} FROM {read(str(path))} ORDER BY seq").fetchall()
        for text, row in zip(TEXTS, rows, strict=True):
            got = {n: v for n, v in zip(names, row, strict=True) if n in FIELDS and v is not None}
            if "params" in got:
                got["params"] = orjson.loads(got["params"])
            assert got == _ingested(text), (read.__name__, text)
    for text, line in zip(TEXTS, lines, strict=True):
        derived = derive_request(dict(line))
        assert {k: v for k, v in derived.items() if k in FIELDS} == _ingested(text), text


async def test_a_book_connection_is_named_by_the_route_of_its_requests(start_logs):
    srv = await start_logs()
    srv.routes.update(parse_nodes([{"name": "goods", "port": 9010, "urls": ["GET/goods", "POST/goods"]}]))
    client = await RawClient.connect(srv.config.port)
    await client.send(b"".join(book_frame(request_text(i, "r")) for i in range(3)))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 stored events")
    assert {e.get("service.name") for e in stored(srv.config.data_dir)} == {"goods"}
    assert all(e["url.path"] == "/goods" for e in stored(srv.config.data_dir))
    await client.close()


async def test_a_packet_with_a_raw_newline_is_stored_all_the_same(start_logs):
    """Pretty-printed JSON is still one packet; the splitter's newline flag sends it the slow way."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    pretty = b'{"uri": "/logs",\n "method": "POST",\n "key": 0,\n "params": "pretty"}\xc2\xb6'
    texts = [request_text(i, "nl") for i in range(2)]
    # the newline arrives in the partial frame of one read, its delimiter in the next
    await client.send(book_frame(texts[0]) + pretty[:20])
    await asyncio.sleep(0.05)
    await client.send(pretty[20:] + book_frame(texts[1]))
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 stored events")
    assert [e["message"] for e in stored(srv.config.data_dir)] == [texts[0], "pretty", texts[1]]
    await client.close()


def test_splitter_says_whether_a_frame_may_hold_a_newline():
    from logmesh.protocol import FrameSplitter

    s = FrameSplitter()
    s.feed(b'{"a":1}\xc2\xb6{"b":')
    assert not s.newline
    s.feed(b'\n2}\xc2\xb6')
    assert s.newline
    s.feed(b'{"c":\n')  # held, no frame out
    s.feed(b'3}\xc2\xb6')
    assert s.newline, "a newline in the held partial frame counts too"


def test_the_elasticsearch_document_of_a_book_line_has_the_request_fields():
    from logmesh.logs.sinks.elasticsearch.encode import document, encode_line

    block = parse_block([book(t) for t in TEXTS])
    assert block is not None
    data = encode_block(block.messages, range(64, 64 * (len(TEXTS) + 1), 64),
                        block_head(1_700_000_000_000, ("127.0.0.1", 1), None))
    for text, line in zip(TEXTS, data.splitlines(), strict=True):
        body = orjson.loads(encode_line(line).body)
        assert body == document(derive_request(orjson.loads(line))), text
        assert {k: v for k, v in body.items() if k in FIELDS and k != "params"} == {
            k: v for k, v in _ingested(text).items() if k != "params"}


async def test_lone_surrogates_from_node_are_stored_as_replacement_characters(start_logs):
    """A cut emoji in the logged text or in the request inside it: stored, with U+FFFD."""
    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    outer = b'{"uri":"/logs","method":"POST","key":0,"params":"cut \\ud83d here"}\xc2\xb6'
    inner = (b'{"uri":"/logs","method":"POST","key":0,"params":"{\\"uri\\":\\"/goods\\",'
             b'\\"method\\":\\"POST\\",\\"params\\":{\\"name\\":\\"\\\\ud83d\\",\\"key\\":4}}"}\xc2\xb6')
    await client.send(book_frame(request_text(1, "s")) + outer + inner)
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 stored events")
    events = stored(srv.config.data_dir)
    assert events[1]["message"] == "cut \ufffd here"
    assert events[2]["url.path"] == "/goods" and events[2]["params"] == {"name": "\ufffd", "key": 4}
    assert events[2]["key"] == "4"
    await client.close()


# Any text a service may log, and frames that are book packets or nearly so.
_texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(TEXTS)


@st.composite
def _frames(draw):
    out = []
    for text in draw(st.lists(_texts, min_size=1, max_size=6)):
        frame = book(text, **draw(st.sampled_from([{}, {}, {"service.name": "goods"}, {"x": 1}])))
        if draw(st.integers(0, 5)) == 0:  # damage it: a byte changed, or cut short
            i = draw(st.integers(0, len(frame) - 1))
            frame = frame[:i] + bytes([draw(st.integers(0, 255))]) + frame[i + 1:] \
                if draw(st.booleans()) else frame[:i]
        out.append(frame)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames())
def test_a_block_is_stored_exactly_or_not_at_all(frames):
    """Whatever the frames, the block path writes one valid line per packet with its text, or
    declines: a line it wrote wrong would be cut by crash recovery with all after it."""
    block = parse_block(frames)
    if block is None:
        return
    data = encode_block(block.messages, range(64, 64 * (len(frames) + 1), 64),
                        block_head(1, ("127.0.0.1", 1), block.service))
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert len(lines) == len(frames)
    for frame, line in zip(frames, lines, strict=True):
        packet = orjson.loads(frame)
        assert line["message"] == packet["params"] and line["seq"] % 64 == 0
        assert set(packet) <= {"uri", "method", "key", "params", "service.name"}


# -- defect 7 of issue 14: a deeply nested packet costs only itself ------------------------

DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def test_a_block_too_deep_to_decode_goes_the_per_packet_way():
    deep = b'{"uri":"/logs","method":"POST","key":0,"params":' + DEEP_OBJECT + b"}"
    assert parse_block([book("a"), deep, book("b")]) is None


@pytest.mark.parametrize("one_read", [False, True], ids=["separate-writes", "one-write"])
async def test_a_deeply_nested_book_packet_costs_only_itself(start_logs, one_read):
    from tests.support.logs import bad_frames, metrics

    srv = await start_logs()
    client = await RawClient.connect(srv.config.port)
    # object params 100k deep (parse_block), then a first request 1000 deep (the service lookup)
    deep_params = b'{"uri":"/logs","method":"POST","key":0,"params":' + DEEP_OBJECT + b"}\xc2\xb6"
    deep_request = book_frame('{"uri":"/goods","method":"GET","params":' + "[" * 1000 + "]" * 1000 + "}")
    good = [request_text(i, "deep") for i in range(3)]
    stream = [book_frame(good[0]), deep_params, book_frame(good[1]), deep_request, book_frame(good[2])]
    if one_read:
        await client.send(b"".join(stream))
    else:
        for part in stream:
            await client.send(part)
            await asyncio.sleep(0.02)
    # Alone in its read the deep request takes the block path, stored unparsed (readers derive
    # its fields); in one read with the others the per-packet path refuses it as too deep.
    await wait_until(lambda: len(stored(srv.config.data_dir)) == (3 if one_read else 4),
                     what="the good packets")
    messages = [e["message"] for e in stored(srv.config.data_dir)]
    assert [m for m in messages if m in good] == good, "the packets around the deep ones are stored"
    assert bad_frames(await metrics(srv.config.http_port), "too_deep") == (2 if one_read else 1)
    assert await client.read_for(0.2) == b"" and not client.eof, "never answered, never closed"
    await client.send(book_frame("after"))
    await wait_until(lambda: stored(srv.config.data_dir)[-1]["message"] == "after", what="after")
    await client.close()
