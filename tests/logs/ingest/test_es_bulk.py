"""The Elasticsearch bulk API and its probes on the logs service (issue 19)."""

from __future__ import annotations

import base64

import aiohttp
import msgspec
import orjson

from tests.support.logs import HOST, metrics, stored


async def call(srv, method: str, path: str, body: bytes | None = None, **headers) -> tuple[int, dict, dict]:
    url = f"http://{HOST}:{srv.config.http_port}{path}"
    async with aiohttp.ClientSession() as s, s.request(method, url, data=body, headers={
            "Content-Type": "application/x-ndjson", **headers}) as resp:
        raw = await resp.read()
        return resp.status, (orjson.loads(raw) if raw else {}), dict(resp.headers)


def ndjson(*objs) -> bytes:
    return b"".join((o if isinstance(o, bytes) else orjson.dumps(o)) + b"\n" for o in objs)


async def test_a_broken_line_in_the_middle_is_its_own_error_and_the_rest_is_stored(start_logs):
    srv = await start_logs()
    body = ndjson({"index": {"_index": "app-logs"}},
                  {"@timestamp": "2026-11-25T17:00:00.5Z", "message": "first",
                   "log": {"level": "warn"}, "service": {"name": "nginx"}, "host": {"name": "web-1"}},
                  {"create": {}}, b'{"message": "torn',
                  {"create": {"_index": "other"}}, {"message": "third", "status": 7},
                  {"delete": {"_id": "x"}},
                  {"update": {"_id": "y"}}, {"doc": {"a": 1}})
    status, answer, headers = await call(srv, "POST", "/app-logs/_bulk", body)
    assert status == 200 and headers["X-Elastic-Product"] == "Elasticsearch"
    assert answer["errors"] is True
    ops = [next(iter(item)) for item in answer["items"]]
    assert ops == ["index", "create", "create", "delete", "update"]
    statuses = [next(iter(item.values()))["status"] for item in answer["items"]]
    assert statuses == [201, 400, 201, 400, 400]
    broken = answer["items"][1]["create"]
    assert broken["error"]["type"] == "document_parsing_exception" and broken["_index"] == "app-logs"
    first, third = stored(srv.config.data_dir)
    assert answer["items"][0]["index"]["_id"] == str(first["seq"])
    assert first["message"] == "first" and first["@timestamp"] == 1795626000500
    assert first["log.level"] == "warn" and first["service.name"] == "nginx"
    assert first["labels"] == {"host.name": "web-1", "es.index": "app-logs"}
    assert third["labels"] == {"status": 7, "es.index": "other"}
    samples = await metrics(srv.config.http_port)
    by_reason = {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                 if name == "logmesh_ingest_rejected_total" and ("protocol", "elasticsearch") in labels}
    assert by_reason == {"bad_document": 1, "unsupported_action": 2}


async def test_probes_answer_as_elasticsearch(start_logs):
    srv = await start_logs()
    status, info, headers = await call(srv, "GET", "/", Accept="application/json")
    assert status == 200 and info["version"]["number"].startswith("8.")
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert (await call(srv, "GET", "/_license"))[1]["license"]["status"] == "active"
    assert (await call(srv, "GET", "/_nodes/http"))[0] == 200
    assert (await call(srv, "HEAD", "/_index_template/filebeat-8"))[0] == 200
    assert (await call(srv, "PUT", "/_index_template/filebeat-8", b"{}"))[1] == {"acknowledged": True}
    async with aiohttp.ClientSession() as s, s.get(f"http://{HOST}:{srv.config.http_port}/",
                                                   headers={"Accept": "text/html,*/*"}) as resp:
        assert resp.content_type == "text/html"  # a browser still gets the web UI


async def test_empty_and_unreadable_bodies(start_logs):
    srv = await start_logs()
    status, answer, _ = await call(srv, "POST", "/_bulk", b"\n\n")
    assert status == 400 and answer["error"]["type"] == "action_request_validation_exception"
    status, answer, _ = await call(srv, "POST", "/_bulk", ndjson(b"{not json", {"message": "x"}))
    assert status == 200 and answer["errors"] and answer["items"][0]["index"]["status"] == 400
    assert stored(srv.config.data_dir) == []


