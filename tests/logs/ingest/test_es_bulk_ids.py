"""Elasticsearch bulk ``_id``: kept with the event, and a retry's copy not stored again (es_ids.py).

A client that retries a ``_bulk`` after a timeout sends the same ``_id``; Elasticsearch answers
a ``create`` of a stored ``_id`` with the item's 409 and an ``index`` of one with 200 ``updated``,
and the clients count both as done. Before, logmesh stored every retry again.
"""

from __future__ import annotations

import time

import orjson

from logmesh.logs.ingest.es_ids import BulkIds
from tests.logs.ingest.test_es_bulk import call, ndjson
from tests.support.logs import stored


def body(action: str, ids: list[str], index: str | None = "app", tag: str = "m") -> bytes:
    meta = {} if index is None else {"_index": index}
    return ndjson(*[x for i in ids for x in ({action: {**meta, "_id": i}}, {"message": f"{tag} {i}"})])


def items(answer: dict) -> list[tuple[str, str, int]]:
    return [(op, item["_id"], item["status"]) for row in answer["items"] for op, item in row.items()]


async def test_a_retried_create_is_answered_409_and_stored_once(start_logs):
    srv = await start_logs()
    status, answer, _ = await call(srv, "POST", "/_bulk", body("create", ["a1", "a2"]))
    assert status == 200 and answer["errors"] is False
    assert items(answer) == [("create", "a1", 201), ("create", "a2", 201)]
    status, answer, _ = await call(srv, "POST", "/_bulk", body("create", ["a1", "a2", "a3"]))
    assert status == 200 and answer["errors"] is True
    assert items(answer) == [("create", "a1", 409), ("create", "a2", 409), ("create", "a3", 201)]
    conflict = answer["items"][0]["create"]["error"]
    assert conflict["type"] == "version_conflict_engine_exception" and "[a1]" in conflict["reason"]
    events = stored(srv.config.data_dir)
    assert sorted(e["labels"]["es.id"] for e in events) == ["a1", "a2", "a3"]
    assert all(e["labels"]["es.index"] == "app" for e in events)


async def test_a_retried_index_is_answered_200_updated_and_stored_once(start_logs):
    srv = await start_logs()
    await call(srv, "POST", "/_bulk", body("index", ["x"]))
    status, answer, _ = await call(srv, "POST", "/_bulk", body("index", ["x", "y"]))
    assert answer["errors"] is False
    first = answer["items"][0]["index"]
    assert (first["status"], first["result"], first["_version"]) == (200, "updated", 2)
    assert items(answer)[1] == ("index", "y", 201)
    assert sorted(e["labels"]["es.id"] for e in stored(srv.config.data_dir)) == ["x", "y"]


async def test_ids_are_per_index_and_within_a_body(start_logs):
    srv = await start_logs()
    await call(srv, "POST", "/_bulk", body("create", ["same"], index="one"))
    _, answer, _ = await call(srv, "POST", "/_bulk", body("create", ["same", "same"], index="two"))
    assert items(answer) == [("create", "same", 201), ("create", "same", 409)]
    _, answer, _ = await call(srv, "POST", "/three/_bulk", body("create", ["same"], index=None))
    assert items(answer) == [("create", "same", 201)]
    assert len(stored(srv.config.data_dir)) == 3


async def test_a_body_of_mixed_shapes_keeps_each_id(start_logs):
    srv = await start_logs()
    mixed = ndjson({"create": {"_index": "app", "_id": "k1"}}, {"message": "one"},
                   {"index": {"_index": "app"}}, {"message": "no id"},
                   {"create": {"_index": "app", "_id": "k2"}}, b'{"message": "torn',
                   {"create": {"_index": "app", "_id": "k3"}}, {"message": "three", "extra": {"a": 1}})
    _, answer, _ = await call(srv, "POST", "/_bulk", mixed)
    assert [s for _, _, s in items(answer)] == [201, 201, 400, 201]
    _, again, _ = await call(srv, "POST", "/_bulk", mixed)
    assert [s for _, _, s in items(again)] == [409, 201, 400, 409]
    ids = sorted(e["labels"].get("es.id", "-") for e in stored(srv.config.data_dir))
    assert ids == ["-", "-", "k1", "k3"]


