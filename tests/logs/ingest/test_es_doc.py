"""Elasticsearch's single-document API (es_doc.py): ``POST /{index}/_doc``, ``PUT|POST
/{index}/_doc/{id}`` and ``PUT|POST /{index}/_create/{id}``, answered as Elasticsearch does
and stored once per ``_id``, as a bulk action is (es_ids.py). They answered 404 before."""

from __future__ import annotations

import base64

import orjson
import pytest

from logmesh.logs.ingest import es_doc
from logmesh.security import ServerSecurity
from tests.logs.ingest.test_es_bulk import call
from tests.support.logs import metrics, stored


def doc(**fields) -> bytes:
    return orjson.dumps({"service.name": "one-doc", **fields})


async def test_index_without_an_id_is_created_with_the_events_seq_as_its_id(start_logs):
    srv = await start_logs()
    status, answer, headers = await call(srv, "POST", "/shop/_doc", doc(message="first"))
    assert status == 201 and headers["X-Elastic-Product"] == "Elasticsearch"
    assert answer["result"] == "created" and answer["_index"] == "shop" and answer["_version"] == 1
    assert "status" not in answer and answer["_shards"]["successful"] == 1
    [ev] = stored(srv.config.data_dir)
    assert answer["_id"] == str(ev["seq"]) and ev["message"] == "first"
    assert ev["labels"] == {"es.index": "shop"}


async def test_index_with_an_id_twice_is_created_then_updated_and_stored_once(start_logs):
    srv = await start_logs()
    for method in ("PUT", "POST"):  # both are Elasticsearch's index with an id
        status, answer, _ = await call(srv, method, "/shop/_doc/order-7", doc(message="seven"))
        first = method == "PUT"
        assert status == (201 if first else 200), answer
        assert (answer["_id"], answer["result"], answer["_version"]) == \
            ("order-7", "created" if first else "updated", 1 if first else 2)
    [ev] = stored(srv.config.data_dir)
    assert ev["labels"] == {"es.id": "order-7", "es.index": "shop"}


@pytest.mark.parametrize("method, path", [("PUT", "/shop/_create/c1"), ("POST", "/shop/_create/c1"),
                                          ("PUT", "/shop/_doc/c1?op_type=create")])
async def test_a_create_of_a_stored_id_is_a_409_and_not_stored_again(start_logs, method, path):
    srv = await start_logs()
    status, answer, _ = await call(srv, method, path, doc(message="once"))
    assert (status, answer["result"], answer["_id"]) == (201, "created", "c1")
    status, answer, _ = await call(srv, method, path, doc(message="twice"))
    assert status == 409 and answer["status"] == 409
    assert answer["error"]["type"] == "version_conflict_engine_exception"
    assert answer["error"]["root_cause"][0]["type"] == "version_conflict_engine_exception"
    assert "[c1]" in answer["error"]["reason"] and answer["error"]["index"] == "shop"
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["once"]
    # another index, or an index action, is no conflict (as es11's bulk path)
    assert (await call(srv, method, path.replace("/shop/", "/other/"), doc(message="o")))[0] == 201
    assert (await call(srv, "PUT", "/shop/_doc/c1", doc(message="i")))[0] == 200
    assert len(stored(srv.config.data_dir)) == 2


async def test_a_pretty_printed_document_is_stored_as_sent(start_logs):
    srv = await start_logs()
    body = b'{\r\n  "message": "line one\\nline two",\n  "service.name": "pretty",\n  "n": 12345678901234567890\n}\n'
    status, answer, _ = await call(srv, "POST", "/shop/_doc", body)
    assert status == 201, answer
    [ev] = stored(srv.config.data_dir)
    assert ev["message"] == "line one\nline two" and ev["service.name"] == "pretty"


