"""encode.py and template.py: stored line -> bulk action; schema -> mapping."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.event import FIELD_TYPES
from logmesh.logs.sinks.elasticsearch.config import ElasticsearchConfig
from logmesh.logs.sinks.elasticsearch.encode import BadLine, action, encode_block, encode_line
from logmesh.logs.sinks.elasticsearch.template import index_template, mapping_properties


def line(**event) -> bytes:
    return orjson.dumps({"seq": 4160, "@timestamp": 1_760_000_000_000, "received_at": 1_760_000_000_005,
                         **event})


def test_a_line_goes_as_it_is_stored():
    raw = line(message="hi", params={"id": 7, "name": "x"}, labels={"env": "dev"})
    enc = encode_line(raw)
    assert enc.body is raw  # no decode/re-encode on the common path
    assert enc.seq == 4160 and enc.received_ms == 1_760_000_000_005


@pytest.mark.parametrize(("params", "sent"), [
    ("id=7", {"value": "id=7"}),
    ([1, {"a": 2}], {"value": [1, {"a": 2}]}),
    (12, {"value": 12}),
    (None, None),
])
def test_params_that_are_not_objects_are_wrapped(params, sent):
    enc = encode_line(line(params=params))
    assert orjson.loads(enc.body).get("params") == sent


def test_labels_that_are_not_objects_are_wrapped():
    assert orjson.loads(encode_line(line(labels="x")).body)["labels"] == {"value": "x"}


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'{"seq":"7"}', b'{"message":"no seq"}'])
def test_unusable_lines_are_refused(raw):
    with pytest.raises(BadLine):
        encode_line(raw)


def test_received_at_falls_back_to_timestamp():
    assert encode_line(orjson.dumps({"seq": 1, "@timestamp": 5})).received_ms == 5


def stored(*events: dict, first: int = 1) -> bytes:
    return b"".join(orjson.dumps({"seq": first + n, "@timestamp": 10 + n, **ev}) + b"\n"
                    for n, ev in enumerate(events))


def line_by_line(data: bytes) -> bytes:
    """The body the per-line encoder makes: what the block encoder must equal."""
    return b"".join(action(e.seq) + e.body + b"\n"
                    for e in map(encode_line, data.splitlines()))


BOOK = '{"uri":"/goods","method":"GET","key":"k1","params":{"id":3},"trace.id":"t9"}'


def test_a_block_of_plain_lines_is_one_substitution():
    data = stored(*({"message": f"m{i}", "params": {"i": i}, "labels": None} for i in range(50)))
    block = encode_block(data)
    assert block is not None and not block.docs and block.end == len(data)
    assert block.seqs == list(range(1, 51)) and block.lines == data.splitlines()
    assert block.body == line_by_line(data) and block.received_ms == 10
    first = block.body.split(b"\n")[:2]
    assert orjson.loads(first[0]) == {"create": {"_id": "1"}} and first[1] == block.lines[0]


def test_lines_that_need_more_than_their_bytes_are_encoded_one_by_one():
    data = stored({"message": "plain", "params": {"a": 1}},
                  {"message": "wrapped", "params": "id=7"},
                  {"message": BOOK},  # a book packet stored unparsed: its request fields derived
                  {"message": "a false alarm", "params": {"labels": "x"}},
                  {"message": "labels a list", "labels": [1, 2]})
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)
    assert set(block.docs) == {1, 2, 4}  # the false alarm goes as it is stored
    book = orjson.loads(block.docs[2])
    assert book["http.request.method"] == "GET" and book["url.path"] == "/goods"
    assert book["key"] == "k1" and book["trace.id"] == "t9" and book["params"] == {"id": 3}
    assert orjson.loads(block.subset_body([1, 4]).split(b"\n")[3])["labels"] == {"value": [1, 2]}


def book_lines(packets: list) -> bytes:
    """Stored lines exactly as ingest/book_block.py writes a read of book packets."""
    from logmesh.logs.ingest.book_block import block_head
    from logmesh.logs.ingest.book_block import encode_block as store_block

    messages = [orjson.dumps(orjson.dumps(p).decode() if not isinstance(p, str) else p) for p in packets]
    return store_block(messages, range(64, 64 * (len(packets) + 1), 64),
                       block_head(1_760_000_000_000, ("127.0.0.1", 5000), "goods"))


def test_book_packets_get_their_request_fields_in_one_pass(monkeypatch):
    from logmesh.logs.sinks.elasticsearch import encode

    data = book_lines([
        {"uri": "/goods", "method": "GET", "key": "k1", "params": {"id": 3}, "trace.id": "t9"},
        {"uri": "/goods/7", "method": "PUT", "params": {"key": "k7", "price": 2.5}},  # key in params
        {"uri": "/members", "method": "GET", "key": 12, "params": None},  # key not text; no params
        {"method": "DELETE"},
        "{not a json object",  # starts like one: stays as it is stored
    ][:4])
    monkeypatch.setattr(encode, "_encode_lines", None)  # the per-line path is not taken
    block = encode_block(data)
    monkeypatch.undo()
    assert block is not None and block.body == line_by_line(data)
    docs = [orjson.loads(block.docs[i]) for i in range(4)]
    assert docs[0]["url.path"] == "/goods" and docs[0]["key"] == "k1" and docs[0]["trace.id"] == "t9"
    assert docs[1]["key"] == "k7" and docs[1]["params"] == {"key": "k7", "price": 2.5}
    assert docs[2]["key"] == "12" and "params" not in docs[2]
    assert docs[3] == {**orjson.loads(block.lines[3]), "http.request.method": "DELETE"}


def test_book_packets_past_one_pass_keep_their_places():
    packets = [{"uri": f"/goods/{i}", "method": "GET"} if i % 3 else {"message": i} for i in range(2500)]
    data = book_lines(packets)
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)
    assert sorted(block.docs) == [i for i in range(2500) if i % 3]
    assert orjson.loads(block.docs[2222])["url.path"] == "/goods/2222"


@pytest.mark.parametrize("packet", [
    {"uri": "/x", "params": "id=7"},  # params not an object: wrapped, one by one
    "{not a json object",
    '{"uri": "/spaced",\n "method": "GET"}',  # a newline in the packet's text
])
def test_book_packets_the_batch_cannot_read_go_one_by_one(packet):
    data = book_lines([{"uri": "/a", "method": "GET"}, packet])
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)


def test_a_block_stops_at_the_limit_and_at_max_events():
    data = stored(*({"message": f"m{i}"} for i in range(10)))
    cut = encode_block(data, limit=4)
    assert cut is not None and cut.seqs == [1, 2, 3, 4]
    assert cut.end == len(b"".join(data.splitlines(keepends=True)[:4])) and cut.body == line_by_line(data[:cut.end])
    assert encode_block(data, limit=0) is None  # nothing durable yet
    few = encode_block(data, max_events=3)
    assert few is not None and few.seqs == [1, 2, 3] and few.body == line_by_line(data[:few.end])


def test_damaged_lines_in_a_block_are_set_aside():
    good = stored({"message": "a"}, {"message": "b"}, first=5)
    lines = good.splitlines(keepends=True)
    data = lines[0] + b"garbage\n" + lines[1]
    block = encode_block(data)
    assert block is not None and block.seqs == [5, 6] and block.end == len(data)
    assert [raw for raw, _ in block.unreadable] == [b"garbage"]
    assert block.body == line_by_line(good)


def test_every_schema_field_is_mapped():
    props = mapping_properties()
    for name, kind in FIELD_TYPES.items():
        node = {"properties": props}
        for part in (name.split(".") if name != "@timestamp" else [name]):
            node = node["properties"][part]
        want = {"object": "flattened"}.get(kind, kind)
        assert node["type"] == want, name


def test_plain_index_template_has_no_data_stream():
    body = index_template(ElasticsearchConfig(urls="http://h:9200", index="logmesh-events"))
    assert body["index_patterns"] == ["logmesh-events"] and "data_stream" not in body
