"""Several bulks in flight, gzip, and what the cluster refuses per item: cursor and dead letters."""

from __future__ import annotations

import logging

import orjson
import pytest

from logmesh.logs.sinks.cursor import SinkState
from tests.logs.sinks.fake_bulk import BulkFormatError, Creates, bulk_ops
from tests.logs.sinks.fake_es import FakeElasticsearch
from tests.logs.sinks.helpers import Store, event, wait_until
from tests.logs.sinks.test_sink import deadletters, deliver_all, delivered, make_sink


async def test_bulks_finishing_out_of_order_commit_only_the_contiguous_prefix(tmp_path):
    fake = await FakeElasticsearch().start()
    fake.delays = {1: 1.5}  # the first bulk is answered last
    store = Store(tmp_path)
    seqs = store.write([event(i) for i in range(500)])
    sink = make_sink(fake.url, tmp_path, store, batch_events=100, max_in_flight=4, compress=False)
    sink.start()
    try:
        await wait_until(lambda: len(fake.docs) >= 400, what="the later bulks stored")
        await wait_until(lambda: sink.stats["sent"] >= 300, what="the later bulks answered")
        assert fake.max_in_flight >= 2  # they were in flight together
        # bulks 2-4 are done, bulk 1 is not: the cursor must not pass its events
        assert sink.state.position.last_seq == -1 and sink.state.position.offset == 0
        assert SinkState(tmp_path, sink.name).open().last_seq == -1  # nor on disk
        await wait_until(lambda: delivered(sink, store), what="all delivered once bulk 1 answers")
    finally:
        await sink.close()
        await fake.stop()
    assert {int(i) for i in fake.docs} == set(seqs) and set(fake.created.values()) == {1}
    assert sink.state.position.sent == 500


async def test_a_stop_while_an_earlier_bulk_hangs_resends_from_it_without_duplicates(tmp_path):
    fake = await FakeElasticsearch().start()
    fake.delays = {1: 30.0}  # never answered before the stop
    store = Store(tmp_path)
    seqs = store.write([event(i) for i in range(400)])
    sink = make_sink(fake.url, tmp_path, store, batch_events=100, max_in_flight=4)
    sink.start()
    try:
        await wait_until(lambda: sink.stats["sent"] >= 300, what="bulks 2-4 answered")
    finally:
        await sink.close()  # bulk 1 still hangs: cancelled after shutdown_timeout
    assert sink.state.position.last_seq == -1  # nothing committed past the hanging bulk
    fake.delays = {}
    again = make_sink(fake.url, tmp_path, store, batch_events=100)
    try:
        await deliver_all(again, store)
    finally:
        await fake.stop()
    assert {int(i) for i in fake.docs} == set(seqs) and set(fake.created.values()) == {1}
    assert fake.conflicts >= 300  # bulks 2-4 sent again, answered 409: no duplicate


async def test_bodies_go_gzipped(tmp_path, fake_es):
    store = Store(tmp_path)
    seqs = store.write([event(i) for i in range(2000)])
    sink = make_sink(fake_es.url, tmp_path, store, batch_events=500)
    await deliver_all(sink, store)
    assert fake_es.gzipped_bulks == fake_es.bulk_requests == 4
    assert {int(i) for i in fake_es.docs} == set(seqs)
    assert fake_es.docs[str(seqs[7])]["message"] == "request 7"


async def test_a_cluster_that_cannot_read_gzip_gets_plain_bodies(tmp_path, caplog):
    fake = await FakeElasticsearch(accept_gzip=False).start()
    store = Store(tmp_path)
    seqs = store.write([event(i) for i in range(1000)])
    sink = make_sink(fake.url, tmp_path, store, batch_events=250)
    with caplog.at_level(logging.WARNING, "logmesh.sinks.elasticsearch"):
        try:
            await deliver_all(sink, store)
        finally:
            await fake.stop()
    assert not sink.gzip and {int(i) for i in fake.docs} == set(seqs)
    assert not deadletters(tmp_path)  # a refused encoding is not a refused document
    assert sum("refused a gzipped body" in r.message for r in caplog.records) == 1


