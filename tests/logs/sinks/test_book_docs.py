"""book_docs.py: book packets' documents from a batch equal the per-line path's, byte for byte.

The per-line path (encode.py's ``encode_line``: ``derive_request`` and orjson
per line) is what the sink always sent for these lines; the batch must not
change one byte of it, whatever a service logged.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.event import derive_request
from logmesh.logs.sinks.elasticsearch import encode
from logmesh.logs.sinks.elasticsearch.encode import document, encode_block
from tests.logs.sinks.test_encode import book_lines, line_by_line


def deep(levels: int) -> str:
    return '{"d":' * levels + "1" + "}" * levels


HOSTILE = [
    {"uri": "/goods/7", "method": "GET", "key": 57, "params": {"key": 57, "id": 7}},  # the book's gateway
    {"uri": "/상품¶", "method": "PÖST", "key": 'k"\\é', "params": {"name": "blue \"pen\"\n\u2028\x7f😀"}},
    {"uri": "/a", "params": {"key": "in params"}},  # the key kept inside params
    {"uri": "/a", "params": {"key": None}, "key": None},
    {"uri": "/a", "params": {}},
    {"uri": "/a", "method": None, "trace.id": "t-1"},
    {"uri": "/a", "key": 1.5},
    {"uri": "/a", "key": True},
    {"uri": "/a", "key": [1, "x", {"y": None}]},
    {"uri": "/a", "key": {"k": 1}},
    {"uri": "/a", "key": -9223372036854775808, "params": {"max": 18446744073709551615}},
    {"uri": "/a", "params": {"f": [1e300, 1e16, 1.5e-7, -0.0, 0.1, 5e-324, 123456789.123]}},
    {"uri": "/a", "params": {"looks like a number": "1e5 12345678901234567890"}},
    {"method": "DELETE"},  # no path
    {},  # nothing to derive: the line as it is
    '{"uri":"/a","key":1180591620717411303424}',  # past 64 bits: orjson reads a float
    '{"uri":"/a","params":{"n":-1180591620717411303424}}',
    '{"uri":"/a","key":1e400}',  # infinity: orjson refuses the request, nothing derived
    '{"uri":"/a\\ud800","method":"GET"}',  # a lone surrogate
    '{"uri":"\\u00e9\\/","method":"GET","key":"\\u0041"}',  # escapes a writer would not use
    '{"uri":"/a","uri":"/b","params":{"x":1},"params":{"y":2}}',  # repeated keys: the last wins
    '{"uri":"/a","method":"GET","key":1.0e2}',
    ' {"uri":"/spaced" , "key" : 3 } ',
    "{not a json object",
    '{"uri":"/a","params":' + deep(300) + "}",  # deeper than orjson writes
    '{"uri":"/a","params":' + deep(1100) + "}",  # deeper than either reads
    {"uri": "/x", "params": "id=7"},  # params not an object
    {"uri": 5, "method": ["GET"]},  # not text
]


@pytest.mark.parametrize("packet", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_packet_among_ordinary_ones_gets_the_per_line_document(packet):
    data = book_lines([{"uri": "/ok", "method": "GET", "key": i} for i in range(3)] + [packet])
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)


def test_the_whole_hostile_sample_in_one_block_and_each_document_as_derive_request_makes_it():
    data = book_lines(HOSTILE * 3)
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)
    for i, line in enumerate(block.lines):
        if i in block.docs and len(line) < 4000:  # the deep ones: nothing derived, or past orjson
            want = document(derive_request(orjson.loads(line)))
            assert orjson.loads(block.docs[i]) == want
        assert block.subset_body([i]).split(b"\n")[1] == block.docs.get(i, line)


def test_ordinary_packets_take_the_batch_path_and_only_suspects_go_one_by_one(monkeypatch):
    calls = []
    per_line = encode.encode_line
    monkeypatch.setattr(encode, "encode_line", lambda line: calls.append(line) or per_line(line))
    packets = [{"uri": f"/goods/{i}", "method": "GET", "key": i, "params": {"key": i, "price": i / 4}}
               for i in range(300)]
    packets[100]["params"]["big"] = 1e300  # msgspec writes 1e300, orjson 1e+300: this one by the per-line path
    block = encode_block(book_lines(packets))
    assert block is not None and len(block.docs) == 300
    assert calls == [block.lines[100]]
    monkeypatch.undo()
    assert block.body == line_by_line(book_lines(packets))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)
packets = st.dictionaries(st.sampled_from(["uri", "method", "key", "params", "trace.id", "other"]),
                          json_values | st.dictionaries(st.sampled_from(["key", "id", "uri"]), json_values),
                          max_size=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, min_size=1, max_size=12))
def test_any_requests_get_the_per_line_documents(requests):
    data = book_lines(requests)
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)