async def test_basic_and_api_key_carry_the_write_token(start_logs):
    from logmesh.security import ServerSecurity

    token = "w" * 24
    srv = await start_logs(security=ServerSecurity(write_token=token))
    body = ndjson({"index": {}}, {"message": "m"})
    assert (await call(srv, "POST", "/_bulk", body))[0] == 401
    basic = base64.b64encode(f"elastic:{token}".encode()).decode()
    assert (await call(srv, "POST", "/_bulk", body, Authorization=f"Basic {basic}"))[0] == 200
    api_key = base64.b64encode(f"logmesh:{token}".encode()).decode()
    assert (await call(srv, "POST", "/_bulk", body, Authorization=f"ApiKey {api_key}"))[0] == 200
    wrong = base64.b64encode(b"elastic:nope").decode()
    assert (await call(srv, "POST", "/_bulk", body, Authorization=f"Basic {wrong}"))[0] == 403  # reads are open here
    assert len(stored(srv.config.data_dir)) == 2


async def test_a_shippers_write_token_passes_the_probes_when_tokens_are_separate(start_logs):
    """Filebeat and Logstash probe `_license`, `_nodes` and templates before they send: with
    separate read and write tokens a shipper holds only the write token, and must not be
    refused there (the probes answer constants, no stored data)."""
    from logmesh.security import ServerSecurity

    write, read = "w" * 24, "r" * 24
    srv = await start_logs(security=ServerSecurity(write_token=write, read_token=read))
    auth = {"Authorization": f"Bearer {write}"}
    for method, path in [("GET", "/_license"), ("GET", "/_nodes/http"), ("GET", "/_xpack"),
                         ("HEAD", "/_index_template/filebeat-8"), ("GET", "/_ilm/policy/filebeat"),
                         ("PUT", "/_index_template/filebeat-8")]:
        assert (await call(srv, method, path, b"{}" if method == "PUT" else None, **auth))[0] == 200, path
        assert (await call(srv, method, path, b"{}" if method == "PUT" else None))[0] == 401, path
    # the read token still opens them, and the write token still opens no data
    assert (await call(srv, "GET", "/_license", Authorization=f"Bearer {read}"))[0] == 200
    assert (await call(srv, "GET", "/api/v1/search?q=*", **auth))[0] == 403


async def test_items_name_an_index_when_the_request_named_none(start_logs):
    """Elasticsearch never answers an item with a null `_index`; clients that decode it into a
    string (Rust's serde, Go's structs) fail on null. `logs` is named, and no label is added."""
    srv = await start_logs()
    for body in (ndjson({"create": {}}, {"message": "a"}, {"create": {}}, {"message": "b"}),
                 ndjson({"create": {}}, {"message": "c"}, {"index": {}}, b"{torn")):
        status, answer, _ = await call(srv, "POST", "/_bulk", body)
        assert status == 200
        assert [next(iter(i.values()))["_index"] for i in answer["items"]] == ["logs", "logs"]
    assert all("labels" not in e for e in stored(srv.config.data_dir))


async def test_a_uniform_body_of_flat_documents_is_answered_item_by_item(start_logs):
    """The fast path (one repeated action, flat documents) answers as the per-item path does."""
    srv = await start_logs()
    docs = [{"message": f"m{i}", "service.name": "vec", "@timestamp": 1795626000000 + i} for i in range(3)]
    body = ndjson(*[x for d in docs for x in ({"create": {"_index": "vector-1"}}, d)])
    status, answer, _ = await call(srv, "POST", "/_bulk", body)
    assert status == 200 and answer["errors"] is False
    events = stored(srv.config.data_dir)
    assert [item["create"]["_id"] for item in answer["items"]] == [str(e["seq"]) for e in events]
    assert all(item["create"]["status"] == 201 and item["create"]["_index"] == "vector-1"
               for item in answer["items"])
    assert [e["message"] for e in events] == ["m0", "m1", "m2"]
    assert all(e["labels"] == {"es.index": "vector-1"} and e["service.name"] == "vec" for e in events)


async def test_one_repeated_action_with_a_broken_document_in_the_middle(start_logs):
    """Filebeat's shape (one action, nested documents) with a torn document: its item is a 400."""
    srv = await start_logs()
    action = {"create": {"_index": "filebeat-8"}}
    body = ndjson(action, {"message": "a", "host": {"name": "h"}}, action, b'{"message": "to',
                  action, {"message": "c", "log": {"level": "error"}})
    status, answer, _ = await call(srv, "POST", "/_bulk", body)
    assert status == 200 and answer["errors"] is True
    assert [i["create"]["status"] for i in answer["items"]] == [201, 400, 201]
    assert "line 4" in answer["items"][1]["create"]["error"]["reason"]
    a, c = stored(srv.config.data_dir)
    assert [answer["items"][0]["create"]["_id"], answer["items"][2]["create"]["_id"]] == \
        [str(a["seq"]), str(c["seq"])]
    assert a["labels"] == {"host.name": "h", "es.index": "filebeat-8"} and c["log.level"] == "error"