@pytest.mark.parametrize("method, path, body, status, kind, reason", [
    ("POST", "/shop/_doc", b"", 400, "parse_exception", "empty_body"),
    ("POST", "/shop/_doc", b"  \n", 400, "parse_exception", "empty_body"),
    ("POST", "/shop/_doc", b"[1, 2]", 400, "document_parsing_exception", "bad_document"),
    ("POST", "/shop/_doc", b'{"message": "torn', 400, "document_parsing_exception", "bad_document"),
    ("POST", "/shop/_doc", b'{"message": "x", "@timestamp": "yesterday"}', 400,
     "document_parsing_exception", "bad_timestamp"),
    ("PUT", "/shop/_doc/x?op_type=upsert", b'{"message": "x"}', 400, "illegal_argument_exception", "bad_action"),
    ("POST", "/shop/_doc?op_type=create", b'{"message": "x"}', 400,
     "action_request_validation_exception", "bad_action"),
    ("PUT", "/shop/_doc/" + "x" * 513, b'{"message": "x"}', 400, None, "bad_id"),
])
async def test_a_bad_request_is_refused_in_elasticsearchs_shape_and_counted(start_logs, method, path, body,
                                                                            status, kind, reason):
    srv = await start_logs()
    got, answer, _ = await call(srv, method, path, body)
    assert got == status and answer["status"] == status, answer
    assert kind is None or (answer["error"]["type"], answer["error"]["root_cause"][0]["type"]) == (kind, kind)
    assert not answer["error"]["reason"].startswith("line "), answer  # the bulk body's line is no client's
    assert stored(srv.config.data_dir) == []
    samples = await metrics(srv.config.http_port)
    by_reason = {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                 if name == "logmesh_ingest_rejected_total" and ("protocol", "elasticsearch") in labels}
    assert by_reason == {reason: 1}
    ok, answer, _ = await call(srv, "POST", "/shop/_doc", doc(message="after"))
    assert ok == 201  # the service goes on


async def test_put_without_an_id_is_405_as_in_elasticsearch(start_logs):
    srv = await start_logs()
    assert (await call(srv, "PUT", "/shop/_doc", doc(message="x")))[0] == 405
    assert stored(srv.config.data_dir) == []


async def test_the_write_token_is_needed_as_for_bulk(start_logs):
    token, read = "w" * 24, "r" * 24
    srv = await start_logs(security=ServerSecurity(write_token=token, read_token=read))
    assert (await call(srv, "POST", "/shop/_doc", doc(message="x")))[0] == 401
    assert (await call(srv, "PUT", "/shop/_create/a", doc(message="x"), Authorization=f"Bearer {read}"))[0] == 403
    basic = base64.b64encode(f"elastic:{token}".encode()).decode()
    assert (await call(srv, "PUT", "/shop/_create/a", doc(message="x"), Authorization=f"Basic {basic}"))[0] == 201
    assert len(stored(srv.config.data_dir)) == 1


def test_the_bulk_body_keeps_the_documents_bytes_on_one_line():
    assert es_doc.bulk_body("index", "i", None, b' {"a":\n 1}\r\n') == b'{"index":{"_index":"i"}}\n{"a":  1}\n'
    assert es_doc.bulk_body("create", "i", "x\ny", b'{"a":"b\\n"}') == \
        b'{"create":{"_index":"i","_id":"x\\ny"}}\n{"a":"b\\n"}\n'


async def test_a_percent_sign_in_an_index_or_a_label_is_text_not_a_format(start_logs):
    """CI's schemathesis: an index named with `%` (`/a%25b/_doc/x`) was a 500. The journal's
    claim, the bulk answer and the es.id labels are made from `%` templates, and a name or a
    label with `%s` or `%d` in it was read as part of the template."""
    srv = await start_logs()
    for index, doc_id in (("a%b", "x"), ("p%s%d%%", "y%s"), ("q%d", None)):
        path = f"/{index.replace('%', '%25')}/_doc" + (f"/{doc_id.replace('%', '%25')}" if doc_id else "")
        status, answer, _ = await call(srv, "PUT" if doc_id else "POST", path,
                                       doc(message=f"in {index}", **{"labels.tag": "50%s off %d"}))
        assert status == 201, answer
        assert answer["_index"] == index and (doc_id is None or answer["_id"] == doc_id)
    body = b"".join(orjson.dumps({"create": {"_index": "b%s%d", "_id": f"id{i}%s"}}) + b"\n"
                    + doc(message=f"bulk {i}", labels={"tag": "%s%d%"}) + b"\n" for i in range(3))
    status, answer, _ = await call(srv, "POST", "/_bulk", body)
    assert status == 200 and not answer["errors"], answer
    assert [i["create"]["_index"] for i in answer["items"]] == ["b%s%d"] * 3
    body = b"".join(orjson.dumps({"index": {"_index": "c%d"}}) + b"\n" + doc(message=f"plain {i}")
                    + b"\n" for i in range(300))
    status, answer, _ = await call(srv, "POST", "/_bulk", body)
    assert status == 200 and [i["index"]["_index"] for i in answer["items"]] == ["c%d"] * 300  # past _NUMBERED_FROM
    events = stored(srv.config.data_dir)
    assert len(events) == 3 + 3 + 300
    by_message = {e["message"]: e for e in events}
    assert by_message["in p%s%d%%"]["labels"]["es.id"] == "y%s"
    assert by_message["bulk 1"]["labels"] == {"es.id": "id1%s", "es.index": "b%s%d", "tag": "%s%d%"}


