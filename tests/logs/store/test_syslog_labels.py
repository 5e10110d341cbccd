"""Syslog's facility and severity labels, stored no more, derived where lines are read.

A syslog line keeps ``log.syslog.priority`` and leaves out the four labels that follow from
it (event.py says why). Lines stored before that keep them. Every reader must show both
alike: DuckDB's relation over segments (queries, the field list, tail, compaction to
Parquet: store/columns.py) and Python's (the Elasticsearch sink: event.derive_syslog_labels).
"""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.event import Event, derive_syslog_labels, syslog_pri_labels
from logmesh.logs.ingest.syslog import SyslogDecoder
from logmesh.logs.query import kql
from logmesh.logs.query.engine import Engine
from logmesh.logs.sinks.elasticsearch.encode import encode_block
from logmesh.logs.store.columns import read_ndjson_lenient_sql, read_ndjson_sql
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.duck import duckdb
from tests.support.store import HOUR, T0, write_store

LO, HI = T0 - HOUR, T0 + 10 * HOUR
PRIORITY = "log.syslog.priority"

# labels as stored, and whether readers derive anything from them
CASES = [
    ({PRIORITY: 13}, True),
    ({PRIORITY: 0, "host.name": "h"}, True),
    ({PRIORITY: 191, "b": {"c": [1, "x"]}}, True),
    ({PRIORITY: 13, "x": {"log.syslog.facility.code": 1}}, True),  # nested: not the label
    ({PRIORITY: 3, **syslog_pri_labels(3), "host.name": "h"}, False),  # stored before
    ({PRIORITY: 13, "log.syslog.facility.code": "odd"}, False),
    ({PRIORITY: 192}, False),
    ({PRIORITY: 1000}, False),
    ({PRIORITY: -1}, False),
    ({PRIORITY: "13"}, False),
    ({PRIORITY: 13.5}, False),
    ({PRIORITY: True}, False),
    ({PRIORITY: {"a": 1}}, False),
    ({"a": 1, PRIORITY: 13}, False),  # not first: not what syslog.py stores
    ({}, False),
    ({"a": 1}, False),
    ("x", False),
    ([1], False),
    (None, False),
]


def test_python_rule():
    for labels, derives in CASES:
        got = derive_syslog_labels(labels)
        if not derives:
            assert got is labels
            continue
        pri = labels[PRIORITY]
        assert list(got) == [PRIORITY, *syslog_pri_labels(pri), *list(labels)[1:]]
        assert got == {**labels, **syslog_pri_labels(pri)}
    assert derive_syslog_labels({PRIORITY: 165})["log.syslog.severity.name"] == "notice"
    assert derive_syslog_labels({PRIORITY: 165})["log.syslog.facility.name"] == "local4"


@pytest.mark.parametrize("lenient", [False, True])
def test_sql_rule_is_the_python_rule(tmp_path, lenient):
    path = tmp_path / "w00-1.ndjson"
    path.write_bytes(b"".join(orjson.dumps({"seq": i, "@timestamp": 1, "labels": labels}) + b"\n"
                              for i, (labels, _) in enumerate(CASES)))
    sql = (read_ndjson_lenient_sql if lenient else read_ndjson_sql)(str(path))
    rows = duckdb.connect().execute(f"SELECT labels FROM {sql} ORDER BY seq").fetchall()
    assert len(rows) == len(CASES)
    for (labels, _), (got,) in zip(CASES, rows, strict=True):
        want = derive_syslog_labels(labels)
        if got is None or got == "null":
            assert want is None
            continue
        assert orjson.loads(got) == want
        if isinstance(want, dict):
            assert list(orjson.loads(got)) == list(want)  # and in the same order


def _old(ev: Event) -> Event:
    """``ev`` as syslog.py stored it before: the four labels after the priority."""
    pri = ev.labels[PRIORITY]
    ev.labels = {PRIORITY: pri, **syslog_pri_labels(pri), **ev.labels}
    return ev


