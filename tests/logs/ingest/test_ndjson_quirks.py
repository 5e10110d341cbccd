"""What ``POST /api/v1/logs`` tells a sender about the lines it could not store, found from
outside: the body's line is named whatever the reason (``too_large`` named the event's
position among the good ones), bytes that are not UTF-8 are named as such with where they
are (orjson's words were "surrogates not allowed"), and a key named twice keeps its last
value on every path (docs/api.md, "Duplicate keys", says why it is not refused)."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.ingest.es_bulk import parse_bulk
from logmesh.logs.ingest.http_ndjson import parse_body
from logmesh.logs.ingest.jsonlines import line_event
from logmesh.logs.store import layout
from tests.logs.ingest.test_ingest_http import post
from tests.support.logs import stored


async def test_too_large_names_the_line_of_the_body(start_logs, monkeypatch):
    monkeypatch.setattr(layout, "MAX_LINE_BYTES", 400)
    srv = await start_logs()
    body = b"\n".join([
        orjson.dumps({"message": "first"}),           # 1
        b"",                                          # 2: blank
        b'{"message": "broken"',                      # 3: not JSON
        orjson.dumps({"message": "big " + "x" * 500}),  # 4: its line would pass the longest
        orjson.dumps({"message": "last"}),            # 5
    ])
    status, answer = await post(srv, body)
    assert status == 200, answer
    assert (answer["accepted"], answer["rejected"]) == (2, 2), answer
    assert [(e["line"], e["reason"]) for e in answer["errors"]] == [(3, "bad_json"), (4, "too_large")]
    assert "line 4" in answer["errors"][1]["error"], answer
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["first", "last"]


async def test_too_large_on_the_fast_path_names_the_line_past_a_blank_one(start_logs, monkeypatch):
    """Flat documents are decoded in one pass (http_ndjson.flat_events), which skips blank lines."""
    monkeypatch.setattr(layout, "MAX_LINE_BYTES", 400)
    srv = await start_logs()
    body = b"\n".join([orjson.dumps({"message": "a"}), b"", b"",
                       orjson.dumps({"message": "x" * 500}), orjson.dumps({"message": "b"})]) + b"\n"
    status, answer = await post(srv, body)
    assert status == 200 and [(e["line"], e["reason"]) for e in answer["errors"]] == [(4, "too_large")], answer


async def test_a_body_of_one_line_too_large_is_413_naming_it(start_logs, monkeypatch):
    monkeypatch.setattr(layout, "MAX_LINE_BYTES", 400)
    srv = await start_logs()
    status, answer = await post(srv, b"\n" + orjson.dumps({"message": "x" * 500}))
    assert status == 413 and answer["errors"][0]["line"] == 2, answer


@pytest.mark.parametrize("bad", [b"\xff", b"\xed\xa0\x80", b"\xc3"])  # a stray byte, a surrogate, a cut character
def test_bytes_that_are_not_utf8_are_named_with_their_place(bad):
    line = b'{"message": "ok ' + bad + b' then"}'
    events, errors = parse_body(orjson.dumps({"message": "fine"}) + b"\n" + line + b"\n")
    assert len(events) == 1
    [error] = errors
    assert error["line"] == 2 and error["reason"] == "bad_utf8", error
    assert "invalid UTF-8 at byte 17 of line 2" in error["error"], error
    assert "surrogates" not in error["error"]


def test_an_array_body_names_the_byte_of_the_body():
    body = b'[{"message": "a"}, {"message": "\xff"}]'
    events, errors = parse_body(body)
    assert events == [] and errors[0]["reason"] == "bad_utf8", errors
    assert "invalid UTF-8 at byte 33 of the body" in errors[0]["error"], errors


def test_a_lone_surrogate_escape_is_still_named_as_one():
    """Not a UTF-8 matter: the JSON escape \\ud800 alone. orjson's words say so already."""
    _, [error] = parse_body(b'{"message": "\\ud800"}\n')
    assert error["reason"] == "bad_json" and "surrogate" in error["error"], error


def test_json_lines_over_tcp_and_es_bulk_say_it_the_same_way():
    with pytest.raises(ValueError, match="invalid UTF-8 at byte 14 of the line") as refused:
        line_event(b'{"message": "\xff"}', 0, None)
    assert refused.value.reason == "bad_utf8"
    parsed = parse_bulk(b'{"index": {}}\n{"message": "ok"}\n{"index": {}}\n{"message": "\xff"}\n', "app", 0)
    assert len(parsed.events) == 1
    [(_, _, _, status, error)] = [item for item in parsed.items if item[4] is not None]
    assert status == 400 and parsed.rejected == {"bad_utf8": 1}, parsed.items
    assert error["reason"].startswith("line 4: ") and "invalid UTF-8 at byte 14 of the document" in error["reason"], error


@pytest.mark.parametrize("body", [
    b'{"message": "first", "message": "second"}\n',                       # flat: one C pass
    b'{"message": "first", "user": {"id": 1}, "message": "second"}\n',    # the per-line path
    b'[{"message": "first", "message": "second"}]',                       # an array
])
def test_a_key_named_twice_keeps_its_last_value_on_every_path(body):
    [event], errors = parse_body(body)
    assert errors == []
    assert str(orjson.loads(orjson.dumps(event.message if isinstance(event.message, str)
                                         else orjson.loads(bytes(event.message))))) == "second"
