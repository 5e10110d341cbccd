"""encode.py's syslog lines: the four facility/severity labels put back as bytes in a block,
the same document the per-line path (event.derive_syslog_labels on the decoded line) makes."""

from __future__ import annotations

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.event import derive_syslog_labels, syslog_pri_labels
from logmesh.logs.ingest.syslog import SyslogDecoder
from logmesh.logs.sinks.elasticsearch.encode import action, encode_block, encode_line

PRIORITY = "log.syslog.priority"


def stored(events: list[dict]) -> bytes:
    return b"".join(orjson.dumps({"seq": n + 1, "@timestamp": 10 + n, **ev}) + b"\n"
                    for n, ev in enumerate(events))


def line_by_line(data: bytes) -> bytes:
    return b"".join(action(e.seq) + e.body + b"\n" for e in map(encode_line, data.splitlines()))


def syslog_lines(n: int) -> list[dict]:
    """Events as ingest/syslog.py stores them (the priority alone, first in labels)."""
    decoder = SyslogDecoder()
    forms = (b'<%d>1 2026-11-25T17:00:01.000Z web-1 goods 17 - [o@1 id="%d"] an error',
             b"<%d>Nov 25 17:00:01 mymachine su[%d]: auth failed")
    return [msgspec.to_builtins(decoder.event(forms[i % 2] % (i % 192, i), 1_760_000_000_000, ("10.0.0.1", 514)))
            for i in range(n)]


def test_syslog_lines_get_their_labels_without_the_per_line_path(monkeypatch):
    from logmesh.logs.sinks.elasticsearch import encode

    events = syslog_lines(400)
    old = [{**e, "labels": derive_syslog_labels(e["labels"])} for e in events[:50]]  # stored before 17d4f60
    data = stored([*events, *old, {"message": "plain", "labels": {"env": "dev"}}])
    want = line_by_line(data)
    monkeypatch.setattr(encode, "_encode_lines", None)  # the per-line path is not taken
    block = encode_block(data)
    monkeypatch.undo()
    assert block is not None and block.body == want
    assert sorted(block.docs) == list(range(400))  # old lines and the plain one go as stored
    doc = orjson.loads(block.docs[165])
    assert list(doc["labels"])[:5] == [PRIORITY, *syslog_pri_labels(165)]
    assert doc["labels"]["log.syslog.facility.name"] == "local4"
    assert doc["labels"]["log.syslog.severity.name"] == "notice"
    assert orjson.loads(block.subset_body([165]).split(b"\n")[1]) == doc


ODD_PRIORITIES = st.one_of(st.integers(-3, 200), st.sampled_from([0, 7, 8, 191, 192, 1000]),
                           st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3),
                           st.booleans(), st.none())
VALUES = st.one_of(st.text(max_size=8), st.integers(-10, 10**6),
                   st.fixed_dictionaries({"o@1": st.fixed_dictionaries({"id": st.text(max_size=4)})}),
                   st.fixed_dictionaries({"log.syslog.facility.code": st.integers(0, 30)}),  # nested
                   st.fixed_dictionaries({PRIORITY: st.integers(0, 191)}))
EXTRA_KEYS = st.sampled_from(["host.name", "log.syslog.procid", "log.syslog.structured_data", "labels",
                              "log.syslog.severity.name", "log.syslog.facility.code", "env"])


@st.composite
def events(draw) -> dict:
    kind = draw(st.sampled_from(["new", "new", "old", "odd", "plain", "nested", "book"]))
    if kind == "book":  # a book packet stored unparsed, with or without syslog labels
        labels = draw(st.sampled_from([None, {PRIORITY: 13}]))
        uri = f"/g/{draw(st.integers(0, 9))}"
        return {"message": orjson.dumps({"uri": uri, "method": "GET"}).decode(), "labels": labels}
    pri = draw(st.integers(0, 191)) if kind != "odd" else draw(ODD_PRIORITIES)
    extra = draw(st.dictionaries(EXTRA_KEYS, VALUES, max_size=3))
    ev: dict = {"message": draw(st.text(max_size=12)), "log.level": "info"}
    if kind == "plain":
        ev["labels"] = extra or None
    elif kind == "nested":  # a syslog-like object inside params, not the event's labels
        ev["params"] = {"labels": {PRIORITY: pri}}
        ev["labels"] = extra or None
    else:
        head = {PRIORITY: pri, **(syslog_pri_labels(pri) if kind == "old" else {})}
        ev["labels"] = {**head, **{k: v for k, v in extra.items() if k not in head}} \
            if not draw(st.booleans()) or kind == "old" else {**extra, **head}  # priority not first
    return ev


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=12))
def test_the_bytes_path_and_the_per_line_path_send_the_same_documents(evs):
    data = stored(evs)
    block = encode_block(data)
    assert block is not None and block.seqs == list(range(1, len(evs) + 1))
    assert block.body == line_by_line(data)
    for i, raw in enumerate(block.lines):  # and what a document says is the rule's labels
        labels = orjson.loads(raw).get("labels")
        sent = orjson.loads(block.docs.get(i, raw)).get("labels")
        assert sent == derive_syslog_labels(labels) or not isinstance(labels, dict)


def test_a_twin_of_the_labels_nested_before_them_goes_line_by_line():
    labels = {PRIORITY: 13, "host.name": "h"}
    data = stored([{"params": {"labels": labels}, "labels": labels}, *syslog_lines(3)])
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)
    doc = orjson.loads(block.docs[0])
    assert doc["params"] == {"labels": labels} and doc["labels"] == derive_syslog_labels(labels)


def test_book_packets_and_syslog_lines_in_one_block_both_skip_the_per_line_path(monkeypatch):
    from logmesh.logs.sinks.elasticsearch import encode

    book = '{"uri":"/goods/%d","method":"GET","key":"k1","params":{"id":%d}}'
    events = [e if i % 2 else {"message": book % (i, i), "service.name": "goods"}
              for i, e in enumerate(syslog_lines(300))]
    data = stored(events)
    want = line_by_line(data)
    monkeypatch.setattr(encode, "_encode_lines", None)
    block = encode_block(data)
    monkeypatch.undo()
    assert block is not None and block.body == want and sorted(block.docs) == list(range(300))
    assert orjson.loads(block.docs[10])["url.path"] == "/goods/10"
    assert list(orjson.loads(block.docs[11])["labels"])[:2] == [PRIORITY, "log.syslog.facility.code"]


def test_a_syslog_line_whose_message_looks_like_a_book_packet_goes_line_by_line():
    events = [*syslog_lines(2), {"message": '{"uri":"/x","method":"GET"}', "labels": {PRIORITY: 13}},
              {"message": '{"uri":"/y","method":"PUT"}'}]
    data = stored(events)
    block = encode_block(data)
    assert block is not None and block.body == line_by_line(data)
    doc = orjson.loads(block.docs[2])
    assert doc["url.path"] == "/x" and doc["labels"] == derive_syslog_labels({PRIORITY: 13})