LINES = [b"<11>1 2026-11-25T17:00:%02d.000Z web-1 goods 17 - [o@1 id=\"%d\"] an error %d",
         b"<14>1 2026-11-25T17:00:%02d.000Z web-2 goods - ID9 - all well %d %d",
         b"<35>Nov 25 17:00:%02d mymachine su[%d]: auth failed %d"]


def _events(old: bool) -> list[Event]:
    decoder, out = SyslogDecoder(), []
    for i in range(30):
        ev = decoder.event(LINES[i % 3] % (i, i, i), T0 + i, ("10.0.0.1", 514))
        out.append(_old(ev) if old else ev)
    return out


def _labels_by_message(events: list[dict]) -> dict[str, dict]:
    out = {}
    for e in events:
        assert list(e["labels"])[:5] == [PRIORITY, *syslog_pri_labels(0)]
        out[e["message"]] = e["labels"]
    return out


async def test_old_and_new_lines_read_alike_live_compacted_and_by_the_sink(tmp_path):
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    for d, old in ((old_dir, True), (new_dir, False)):
        writer = await write_store(d, [_events(old)])
        await writer.close()  # sealed: compaction takes it
    raw_old = b"".join(p.read_bytes() for p in (old_dir / "segments").glob("*.ndjson"))
    raw_new = b"".join(p.read_bytes() for p in (new_dir / "segments").glob("*.ndjson"))
    assert raw_new.count(b"log.syslog.facility.code") == 0
    assert raw_old.count(b"log.syslog.facility.code") == 30
    assert len(raw_new) < len(raw_old) - 30 * 100  # ~125 bytes a line less

    # the Elasticsearch sink's documents
    docs = {}
    for name, raw in (("old", raw_old), ("new", raw_new)):
        block = encode_block(raw)
        assert block is not None and len(block.seqs) == 30
        docs[name] = [orjson.loads(x) for x in block.body.splitlines()[1::2]]
    assert _labels_by_message(docs["old"]) == _labels_by_message(docs["new"])
    assert [list(d["labels"]) for d in docs["old"]] == [list(d["labels"]) for d in docs["new"]]

    # a store holding both: a segment of each, queried live and then compacted
    mixed = tmp_path / "mixed"
    writer = await write_store(mixed, [_events(True), _events(False)])
    await writer.close()
    for phase in ("live", "compacted"):
        if phase == "compacted":
            assert Compactor(mixed, grace=0).run_once() == 2
            assert not list((mixed / "segments").glob("*.ndjson"))
        engine = Engine(mixed)
        # of each 30: PRI 11 (user, error) and 14 (user, informational) from web-1 and web-2,
        # 35 (auth, error) from mymachine, 10 each
        for q, n in (("log.syslog.severity.name:error", 40), ("labels.log.syslog.facility.name:auth", 20),
                     ("log.syslog.facility.code:1", 40), ("log.syslog.severity.code:3 and host.name:web-1", 20),
                     ("log.syslog.severity.name:informational", 20)):
            events, _ = engine.search(kql.parse(q), LO, HI, limit=100)
            assert len(events) == n, (phase, q, len(events))
        events, _ = engine.search(None, LO, HI, limit=100)
        assert len(events) == 60
        by_seq = sorted(events, key=lambda e: e["seq"])
        first, second = by_seq[:30], by_seq[30:]
        assert _labels_by_message(first) == _labels_by_message(second)
        assert [list(e["labels"]) for e in first] == [list(e["labels"]) for e in second]
        assert _labels_by_message(first) == _labels_by_message(docs["new"])
        names = {f["name"] for f in engine.fields(LO, HI)}
        assert {"labels.log.syslog.facility.name", "labels.log.syslog.severity.name",
                "labels.log.syslog.facility.code", "labels.log.syslog.severity.code",
                "labels.log.syslog.priority"} <= names
        engine.close()
