"""One rule for what is stored (issue 14): every ingest source refuses, per event and with a
reason, what some reader (recovery's orjson, DuckDB, the sinks) could not read back."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from logmesh.logs.ingest.common import (
    MAX_DEPTH,
    Rejected,
    Routes,
    apply_extra,
    check_json,
    request_event,
)
from logmesh.logs.ingest.http_ndjson import parse_body

NOW = 1_764_000_000_000


def event(raw: str, ts: int = NOW, extra: dict | None = None):
    return request_event(raw, ts=ts, received_at=NOW, service="svc", instance=None, event_id=None,
                         source=("127.0.0.1", 1), routes=Routes(), extra=extra)


def stored_line(ev) -> dict:
    """The line the store would write, read back the way recovery reads it."""
    return orjson.loads(msgspec.json.encode(ev))


def test_a_plain_request_is_stored_with_its_params():
    ev = event('{"uri":"/goods","method":"GET","params":{"key":3,"q":[1,2.5e10]}}')
    assert stored_line(ev)["params"] == {"key": 3, "q": [1, 2.5e10]}


@pytest.mark.parametrize("ts", [10**20, -1, 253_402_300_800_000])
def test_timestamps_outside_1970_to_9999_are_refused(ts):
    with pytest.raises(Rejected) as exc:
        event('{"uri":"/a"}', ts=ts)
    assert exc.value.reason == "bad_timestamp"


def test_a_request_with_an_infinite_number_is_kept_as_text_without_parsed_params():
    raw = '{"uri":"/a","method":"GET","params":{"x":1e999}}'
    line = stored_line(event(raw))
    assert line["message"] == raw and "params" not in line
    assert line["labels"] == {"logmesh.params_error": "bad_number"}
    assert line["url.path"] == "/a"


def test_request_params_nested_past_the_limit_are_kept_as_text_and_just_below_parsed():
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    line = stored_line(event('{"uri":"/a","params":{"x":' + deep + "}}"))
    assert "params" not in line and line["labels"] == {"logmesh.params_error": "too_deep"}
    with pytest.raises(Rejected) as exc:
        check_json(b'{"x":' + deep.encode() + b"}")
    assert exc.value.reason == "too_deep"
    ok = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    assert stored_line(event('{"uri":"/a","params":' + ok + "}"))["params"]


@pytest.mark.parametrize("number", [b"1e999", b"1E+400", b"9" * 400, b"-1e309"])
def test_check_json_refuses_every_number_a_double_cannot_hold(number):
    with pytest.raises(Rejected) as exc:
        check_json(b'{"a":[1,' + number + b"]}")
    assert exc.value.reason == "bad_number"


def test_check_json_passes_big_but_finite_numbers():
    check_json(b'{"a": 1e308, "b": 100000000000000000000, "c": "1e999 in a string", "d": "3e4f"}')


@pytest.mark.parametrize(("field", "value", "stored"), [
    ("http.response.status_code", "500", 500),
    ("http.response.status_code", 404, 404),
    ("service.name", "billing", "billing"),
    ("log.level", 3, "3"),
])
def test_known_fields_are_coerced_where_the_meaning_is_clear(field, value, stored):
    ev = event('{"uri":"/a"}')
    apply_extra(ev, {field: value})
    attr = {"http.response.status_code": "status", "service.name": "service_name",
            "log.level": "level"}[field]
    assert getattr(ev, attr) == stored


@pytest.mark.parametrize(("field", "value"), [
    ("service.name", {"a": 1}),
    ("http.response.status_code", "five hundred"),
    ("http.response.status_code", 10**20),
])
def test_known_fields_of_the_wrong_kind_are_refused_not_stored_as_something_else(field, value):
    ev = event('{"uri":"/a"}')
    with pytest.raises(Rejected) as exc:
        apply_extra(ev, {field: value})
    assert exc.value.reason == "bad_field"


def test_http_ingest_refuses_the_bad_line_and_keeps_the_others():
    body = b"\n".join([
        b'{"message":"ok 1"}',
        b'{"message":"bad ts","@timestamp":1e300}',
        b'{"message":"bad int ts","@timestamp":100000000000000000000}',
        b'{"message":"deep","x":' + b"[" * 300 + b"]" * 300 + b"}",
        b'{"message":"ok 2","service.name":{"a":1}}',
        b'{"message":"ok 3"}',
    ])
    events, errors = parse_body(body)
    assert [e.message for e in events] == ["ok 1", "ok 3"]
    assert [e["line"] for e in errors] == [2, 3, 4, 5]
    for ev in events:
        stored_line(ev)


def test_labels_sent_as_labels_are_the_labels_not_a_label_named_labels():
    """{"labels":{"m":"x1"}} was stored as labels.labels.m, so labels.m:x1 found nothing."""
    events, errors = parse_body(b'{"message":"x","labels":{"m":"x1"},"team":"core"}')
    assert not errors
    assert stored_line(events[0])["labels"] == {"m": "x1", "team": "core"}


def test_flat_documents_store_the_same_line_by_either_path():
    """NDJSON of flat documents is decoded in one C pass (http_ndjson.flat_events); each stored
    line must be what the per-document path (record_event) makes of the same document."""
    from logmesh.logs.ingest.http_ndjson import flat_events, record_event

    docs = [{"message": "a", "@timestamp": 1795626000123, "service.name": "s", "log.level": "warn",
             "http.response.status_code": 503, "url.path": "/p", "http.request.method": "GET",
             "trace.id": "t", "log.logger": "l", "error.stack_trace": "tb", "seq": 9, "received_at": 1},
            {"message": "b", "@timestamp": "2026-11-25T17:00:00.5Z"},
            {"message": "c ¶ 끝"}, {"message": "d", "@timestamp": "2026-11-25T18:00:00.9999996+01:00"}]
    body = b"\n".join(orjson.dumps(d) for d in docs) + b"\n"
    fast = flat_events(body, 1795626009999)
    assert fast is not None
    slow = [record_event(d, 1795626009999) for d in docs]
    def lines(events):  # as stored, but for the seq, which the writer gives
        return [{k: v for k, v in orjson.loads(msgspec.json.encode(e)).items() if k != "seq"}
                for e in events]

    assert lines(fast) == lines(slow)
    # anything else takes the per-document path: a label, a nested object, a float time, no message
    for other in ({"message": "x", "team": "core"}, {"message": "x", "service": {"name": "s"}},
                  {"message": "x", "@timestamp": 1.5}, {"log.level": "info"},
                  {"message": "x", "http.response.status_code": 1000}, {"message": 7},
                  {"message": "x", "@timestamp": None}, {"message": "x", "@timestamp": "2026-11-25T17:00:00"},
                  {"message": "x", "@timestamp": "0001-01-01T00:00:00Z"}):
        assert flat_events(orjson.dumps(other), 1) is None, other


def test_nested_ecs_documents_store_the_same_line_by_either_path():
    """Filebeat's nested ECS documents are decoded in one C pass (http_ndjson.ecs_events); each
    stored line must be what record_event makes of the same document, and any document whose
    line would differ (a null, an empty inner object, an unknown leaf) must take its path."""
    from logmesh.logs.ingest.http_ndjson import ecs_events, record_event

    docs = [{"@timestamp": "2026-11-25T17:00:00.5Z", "message": "a", "service": {"name": "s"},
             "log": {"level": "warn", "logger": "l"}, "host": {"name": "web-1", "os": {"family": "x"}},
             "http": {"request": {"method": "GET"}, "response": {"status_code": 503}},
             "url": {"path": "/p"}, "trace": {"id": "t"}, "error": {"stack_trace": "tb"}},
            {"@timestamp": "2026-11-25T18:00:00.123456789+01:00", "message": "b", "host": "h"},
            {"@timestamp": 1795626000123, "message": "c ¶ 끝", "service": {}, "host": {"name": "web-1"}},
            {"message": "d", "host": None, "log": {}},
            {"message": "e", "http": {"response": {"status_code": None}}},
            {"@timestamp": "2026-11-25T17:00:00.9999996Z", "message": "f"},  # rounded alike
            *[{"@timestamp": "2026-11-25T17:00:01.250Z", "message": f"GET /{i} 200",  # Filebeat's own
               "agent": {"name": "web-1", "type": "filebeat", "version": "8.17.0"},
               "ecs": {"version": "8.0.0"}, "input": {"type": "filestream"},
               "host": {"name": "web-1", "ip": ["10.0.0.1"]},
               "log": {"offset": 1000 * i, "file": {"path": f"/var/log/{i % 2}.log"}}}
              for i in range(3)],
            {"message": "g", "log": {"file": {}, "offset": 0}}, {"message": "h", "agent": "x"}]
    body = b"\n".join(orjson.dumps(d) for d in docs) + b"\n"
    fast = ecs_events(body, 1795626009999, {"es.index": "filebeat"})
    assert fast is not None
    slow = [record_event(d, 1795626009999) for d in docs]
    for ev in slow:
        ev.labels = {**(ev.labels or {}), "es.index": "filebeat"}

    def lines(events):  # as stored, but for the seq, which the writer gives
        return [{k: v for k, v in orjson.loads(msgspec.json.encode(e)).items() if k != "seq"}
                for e in events]

    assert lines(fast) == lines(slow)
    assert lines(fast)[0]["labels"] == {"host.name": "web-1", "host.os.family": "x", "es.index": "filebeat"}
    assert lines(fast)[7]["labels"] == {
        "agent": {"name": "web-1", "type": "filebeat", "version": "8.17.0"}, "ecs": {"version": "8.0.0"},
        "input": {"type": "filestream"}, "host.name": "web-1", "host.ip": ["10.0.0.1"],
        "log.offset": 1000, "log.file.path": "/var/log/1.log", "es.index": "filebeat"}
    assert ecs_events(b'{"message": "x", "service": {"name": "s"}}', 1)[0].labels == msgspec.Raw(b"")
    for other in ({"message": "x", "log": {"level": None}}, {"message": "x", "http": {"request": {}}},
                  {"message": "x", "service": None}, {"message": "x", "service": {"version": "1"}},
                  {"message": "x", "@timestamp": "2026-11-25T17:00:00"}, {"message": "x", "@timestamp": None},
                  {"message": "x", "@timestamp": "0001-01-01T00:00:00Z"}, {"message": 7},
                  {"service": {"name": "s"}}, {"message": "x", "url": {"path": 7}},
                  {"message": "x", "http": {"response": {"status_code": "200"}}},
                  {"message": "x", "host": {"a": [[[[0]]]] * 1}, "team": "core"},
                  {"message": "x", "log": {"offset": None}}, {"message": "x", "log": {"offset": 1.5}},
                  {"message": "x", "log": {"file": {"path": "p"}, "flags": ["x"]}}):
        assert ecs_events(orjson.dumps(other), 1) is None, other
    deep = b'{"message": "x", "host": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    assert ecs_events(deep, 1) is None  # too deep to store: the per-document path refuses it
