"""The labels ``es.id`` and ``es.index`` are the Elasticsearch routes' own (an action's ``_id``
and ``_index``): a sender's are refused, by every source, so the ``_id`` window read back from
the store at start (es_ids_store.py) holds real ``_id``s alone. A document that carried its own
``es.id`` was taken for one stored under that ``_id``, and a real one then not stored."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.ingest import loki, otlp_json
from logmesh.logs.ingest.es_bulk import parse_bulk
from logmesh.logs.ingest.http_ndjson import parse_body

from .runs_support import lines
from .test_field_limits import RECEIVED, otlp_body
from .test_loki_runs import protobuf

OWN = [{"es.id": "x"}, {"labels": {"es.id": "x"}}, {"es.index": "other"}, {"labels": {"es.index": "o"}}]


@pytest.mark.parametrize("own", OWN)
@pytest.mark.parametrize("action", [{"index": {}}, {"index": {"_id": "a"}}, {"create": {"_id": "a"}}])
def test_es_bulk_refuses_the_item(own, action):
    body = orjson.dumps(action) + b"\n" + orjson.dumps({"message": "m", **own}) + b"\n"
    body += orjson.dumps({"index": {}}) + b"\n" + orjson.dumps({"message": "fine"}) + b"\n"
    parsed = parse_bulk(body, "app", RECEIVED)
    assert parsed.rejected == {"reserved_label": 1} and len(parsed.events) == 1
    assert parsed.items[0][3] == 400 and "es.id and es.index" in parsed.items[0][4]["reason"]


def test_es_bulk_still_keeps_its_own_and_nested_es_objects():
    body = orjson.dumps({"index": {"_id": "a"}}) + b"\n" + orjson.dumps({"message": "m", "es": {"id": "x"}}) + b"\n"
    [ev] = parse_bulk(body, "app", RECEIVED).events
    assert orjson.loads(orjson.dumps(ev.labels if isinstance(ev.labels, dict) else bytes(ev.labels))) == {
        "es": {"id": "x"}, "es.index": "app", "es.id": "a"}


@pytest.mark.parametrize("own", OWN)
def test_ndjson_refuses_the_line(own):
    events, errors = parse_body(orjson.dumps({"message": "m", **own}) + b"\n" + orjson.dumps({"message": "ok"}))
    assert len(events) == 1 and len(errors) == 1 and "reserved_label" in orjson.dumps(errors).decode()


def test_otlp_refuses_the_record_and_the_resource():
    for resource, record in ((["es.id"], []), ([], ["es.index"])):
        parsed = otlp_json.parse_json(otlp_body(resource, record), RECEIVED)
        assert lines(parsed) == [] and parsed.rejected == {"reserved_label": 1}


def test_loki_refuses_the_stream_and_the_entry():
    with pytest.raises(loki.BadPush, match="es.id and es.index"):
        loki.parse_protobuf(protobuf(('{es.id="x"}', [(1795626000, 0, "m", {})])), RECEIVED, 1 << 30)
    parsed = loki.parse_protobuf(protobuf(("{}", [(1795626000, 0, "m", {"es.index": "x"})])), RECEIVED, 1 << 30)
    assert lines(parsed) == [] and parsed.rejected == {"reserved_label": 1}
    with pytest.raises(loki.BadPush, match="es.id and es.index"):
        loki.parse_json(orjson.dumps({"streams": [{"stream": {"es.id": "x"}, "values": [["1", "m"]]}]}), RECEIVED)
