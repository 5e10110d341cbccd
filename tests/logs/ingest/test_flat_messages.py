"""Flat documents' messages are kept as the JSON strings they came as (http_ndjson.flat_events):
checked, not decoded, and stored as the same JSON string the per-document path stores."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from logmesh.logs.ingest import es_bulk
from logmesh.logs.ingest.http_ndjson import flat_events, parse_body, record_event

RECEIVED = 1795626009999


def lines(events) -> list[dict]:
    return [{k: v for k, v in orjson.loads(msgspec.json.encode(e)).items() if k != "seq"}
            for e in events]


def test_any_json_string_is_stored_as_the_per_document_path_stores_it():
    raw_docs = [b'{"message":"plain"}', b'{"message":""}', b'{"message":"caf\\u00e9 \\"q\\" \\\\ \\n\\t"}',
                '{"message":"c ¶ 끝 😀"}'.encode(), b'{"message":"\\ud83d\\ude00 \\/ slash"}',
                b'{"message":  "spaced" , "service.name":"s"}']
    body = b"\n".join(raw_docs) + b"\n"
    fast = flat_events(body, RECEIVED)
    assert fast is not None
    slow = [record_event(orjson.loads(d), RECEIVED) for d in raw_docs]
    assert lines(fast) == lines(slow)
    assert [line["message"] for line in lines(fast)][2:4] == ['café "q" \\ \n\t', "c ¶ 끝 😀"]


@pytest.mark.parametrize("doc", [b'{"message":null}', b'{"message":7}', b'{"message":{"a":"b"}}',
                                 b'{"message":["x"]}', b'{"message":true}', b'{"log.level":"info"}'])
def test_a_message_that_is_not_a_string_takes_the_per_document_path(doc):
    body = b'{"message":"before"}\n' + doc + b'\n{"message":"after"}\n'
    assert flat_events(body, RECEIVED) is None
    events, errors = parse_body(body)  # what that path makes of it, as before
    assert len(events) + len(errors) == 3 and events[0].message == "before"


def test_bad_utf8_in_a_message_is_refused_with_its_line_and_the_rest_stored():
    body = b'{"message":"ok 1"}\n{"message":"bad \xff\xfe"}\n{"message":"ok 2 \xc3\xa9"}\n'
    assert flat_events(body, RECEIVED) is None
    events, errors = parse_body(body)
    assert [e.message for e in events] == ["ok 1", "ok 2 é"] and [e["line"] for e in errors] == [2]
    surrogate = b'{"message":"\xed\xa0\x80"}\n'  # a UTF-16 surrogate written as UTF-8: not UTF-8
    assert flat_events(surrogate, RECEIVED) is None


def test_a_bulk_body_with_a_bad_utf8_message_answers_that_item_400():
    action = b'{"create":{"_index":"app"}}\n'
    body = action + b'{"message":"ok 1"}\n' + action + b'{"message":"bad \xff"}\n' + \
        action + b'{"message":7}\n' + action + b'{"message":"ok 2"}\n'
    parsed = es_bulk.parse_bulk(body, None, RECEIVED)
    assert [item[3] for item in parsed.items] == [201, 400, 201, 201]
    assert [line["message"] for line in lines(parsed.events)] == ["ok 1", "7", "ok 2"]  # a number made text
