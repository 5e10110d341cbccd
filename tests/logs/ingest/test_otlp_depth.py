"""One nesting limit for OTLP values, whichever the encoding (otlp.MAX_VALUE_DEPTH).

Before, the protobuf's parser refused a body array 50 deep (49 in an attribute, 33 for
key-value lists in an attribute) as ``bad_protobuf`` while JSON stored 100 and more, and
refused deeper ones per record, as ``bad_field``, or in orjson's words. Now a value at the
limit is stored in both encodings, in a body and in an attribute, as an array or a
key-value list, and one level past it (or hostile thousands) is the same 400, counted."""

from __future__ import annotations

import struct

import orjson
import pytest

from logmesh.logs.ingest.otlp import MAX_VALUE_DEPTH
from tests.logs.ingest.test_otlp import post
from tests.support.logs import metrics, stored

NOW_NS = 1_795_626_000_000_000_000


def json_value(depth: int, kind: str) -> str:
    """An AnyValue ``depth`` levels deep: a string in ``depth - 1`` arrays or kvlists."""
    pre, post_ = (('{"arrayValue":{"values":[', "]}}") if kind == "array"
                  else ('{"kvlistValue":{"values":[{"key":"k","value":', "}]}}"))
    return pre * (depth - 1) + '{"stringValue":"x"}' + post_ * (depth - 1)


def json_body(depth: int, kind: str, place: str) -> bytes:
    value = json_value(depth, kind)
    rec = f'"timeUnixNano":"{NOW_NS}",' + (f'"attributes":[{{"key":"a","value":{value}}}]'
                                            if place == "attribute" else f'"body":{value}')
    return ('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{' + rec + '}]}]}]}').encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: written by hand, as the generated classes' builders stop
    short of these depths."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def protobuf_body(depth: int, kind: str, place: str) -> bytes:
    value = _field(1, b"x")  # AnyValue.string_value
    for _ in range(depth - 1):  # AnyValue.array_value (5): ArrayValue.values (1); kvlist_value
        value = (_field(5, _field(1, value)) if kind == "array"  # (6): values (1): KeyValue
                 else _field(6, _field(1, _field(1, b"k") + _field(2, value))))
    rec = _varint(1 << 3 | 1) + struct.pack("<Q", NOW_NS)  # LogRecord.time_unix_nano
    rec += _field(6, _field(1, b"a") + _field(2, value)) if place == "attribute" else _field(5, value)
    return _field(1, _field(2, _field(2, rec)))  # resource_logs, scope_logs, log_records


ENCODINGS = {"application/json": json_body, "application/x-protobuf": protobuf_body}
SHAPES = [(kind, place) for kind in ("array", "kvlist") for place in ("body", "attribute")]


@pytest.mark.parametrize("ctype", ENCODINGS)
async def test_a_value_at_the_limit_is_stored_and_one_past_it_is_a_400(start_logs, ctype):
    srv = await start_logs()
    make = ENCODINGS[ctype]
    for kind, place in SHAPES:
        status, body, _ = await post(srv, make(MAX_VALUE_DEPTH, kind, place), ctype)
        assert status == 200, (kind, place, body[:300])
    assert len(stored(srv.config.data_dir)) == len(SHAPES)
    refused = 0
    for depth in (MAX_VALUE_DEPTH + 1, 300, 5_000):
        for kind, place in SHAPES:
            status, body, _ = await post(srv, make(depth, kind, place), ctype)
            assert status == 400, (depth, kind, place, status, body[:300])
            assert f"nested deeper than {MAX_VALUE_DEPTH} levels".encode() in body, body[:300]
            refused += 1
    assert len(stored(srv.config.data_dir)) == len(SHAPES)  # nothing of a refused body
    samples = await metrics(srv.config.http_port)
    key = ("logmesh_ingest_rejected_total",
           frozenset({("worker", "0"), ("protocol", "otlp"), ("reason", "too_deep")}))
    assert samples[key] == refused


async def test_a_deep_resource_attribute_is_the_same_400(start_logs):
    srv = await start_logs()
    value = json_value(MAX_VALUE_DEPTH + 1, "kvlist")
    doc = ('{"resourceLogs":[{"resource":{"attributes":[{"key":"a","value":' + value + '}]},'
           '"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}').encode()
    status, body, _ = await post(srv, doc, "application/json")
    assert status == 400 and orjson.loads(body)["message"].startswith("a body or attribute"), body