async def test_an_id_too_long_or_empty_is_refused_per_item(start_logs):
    srv = await start_logs()
    _, answer, _ = await call(srv, "POST", "/_bulk", body("create", ["x" * 513, "", "ok"]))
    assert [s for _, _, s in items(answer)] == [400, 400, 201]
    assert [e["labels"]["es.id"] for e in stored(srv.config.data_dir)] == ["ok"]


async def test_the_window_survives_a_restart(start_logs, tmp_path):
    srv = await start_logs()
    await call(srv, "POST", "/_bulk", body("create", ["r1", "r2"]))
    await srv.stop()
    srv = await start_logs()
    _, answer, _ = await call(srv, "POST", "/_bulk", body("create", ["r1", "r2", "r3"]))
    assert [s for _, _, s in items(answer)] == [409, 409, 201]
    assert len(stored(srv.config.data_dir)) == 3


def test_a_claim_left_open_keeps_only_what_the_store_has(tmp_path):
    """A writer killed between its claim and its ``done``: the next holder asks the store."""
    from logmesh.logs.store import layout

    ids = BulkIds(tmp_path)
    ids.open()
    seg = tmp_path / layout.SEGMENTS_DIR
    seg.mkdir()
    kept, lost = layout.make_seq(5, 1), layout.make_seq(6, 1)
    (seg / layout.segment_name(1, kept)).write_bytes(orjson.dumps({"seq": kept, "message": "m"}) + b"\n")
    ids.claim([("app", b'"kept"'), ("app", b'"lost"')], [kept, lost], int(time.time() * 1000))
    with open(tmp_path / "es-ids" / "journal", "ab") as f:
        f.write(b'{"t":1,"ids":[["app","torn"')  # a second writer's record, torn by its kill
    ids.close()
    again = BulkIds(tmp_path)
    again.open()
    assert again.known("app", b'"kept"') == kept and again.known("app", b'"lost"') is None
    assert again.resolved == 1
    third = BulkIds(tmp_path)
    third.open()  # the judgement was written down: nothing left open
    assert third.resolved == 0 and set(third.seen) == {("app", b'"kept"')}


def test_the_window_is_bounded(tmp_path):
    ids = BulkIds(tmp_path, max_ids=3, window_ms=1000)
    ids.open()
    ids.claim([("i", b'"%d"' % n) for n in range(5)], [n << 6 for n in range(5)], 10_000)
    assert list(ids.seen) == [("i", b'"2"'), ("i", b'"3"'), ("i", b'"4"')]
    ids.claim([("i", b'"5"')], [5 << 6], 11_500)  # the first batch is past the window
    assert list(ids.seen) == [("i", b'"5"')]


def test_the_store_is_asked_in_segments_and_parquet_files(tmp_path):
    import duckdb

    from logmesh.logs.ingest.es_ids import stored_seqs
    from logmesh.logs.store import layout

    in_seg, in_pq, nowhere = (layout.make_seq(n, 2) for n in (40, 7, 41))
    seg = tmp_path / layout.SEGMENTS_DIR
    seg.mkdir()
    (seg / layout.segment_name(2, in_seg)).write_bytes(
        orjson.dumps({"seq": in_seg}) + b"\n" + b'{"seq": 1, "torn')  # a torn last line: no event
    pq = tmp_path / layout.PARQUET_DIR
    pq.mkdir()
    name = layout.parquet_name(layout.segment_name(2, in_pq))
    duckdb.connect().execute(f"COPY (SELECT {in_pq}::BIGINT AS seq, 'm' AS message) TO '{pq / name}'")
    assert stored_seqs(tmp_path, [in_seg, in_pq, nowhere]) == {in_seg, in_pq}


