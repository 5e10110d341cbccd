"""Bulk bodies whose action lines differ (an ``_id`` each, as the official clients' bulk helper,
Fluent Bit's ``Generate_ID`` or Logstash's ``document_id`` send) take es_bulk's one-pass path,
and whatever path a body takes, it stores and answers what the general loop, a line at a time,
does with it."""

from __future__ import annotations

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.ingest import es_bulk

RECEIVED = 1795626009999


def lines(*objs) -> bytes:
    return b"".join((o if isinstance(o, bytes) else orjson.dumps(o)) + b"\n" for o in objs)


def outcome(parsed: es_bulk.BulkParse) -> tuple:
    """The stored lines and the answers (full, and as Beats ask) of a parse, seqs given as the
    store would (one block)."""
    for seq, ev in enumerate(parsed.events, 5000):
        ev.seq = seq
    return ([orjson.loads(msgspec.json.encode(e)) for e in parsed.events],
            orjson.loads(es_bulk.bulk_response(parsed, 3)),
            orjson.loads(es_bulk.bulk_response(parsed, 3, "errors,items.*.error,items.*.status")),
            parsed.rejected)


def test_actions_with_ids_take_the_one_pass_path():
    body = lines(*[x for i in range(50) for x in (
        {"index": {"_index": "app", "_id": f"doc-{i}", "routing": "r"}},
        {"@timestamp": 1795626000000 + i, "service.name": "api", "message": f"m{i}"})])
    fast = es_bulk._uniform(body, None, RECEIVED)
    assert fast is not None and fast.uniform == ("index", "app") and not fast.items
    assert outcome(fast) == outcome(es_bulk._line_by_line(body, None, RECEIVED))
    stored = outcome(fast)[0]
    assert [e["message"] for e in stored] == [f"m{i}" for i in range(50)]
    assert {e["labels"]["es.index"] for e in stored} == {"app"}


def test_actions_that_differ_in_kind_or_index_are_read_line_by_line():
    docs = [{"message": "a"}, {"message": "b"}]
    for first, second in [({"index": {"_id": "1"}}, {"create": {"_id": "2"}}),  # two kinds
                          ({"index": {"_index": "x", "_id": "1"}}, {"index": {"_index": "y"}}),
                          ({"index": {"_id": "1"}}, {"index": {}, "create": {}}),  # both keys
                          ({"index": {"_id": "1"}}, {"update": {"_id": "1"}}),
                          ({"index": {"_id": "1"}}, {"index": None})]:
        body = lines(first, docs[0], second, docs[1])
        assert es_bulk._uniform(body, None, RECEIVED) is None, (first, second)


_index = st.sampled_from([{}, {"_index": "a"}, {"_index": "b"}, {"_index": None}])
_extra = st.sampled_from([{}, {"_id": "x1"}, {"_id": "x2", "routing": "r"}, {"pipeline": "p"}])
_kind = st.sampled_from(["index", "index", "create", "update", "delete"])
_doc = st.one_of(
    st.builds(lambda i: {"message": f"m{i}", "log.level": "warn"}, st.integers(0, 9)),  # flat
    st.builds(lambda i: {"message": f"m{i}", "service": {"name": "s"}, "host": {"name": "h"}},
              st.integers(0, 9)),  # Filebeat's nested shape
    st.just({"message": "x", "extra": {"deep": [1, 2]}}),  # the per-document path's
    st.just({"log.level": "info"}),  # no message: refused
    st.just(b"{torn"),
)


@settings(deadline=None, max_examples=300)
@given(pairs=st.lists(st.tuples(_kind, _index, _extra, _doc), min_size=1, max_size=8),
       same=st.booleans(), default_index=st.sampled_from([None, "dflt"]))
def test_every_body_stores_and_answers_what_the_general_loop_does(pairs, same, default_index):
    if same:  # mostly one kind on one index, as shippers send, so the one-pass paths are taken
        kind, index = pairs[0][0], pairs[0][1]
        pairs = [(kind, index, extra, doc) for _, _, extra, doc in pairs]
    body = lines(*[x for kind, index, extra, doc in pairs for x in ({kind: {**index, **extra}}, doc)])
    got = es_bulk.parse_bulk(body, default_index, RECEIVED)
    want = es_bulk._line_by_line(body, default_index, RECEIVED)
    assert outcome(got) == outcome(want)