def raw_put(port: int, path: str, body: bytes) -> tuple[int, dict]:
    """A request whose path is sent as written (aiohttp's client folds ``/../`` away)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("PUT", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("path, name, why", [
    ("/../_doc/x", "..", "must not be '.' or '..'"),
    ("/./_doc/x", ".", "must not be '.' or '..'"),
    ("/Shop/_doc/x", "Shop", "must be lowercase"),
    ("/a%20b/_doc/x", "a b", "must not contain the following characters"),
    ("/a%23b/_doc/x", "a#b", "must not contain '#'"),
    ("/a%2Cb/_create/x", "a,b", "must not contain the following characters"),
    ("/_x/_doc/x", "_x", "must not start with '_', '-', or '+'"),
    ("/-x/_doc/x", "-x", "must not start with '_', '-', or '+'"),
    ("/" + "a" * 256 + "/_doc/x", "a" * 256, "index name is too long, (256 > 255)"),
])
async def test_an_index_name_elasticsearch_refuses_is_a_400_and_counted(start_logs, path, name, why):
    """``PUT /../_doc/x`` stored an event under the index ``..`` (outside20)."""
    import asyncio

    srv = await start_logs()
    status, answer = await asyncio.to_thread(raw_put, srv.config.http_port, path, doc(message="m"))
    assert status == 400 and answer["status"] == 400, answer
    assert answer["error"]["type"] == "invalid_index_name_exception"
    assert answer["error"]["reason"].startswith(f"Invalid index name [{name}], {why}"), answer
    assert stored(srv.config.data_dir) == []
    samples = await metrics(srv.config.http_port)
    by_reason = {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                 if name == "logmesh_ingest_rejected_total" and ("protocol", "elasticsearch") in labels}
    assert by_reason == {"bad_index": 1}
    ok, _ = await asyncio.to_thread(raw_put, srv.config.http_port, "/.shop-2/_doc/x", doc(message="m"))
    assert ok == 201  # a dot first is allowed (deprecated in Elasticsearch, not refused)


async def test_a_repeated_parameter_is_its_last_value_as_in_elasticsearch(start_logs):
    """Elasticsearch 8 reads a repeated URL parameter as its last value, silently (RestUtils'
    decodeQueryString puts each into one map); logmesh read the first: another request."""
    srv = await start_logs()
    status, answer, _ = await call(srv, "PUT", "/shop/_doc/r1?op_type=index&op_type=create", doc(message="a"))
    assert (status, answer["result"]) == (201, "created")
    status, answer, _ = await call(srv, "PUT", "/shop/_doc/r1?op_type=index&op_type=create", doc(message="a"))
    assert status == 409, answer  # a create: the last value
    status, answer, _ = await call(srv, "PUT", "/shop/_doc/r1?op_type=create&op_type=index", doc(message="a"))
    assert (status, answer["result"]) == (200, "updated")  # an index
    status, answer, _ = await call(srv, "POST", "/_bulk?filter_path=took&filter_path=errors",
                                   b'{"index":{"_index":"shop"}}\n{"message":"b"}\n')
    assert status == 200 and set(answer) == {"errors"}, answer