async def test_an_id_is_the_same_however_its_json_is_written(start_logs):
    """One pass keeps the ids' JSON text as it came; an escape sends the body to the loop: the
    same ``_id`` must be the same key either way."""
    srv = await start_logs()
    escaped = ndjson(b'{"create":{"_index":"app","_id":"caf\\u00e9 \\"q\\""}}', {"message": "a"})
    _, answer, _ = await call(srv, "POST", "/_bulk", escaped)
    assert items(answer) == [("create", 'café "q"', 201)]
    plain = ndjson({"create": {"_index": "app", "_id": "café \"q\""}}, {"message": "a"},
                   {"create": {"_index": "app", "_id": "other"}}, {"message": "b"})
    _, answer, _ = await call(srv, "POST", "/_bulk", plain)
    assert items(answer) == [("create", 'café "q"', 409), ("create", "other", 201)]
    utf8 = ndjson({"create": {"_index": "app", "_id": "café"}}, {"message": "c"},
                  {"create": {"_index": "app", "_id": "x2"}}, {"message": "d"})
    _, answer, _ = await call(srv, "POST", "/_bulk", utf8)
    _, again, _ = await call(srv, "POST", "/_bulk", utf8.replace("café".encode(), b"caf\\u00e9"))
    assert [s for _, _, s in items(answer)] == [201, 201] and [s for _, _, s in items(again)] == [409, 409]
    labels = sorted(e["labels"]["es.id"] for e in stored(srv.config.data_dir))
    assert labels == sorted(['café "q"', "other", "café", "x2"])


def test_a_damaged_journal_record_is_skipped_and_the_service_starts(tmp_path, caplog):
    """outside19: a journal record that is JSON but not a claim's shape (a bit flip, a bad disk)
    raised in ``open()``, so the logs service died at every start. Now it is skipped with a
    warning and the records around it count."""
    ids = BulkIds(tmp_path)
    ids.open()
    ids.claim([("app", b'"before"')], [64], int(time.time() * 1000))
    ids._finish([], [], True)
    ids.close()
    with open(tmp_path / "es-ids" / "journal", "ab") as f:
        f.write(b'[1]\n7\n"x"\n{"ids":5}\n{"ids":[["app","two"]]}\n{"t":"zz","ids":[]}\n'
                b'{"ids":[["app",{"a":1},"s"]]}\n{"done":1}\n')
    again = BulkIds(tmp_path)
    again.open()
    again.claim([("app", b'"after"')], [128], int(time.time() * 1000))
    again._finish([], [], True)
    assert set(again.seen) == {("app", b'"before"'), ("app", b'"after"')}
    assert "es-ids journal" in caplog.text
    again.close()
    third = BulkIds(tmp_path)
    third.open()
    assert set(third.seen) == {("app", b'"before"'), ("app", b'"after"')}


def test_a_claim_whose_end_was_damaged_is_judged_by_the_store(tmp_path):
    """A claim followed by another claim (its ``done`` damaged): judged against the store as a
    claim left open, so a retry of its ids is still answered 409 and not stored twice."""
    from logmesh.logs.store import layout

    seg = tmp_path / layout.SEGMENTS_DIR
    seg.mkdir()
    kept = layout.make_seq(5, 1)
    (seg / layout.segment_name(1, kept)).write_bytes(orjson.dumps({"seq": kept, "message": "m"}) + b"\n")
    now = int(time.time() * 1000)
    (tmp_path / "es-ids").mkdir()
    (tmp_path / "es-ids" / "journal").write_bytes(
        b'{"t":%d,"ids":[["app","kept",%d],["app","lost",%d]]}\n{"dXne":1}\n'
        b'{"t":%d,"ids":[["app","next",%d]]}\n{"done":1}\n' % (now, kept, layout.make_seq(6, 1), now, 999))
    ids = BulkIds(tmp_path)
    ids.open()
    assert ids.known("app", b'"kept"') == kept and ids.known("app", b'"lost"') is None
    assert ids.known("app", b'"next"') == 999 and ids.resolved == 1