async def test_filter_path_cuts_the_answer_as_beats_ask(start_logs):
    srv = await start_logs()
    fp = "?filter_path=errors,items.*.error,items.*.status"
    uniform = ndjson({"create": {}}, {"message": "a"}, {"create": {}}, {"message": "b"})
    status, answer, _ = await call(srv, "POST", "/_bulk" + fp, uniform)
    assert status == 200
    assert answer == {"errors": False, "items": [{"create": {"status": 201}}] * 2}
    mixed = ndjson({"create": {}}, {"message": "a"}, {"index": {}}, b"{torn")
    status, answer, _ = await call(srv, "POST", "/_bulk" + fp, mixed)
    assert answer["errors"] is True and set(answer) == {"errors", "items"}
    assert answer["items"][0] == {"create": {"status": 201}}
    assert set(answer["items"][1]["index"]) == {"status", "error"}
    status, answer, _ = await call(srv, "POST", "/_bulk?filter_path=took", uniform)
    assert set(answer) == {"took"}
    assert len(stored(srv.config.data_dir)) == 5


async def test_a_large_answer_arrives_whole(start_logs):
    """An answer over 256 KiB is written in pieces (http_routes.write_in_pieces)."""
    srv = await start_logs()
    body = ndjson(*[x for i in range(3000) for x in ({"index": {"_index": "big"}}, {"message": f"m{i}"})])
    status, answer, headers = await call(srv, "POST", "/_bulk", body)
    assert status == 200 and headers["X-Elastic-Product"] == "Elasticsearch"
    assert int(headers["Content-Length"]) > 256 * 1024
    assert len(answer["items"]) == 3000 and not answer["errors"]
    assert [i["index"]["_id"] for i in answer["items"]] == [str(e["seq"]) for e in stored(srv.config.data_dir)]


def test_a_filebeat_body_takes_one_pass_and_stores_what_the_per_document_path_would():
    """One repeated action before nested ECS documents: decoded in one C pass (uniform, no
    items), each event as es_bulk's per-document path makes it; the answer's items, from one
    byte template, are what the per-item answer says of the same events."""
    from logmesh.logs.ingest import es_bulk

    action = {"create": {"_index": "filebeat-8"}}
    docs = [{"@timestamp": f"2026-11-25T17:00:0{i}.5Z", "message": f"m{i}", "service": {"name": "nginx"},
             "log": {"level": "warn"}, "host": {"name": f"web-{i % 2}"}} for i in range(5)]
    body = ndjson(*[x for d in docs for x in (action, d)])
    fast = es_bulk.parse_bulk(body, None, 1795626009999)
    assert fast.uniform == ("create", "filebeat-8") and not fast.items and not fast.rejected
    slow = es_bulk.BulkParse()
    for i, d in enumerate(docs):
        slow.document("create", "filebeat-8", orjson.dumps(d), 1795626009999, 2 * i + 2)
    for parsed in (fast, slow):
        for seq, ev in enumerate(parsed.events, 1000):
            ev.seq = seq * 4
    assert [orjson.loads(msgspec.json.encode(e)) for e in fast.events] == \
        [orjson.loads(msgspec.json.encode(e)) for e in slow.events]
    assert orjson.loads(es_bulk.bulk_response(fast, 3)) == orjson.loads(es_bulk.bulk_response(slow, 3))
    assert orjson.loads(es_bulk.bulk_response(fast, 3, "errors,items.*.error,items.*.status")) == \
        {"errors": False, "items": [{"create": {"status": 201}}] * 5}


