"""The sink's work on the event loop in steps (encode.py) and its _bulk answer reader
(client.py): the same bytes and verdicts as the one-call versions they replace."""

from __future__ import annotations

import gzip

import orjson
import pytest

from logmesh.logs.sinks.elasticsearch import encode
from logmesh.logs.sinks.elasticsearch.client import BulkAnswer, loads_answer
from logmesh.logs.sinks.elasticsearch.encode import encode_block, encode_stepwise, gzip_stepwise

from .test_encode import book_lines, stored


@pytest.fixture
def small_steps(monkeypatch):
    monkeypatch.setattr(encode, "STEP_BYTES", 300)  # a few lines per step
    monkeypatch.setattr(encode, "GZIP_STEP", 1000)


def same(a, b) -> None:
    assert a is not None and b is not None
    assert (a.seqs, a.lines, a.body, a.end, a.docs, a.unreadable, a.received_ms) == \
        (b.seqs, b.lines, b.body, b.end, b.docs, b.unreadable, b.received_ms)


async def test_stepwise_encoding_equals_one_block(small_steps):
    data = stored(*({"message": f"m{i}", "params": {"i": i} if i % 7 else "x"} for i in range(60)))
    same(await encode_stepwise(data), encode_block(data))
    for limit, most in ((25, None), (None, 17), (40, 33), (59, 100)):
        same(await encode_stepwise(data, limit, most), encode_block(data, limit, most))
    assert await encode_stepwise(data, 0) is None  # nothing durable yet


async def test_stepwise_book_packets_and_damage_equal_one_block(small_steps):
    data = book_lines([{"uri": f"/goods/{i}", "method": "GET", "key": f"k{i}",
                        "params": {"id": i}} for i in range(40)])
    block = await encode_stepwise(data)
    same(block, encode_block(data))
    assert len(block.docs) == 40  # the derived fields, indexed across the steps
    lines = data.splitlines(keepends=True)
    damaged = b"".join(lines[:10]) + b"garbage\n" + b"".join(lines[10:])
    block = await encode_stepwise(damaged)
    same(block, encode_block(damaged))
    assert [raw for raw, _ in block.unreadable] == [b"garbage"] and len(block.seqs) == 40


async def test_stepwise_gzip_is_one_gzip_member(small_steps):
    body = stored(*({"message": f"m{i}"} for i in range(200)))
    packed = await gzip_stepwise(body)
    assert gzip.decompress(packed) == body and len(packed) < len(body) / 3


def test_a_bulk_answer_reads_the_same_as_structs_and_as_dicts():
    raw = orjson.dumps({"errors": True, "items": [
        {"create": {"_id": "1", "status": 201}},
        {"create": {"_id": "2", "status": 409, "error": {"type": "version_conflict_engine_exception"}}},
        {"create": {"_id": "3", "status": 400, "error": {"type": "mapper_parsing_exception"}}}]})
    fast, plain = BulkAnswer(loads_answer(raw)), BulkAnswer(orjson.loads(raw))
    assert not isinstance(loads_answer(raw), dict)  # the struct path was taken
    assert (fast.errors, len(fast), fast.items, fast.item(-1)) == \
        (plain.errors, len(plain), plain.items, plain.item(-1))
    assert fast.item(0) == {"_id": "1", "status": 201}


@pytest.mark.parametrize("raw", [
    b'{"error":{"type":"illegal_argument_exception"},"status":400}',  # a failed request's body
    b'{"errors":false,"items":[{"create":{"_id":"1","status":201}}],"extra":1}',  # another shape
    b'{"name":"node-1","version":{"number":"8.15.0"}}',
])
def test_other_answers_are_read_as_any_json(raw):
    assert loads_answer(raw) == orjson.loads(raw)


def test_an_answer_without_errors_is_checked_on_its_bytes_and_reads_the_same():
    items = [{"create": {"_id": str(i), "status": 201}} for i in (10, 11, 12)]
    raw = orjson.dumps({"errors": False, "took": 3, "items": items})
    fast, plain = BulkAnswer(loads_answer(raw)), BulkAnswer(orjson.loads(raw))
    assert fast._raw is not None and fast._items is None  # the items not read
    assert fast.accepted(3, "10", "12") and plain.accepted(3, "10", "12")
    assert fast._items is None
    for n, first, last in ((2, "10", "12"), (3, "11", "12"), (3, "10", "11"), (3, "1", "12")):
        assert not fast.accepted(n, first, last) and not plain.accepted(n, first, last)
    assert (fast.errors, len(fast), fast.items) == (plain.errors, len(plain), plain.items)


@pytest.mark.parametrize("items", [
    [{"create": {"_id": "12", "status": 201}}, {"create": {"_id": "11", "status": 201}},
     {"create": {"_id": "10", "status": 201}}],  # out of order: not the common answer
    [{"create": {"status": 201, "_id": "10"}}, {"create": {"_id": "{1}", "status": 201}},
     {"create": {"_id": "12", "status": 200}}],  # other key order, braces in an id
])
def test_an_answer_the_bytes_cannot_vouch_for_is_read_item_by_item(items):
    raw = orjson.dumps({"errors": False, "items": items})
    fast, plain = BulkAnswer(loads_answer(raw)), BulkAnswer(orjson.loads(raw))
    want = plain.accepted(3, "10", "12")
    assert fast.accepted(3, "10", "12") == want and want == (items[0]["create"]["_id"] == "10")
    assert fast.items == plain.items
