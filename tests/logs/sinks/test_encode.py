"""encode.py and template.py: stored line -> bulk action; schema -> mapping."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.event import FIELD_TYPES
from logmesh.logs.sinks.elasticsearch.config import ElasticsearchConfig
from logmesh.logs.sinks.elasticsearch.encode import BadLine, encode_line
from logmesh.logs.sinks.elasticsearch.template import index_template, mapping_properties


def line(**event) -> bytes:
    return orjson.dumps({"seq": 4160, "@timestamp": 1_760_000_000_000, "received_at": 1_760_000_000_005,
                         **event})


def test_a_line_goes_as_it_is_stored():
    raw = line(message="hi", params={"id": 7, "name": "x"}, labels={"env": "dev"})
    enc = encode_line(raw, "logs-logmesh-default")
    assert enc.body is raw  # no decode/re-encode on the common path
    assert enc.header == {"create": {"_index": "logs-logmesh-default", "_id": "4160"}}
    assert enc.seq == 4160 and enc.received_ms == 1_760_000_000_005


@pytest.mark.parametrize(("params", "sent"), [
    ("id=7", {"value": "id=7"}),
    ([1, {"a": 2}], {"value": [1, {"a": 2}]}),
    (12, {"value": 12}),
    (None, None),
])
def test_params_that_are_not_objects_are_wrapped(params, sent):
    enc = encode_line(line(params=params), "t")
    assert orjson.loads(enc.body).get("params") == sent


def test_labels_that_are_not_objects_are_wrapped():
    assert orjson.loads(encode_line(line(labels="x"), "t").body)["labels"] == {"value": "x"}


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'{"seq":"7"}', b'{"message":"no seq"}'])
def test_unusable_lines_are_refused(raw):
    with pytest.raises(BadLine):
        encode_line(raw, "t")


def test_received_at_falls_back_to_timestamp():
    assert encode_line(orjson.dumps({"seq": 1, "@timestamp": 5}), "t").received_ms == 5


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