def test_blank_lines_in_a_uniform_body_are_skipped_not_paired_wrongly():
    """The fast path pairs lines by position after dropping the actions; a blank line must
    not shift a document onto the wrong action or lose one."""
    from logmesh.logs.ingest import es_bulk

    a = b'{"index":{"_index":"x"}}'
    body = a + b"\n" + b'{"message":"m1"}\n\n' + a + b"\n" + b'{"message":"m2"}\n'
    parsed = es_bulk.parse_bulk(body, None, 1795626009999)
    assert [orjson.loads(msgspec.json.encode(e))["message"] for e in parsed.events] == ["m1", "m2"]
    assert [item[3] for item in parsed.items] in ([], [201, 201])
    missing = a + b"\n\n" + a + b"\n" + b'{"message":"m2"}\n'  # the first action has no document
    assert es_bulk._uniform(missing, None, 1795626009999) is None  # the general loop reads it


async def test_a_chunked_body_over_the_limit_is_a_413_and_the_next_is_stored(start_logs):
    """http_routes.read_whole reads the body itself (one copy, not aiohttp's two): it keeps
    --max-body-size for a body with no Content-Length, and stores nothing of the refused one."""
    srv = await start_logs(max_body_bytes=1 << 20)
    line = ndjson({"create": {}}, {"message": "x" * 200})

    async def pieces():
        for _ in range((2 << 20) // len(line)):
            yield line

    url = f"http://{HOST}:{srv.config.http_port}/_bulk"
    async with aiohttp.ClientSession() as s, s.post(url, data=pieces(), headers={
            "Content-Type": "application/x-ndjson"}) as resp:
        assert resp.status == 413
    status, answer, _ = await call(srv, "POST", "/_bulk", ndjson({"create": {}}, {"message": "kept"}))
    assert status == 200 and answer["items"][0]["create"]["status"] == 201
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["kept"]


async def test_documents_of_the_gateways_service_name_are_stored(start_logs):
    """The health monitor's counts (gateway_counts.py) see every block the store takes, and
    read the gateway's access logs' labels: a bulk body's documents keep theirs as JSON text
    (``msgspec.Raw``), which they read as a dict, so such a body was answered 500 and nothing
    stored."""
    srv = await start_logs()
    doc = {"@timestamp": 1795626000000, "service.name": "gateway", "message": "GET /goods 200"}
    nested = {"@timestamp": "2026-11-25T17:00:00Z", "service": {"name": "gateway"},
              "host": {"name": "h"}, "message": "GET /goods 200"}  # Filebeat's shape
    for body in (ndjson({"create": {"_index": "gw"}}, doc), ndjson({"create": {"_index": "gw"}}, nested)):
        status, answer, _ = await call(srv, "POST", "/_bulk", body)
        assert status == 200 and answer["items"][0]["create"]["status"] == 201
    found = stored(srv.config.data_dir)
    assert [e["labels"]["es.index"] for e in found] == ["gw", "gw"]
    assert {e["service.name"] for e in found} == {"gateway"}


async def test_an_index_name_elasticsearch_refuses_is_the_items_400_and_the_rest_stored(start_logs):
    """An action's ``_index`` (or the URL's) that Elasticsearch refuses is that item's 400
    ``invalid_index_name_exception``, counted ``bad_index``; its neighbours are stored."""
    from tests.support.logs import metrics, stored

    srv = await start_logs()
    body = ndjson({"index": {"_index": "ok"}}, {"message": "a"},
                  {"index": {"_index": ".."}}, {"message": "b"},
                  {"create": {"_index": "Upper", "_id": "u"}}, {"message": "c"},
                  {"index": {}}, {"message": "d"})
    status, answer, _ = await call(srv, "POST", "/_bulk", body)
    assert status == 200 and answer["errors"] is True
    got = [(op, item["status"], item.get("error", {}).get("type")) for row in answer["items"]
           for op, item in row.items()]
    assert got == [("index", 201, None), ("index", 400, "invalid_index_name_exception"),
                   ("create", 400, "invalid_index_name_exception"), ("index", 201, None)]
    assert answer["items"][1]["index"]["error"]["reason"] == "Invalid index name [..], must not be '.' or '..'"
    assert sorted(e["message"] for e in stored(srv.config.data_dir)) == ["a", "d"]
    status, answer, _ = await call(srv, "POST", "/Logs/_bulk", ndjson({"index": {}}, {"message": "e"}) * 3)
    assert status == 200 and [r["index"]["status"] for r in answer["items"]] == [400] * 3
    samples = await metrics(srv.config.http_port)
    assert {dict(labels)["reason"]: v for (name, labels), v in samples.items()
            if name == "logmesh_ingest_rejected_total"} == {"bad_index": 5}