async def test_mapping_conflicts_go_to_the_dead_letter_file_item_by_item(tmp_path, fake_es):
    store = Store(tmp_path)
    evs = [event(i) for i in range(300)]
    evs[10]["http.response.status_code"] = "two hundred"  # long
    evs[20]["service.name"] = {"nested": "object"}  # keyword
    evs[30]["log.level"] = ["info", {"x": 1}]  # keyword array with an object in it
    del evs[40]["@timestamp"]  # a data stream needs it
    seqs = store.write(evs)
    sink = make_sink(fake_es.url, tmp_path, store)
    await deliver_all(sink, store)
    bad = {seqs[i] for i in (10, 20, 30, 40)}
    assert {int(i) for i in fake_es.docs} == set(seqs) - bad
    dead = {d["event"]["seq"]: d for d in deadletters(tmp_path)}
    assert set(dead) == bad and all(d["status"] == 400 for d in dead.values())
    assert "failed to parse field [http.response.status_code] of type [long]" in dead[seqs[10]]["reason"]
    assert "[service.name]" in dead[seqs[20]]["reason"]
    assert dead[seqs[20]]["error"]["type"] == "document_parsing_exception"
    assert "[@timestamp] is missing" in dead[seqs[40]]["reason"]
    assert sink.state.position.deadlettered == 4 and sink.state.position.sent == 296


def body(*lines: bytes, end: bytes = b"\n") -> bytes:
    return b"\n".join(lines) + end


@pytest.mark.parametrize(("raw", "words"), [
    (b"", "request body is required"),
    (body(b'{"create":{"_id":"1"}}', b"{}", end=b""), "must be terminated by a newline"),
    (body(b'{"upsert":{"_id":"1"}}', b"{}"), "expected field [create], [delete], [index] or [update]"),
    (body(b'{"create":{"_id":"1","colour":"red"}}', b"{}"), "unknown parameter [colour]"),
    (body(b'{"create":{"_id":""}}', b"{}"), "_id is specified it must not be empty"),
    (body(b'{"create":{"_id":"' + b"x" * 513 + b'"}}', b"{}"), "must be no longer than 512 bytes"),
    (body(b'{"create":{"_id":{"a":1}}}', b"{}"), "expected a simple value for field [_id]"),
    (body(b'{"create":{"_id":"1"}', b"{}"), "Malformed action/metadata line [1]"),
    (body(b'{"create":{"_id":"1"}}'), "no document after the action line [1]"),
    (body(b"", b"{}"), "Malformed action/metadata line [1]"),
])
def test_the_fake_refuses_bulk_bodies_elasticsearch_refuses(raw, words):
    with pytest.raises(BulkFormatError) as err:
        bulk_ops(raw, "logs-x")
    assert words in str(err.value)


def test_the_fake_needs_an_index_and_reads_the_sinks_actions_without_json():
    with pytest.raises(BulkFormatError, match="index is missing"):
        bulk_ops(body(b'{"create":{"_id":"1"}}', b"{}"), None)
    ops = bulk_ops(body(b'{"create":{"_id":"7"}}', b'{"a":1}', b'{"create":{"_id":"8"}}', b"{}"), "logs-x")
    assert isinstance(ops, Creates) and ops.ids == ["7", "8"] and ops.sources == [b'{"a":1}', b"{}"]
    mixed = bulk_ops(body(b'{"index":{"_index":"i","_id":9}}', b"{}", b'{"delete":{"_id":"7"}}'), "logs-x")
    assert [(o.op, o.index, o.id) for o in mixed] == [("index", "i", "9"), ("delete", "logs-x", "7")]


async def test_the_fake_answers_a_bad_document_per_item_and_keeps_the_rest(fake_es):
    import aiohttp

    fake_es.templates["t"] = {"index_patterns": ["plain"], "template": {"mappings": {"properties": {
        "n": {"type": "long"}}}}}
    raw = body(b'{"create":{"_id":"1"}}', b'{"n":1}', b'{"create":{"_id":"2"}}', b'{"n":"x"}',
               b'{"create":{"_id":"3"}}', b'not json', b'{"create":{"_id":"1"}}', b'{"n":2}')
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake_es.url}/plain/_bulk", data=raw,
                             headers={"Content-Type": "application/x-ndjson"}) as resp:
            assert resp.status == 200
            answer = orjson.loads(await resp.read())
        async with http.post(f"{fake_es.url}/plain/_bulk", data=raw,
                             headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 406
    statuses = [next(iter(it.values()))["status"] for it in answer["items"]]
    assert answer["errors"] is True and statuses == [201, 400, 400, 409]
    assert list(fake_es.docs) == ["1"]  # only the first document went in
