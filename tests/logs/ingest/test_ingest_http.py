"""HTTP ingest: ``POST /api/v1/logs`` with NDJSON or a JSON array (docs/api.md).

Each line is judged alone: bad lines are reported with their line number and
the good ones stored; the request fails (400) only when no line is usable. A
200 means the events are on disk.
"""

from __future__ import annotations

import aiohttp
import orjson

from tests.support.logs import HOST, stored


async def post(srv, body: bytes, content_type: str = "application/x-ndjson") -> tuple[int, dict]:
    url = f"http://{HOST}:{srv.config.http_port}/api/v1/logs"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers={"Content-Type": content_type}) as resp:
            return resp.status, await resp.json()


async def test_ndjson_good_lines_stored_bad_lines_reported_by_number(start_logs):
    srv = await start_logs()
    body = b"\n".join([
        orjson.dumps({"message": "first", "service.name": "billing", "log.level": "warning",
                      "@timestamp": "2026-11-25T17:00:00Z"}),
        b'{"message": "broken"',                               # line 2: not JSON
        b"",                                                   # line 3: blank, skipped
        orjson.dumps({"message": "third", "@timestamp": 1795626000123, "user": {"id": 7}}),
        b"[1, 2]",                                             # line 5: not an object
        orjson.dumps({"message": "x", "@timestamp": "2026-11-25T17:00:00"}),  # 6: no timezone
        orjson.dumps({"message": "last ¶ 끝", "trace.id": "abc", "params": {"a": 1}}),
    ]) + b"\n"
    status, answer = await post(srv, body)
    assert status == 200, answer
    assert answer["accepted"] == 3 and answer["rejected"] == 3
    assert [e["line"] for e in answer["errors"]] == [2, 5, 6]
    assert "parse" in answer["errors"][0]["error"]
    assert "object" in answer["errors"][1]["error"]
    assert "timezone" in answer["errors"][2]["error"]

    events = stored(srv.config.data_dir)  # a 200 means durable: no waiting
    assert [e["message"] for e in events] == ["first", "third", "last ¶ 끝"]
    first, third, last = events
    assert first["service.name"] == "billing" and first["log.level"] == "warning"
    assert first["@timestamp"] == 1795626000000
    assert third["@timestamp"] == 1795626000123 and third["labels"] == {"user": {"id": 7}}
    assert last["trace.id"] == "abc" and last["params"] == {"a": 1}
    assert all(isinstance(e["seq"], int) and e["received_at"] > 0 for e in events)


async def test_json_array_body(start_logs):
    srv = await start_logs()
    items = [{"message": f"m{i}", "service.name": "batch"} for i in range(5)]
    items.insert(2, "not an object")
    status, answer = await post(srv, orjson.dumps(items), "application/json")
    assert status == 200, answer
    assert answer["accepted"] == 5 and answer["rejected"] == 1
    assert answer["errors"] == [{"line": 3, "error": "expected a JSON object, got str", "reason": "bad_event"}]
    assert [e["message"] for e in stored(srv.config.data_dir)] == [f"m{i}" for i in range(5)]


async def test_nothing_usable_is_a_400_with_the_reasons(start_logs):
    srv = await start_logs()
    status, answer = await post(srv, b"nope\n{}\n\xff\xfe\n")
    assert status == 400
    assert answer["ok"] is False and answer["status"] == 400 and answer["accepted"] == 0
    assert [e["line"] for e in answer["errors"]] == [1, 2, 3]
    assert "empty event" in answer["errors"][1]["error"]

    status, answer = await post(srv, b"[1, 2", "application/json")
    assert status == 400 and answer["errors"][0]["line"] == 1

    status, answer = await post(srv, b"")
    assert status == 400 and "empty body" in answer["error"]
    assert stored(srv.config.data_dir) == []


async def test_rejected_lines_are_counted_in_metrics(start_logs):
    srv = await start_logs()
    await post(srv, b'{"message":"ok"}\nbad\nbad\n')
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{HOST}:{srv.config.http_port}/metrics") as resp:
            text = await resp.text()
    assert 'logmesh_discarded_events_total{worker="0"} 2' in text
    assert 'logmesh_stored_events_total{worker="0"} 1' in text


async def test_nested_ecs_objects_map_onto_their_dotted_names(start_logs):
    """{"service": {"name": ...}} is service.name, not a label named "service" (issue 19)."""
    srv = await start_logs()
    line = {"message": "nested", "labels": {"team": "pay"}, "service": {"name": "billing"},
            "http": {"request": {"method": "PUT"}, "response": {"status_code": 503}},
            "url": {"path": "/charge"}, "log": {"level": "error", "logger": "app.pay"},
            "trace": {"id": "t-9"}, "span": {"id": "s-1"}, "user": {"id": 7}}
    status, answer = await post(srv, orjson.dumps(line))
    assert status == 200 and answer["accepted"] == 1, answer
    [event] = stored(srv.config.data_dir)
    assert event["service.name"] == "billing" and event["http.request.method"] == "PUT"
    assert event["http.response.status_code"] == 503 and event["url.path"] == "/charge"
    assert event["log.level"] == "error" and event["log.logger"] == "app.pay"
    assert event["trace.id"] == "t-9"
    assert event["labels"] == {"team": "pay", "span.id": "s-1", "user": {"id": 7}}


async def test_rejected_lines_are_counted_by_reason(start_logs):
    """NDJSON's refusals are counted by reason beside the other protocols' (issue 19), and
    every reason is in the answer: an ISO date out of range is a bad_timestamp too."""
    srv = await start_logs()
    body = (b'{"message":"ok"}\nbad\n{"message":"x","@timestamp":"99999-01-01T00:00:00Z"}\n'
            b'{"message":"x","@timestamp":"yesterday"}\n{"message":"x","@timestamp":-5}\n'
            b'{"message":"x","log.level":["a"]}\n[]\n')
    status, answer = await post(srv, body)
    assert status == 200 and answer["accepted"] == 1
    assert [e["reason"] for e in answer["errors"]] == [
        "bad_json", "bad_timestamp", "bad_timestamp", "bad_timestamp", "bad_field", "bad_event"]
    assert all(e["error"].startswith(e["reason"] + ": ") for e in answer["errors"][1:5])
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{HOST}:{srv.config.http_port}/metrics") as resp:
            text = await resp.text()
    for reason, n in (("bad_json", 1), ("bad_timestamp", 3), ("bad_field", 1), ("bad_event", 1)):
        assert (f'logmesh_ingest_rejected_total{{protocol="ndjson",reason="{reason}",worker="0"}} {n}'
                in text), reason
