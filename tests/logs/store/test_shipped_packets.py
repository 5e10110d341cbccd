"""A shipped request packet stored unparsed reads as the same packet stored parsed.

An acked batch of a service's request packets is stored as the book's packets are: the
packet's text as ``message`` alone, its method, path, key, trace id and params derived where
lines are read (ingest/shipped.py). Lines stored before hold those fields beside ``message``,
as do packets the fast path does not take unparsed. Every reader must show both forms alike:
DuckDB's relation over segments (queries, the field list, tail, /mesh counts, compaction to
Parquet: store/columns.py) and Python's (the Elasticsearch sink: event.derive_request).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmesh.logs.event import derive_request
from logmesh.logs.ingest import shipped
from logmesh.logs.query import kql
from logmesh.logs.query.engine import Engine
from logmesh.logs.sinks.elasticsearch.encode import encode_block
from logmesh.logs.store.columns import read_ndjson_lenient_sql, read_ndjson_sql
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.duck import duckdb
from tests.support.store import HOUR, T0, write_store

LO, HI = T0 - HOUR, T0 + 10 * HOUR
SOURCE = ("127.0.0.1", 5000)
_encode_lines = msgspec.json.Encoder().encode_lines
FIELDS = ["http.request.method", "url.path", "trace.id", "key", "params", "message"]


def _batch(packets: list[str], first: int = 1, ts: int = T0) -> shipped.ShippedBatch:
    return msgspec.json.decode(orjson.dumps(
        {"service": "goods", "instance": "goods-1",
         "events": [[first + i, ts + i, p] for i, p in enumerate(packets)]}), type=shipped.ShippedBatch)


def _forms(packets: list[str], first: int = 1, ts: int = T0) -> tuple[list, list]:
    """The packets' lines unparsed (as batch_lines stores them now) and parsed (as before)."""
    batch = _batch(packets, first, ts)
    new = shipped.batch_lines(batch, ts, SOURCE, None)
    assert new is not None
    assert all(isinstance(x, shipped.PacketLine) for x in new), packets
    raws = [ev.raw for ev in batch.events]
    old = shipped._parsed_packets(batch, "\n".join(raws), raws, ts, SOURCE, None)
    assert old is not None and len(old) == len(new)
    return new, old


MESH = [f'{{"uri":"/goods","method":"GET","key":{i},"params":{{"key":{i}}},"trace.id":"{i:032x}"}}'
        for i in range(10)] + [
    f'{{"uri":"/goods","method":"POST","key":{i},"params":{{"name":"pen","price":1.5,"key":{i}}},'
    f'"trace.id":"{i:032x}"}}' for i in range(10, 20)]
ODD = ['{"uri":"/g\\u00e9\\"x","method":"DELETE","key":"k-1","params":{"a":[1,2.50,{"b":null}]}}',
       '{"uri":"/goods","method":"GET","key":-9223372036854775808}',
       '{"method":"GET","key":9223372036854775807,"params":"text","trace.id":"t"}',
       '{"uri":"/goods","key":0,"params":[],"other":{"method":"x"}}',
       '{"key":"only"}',
       '{"uri":"/\u00fc\u4e2d","method":"PUT","key":"\\ud83d\\ude00","params":{"e":1e5}}']

# A packet the fast path stores parsed, as before (each read by the same rule).
PARSED = ['{"uri":"/goods","method":"GET","params":{"key":1}}',  # no key of its own
          '{"uri":"/goods","method":"GET","key":null}',
          '{"uri":"/goods","method":"GET","key":1,"params":null}',
          '{"uri":"/goods","method":"GET","key":1.5}',
          '{"uri":"/goods","method":["GET"],"key":1}',
          '{"uri":"/goods","method":"GET","key":18446744073709551615}',
          '{"uri":"/goods","method":"GET","key":true}',
          '{"uri":5,"method":"GET","key":1}']


def test_plain_packets_are_stored_unparsed_and_others_parsed():
    new, old = _forms(MESH + ODD)
    for line in _encode_lines(new).splitlines():
        assert b'"url.path"' not in line and b'"params"' not in line and b'"key"' not in line
    assert len(_encode_lines(new)) < len(_encode_lines(old)) - 20 * 80
    for packet in PARSED:
        got = shipped.batch_lines(_batch([packet]), T0, SOURCE, None)
        assert got is None or isinstance(got[0], shipped.ShippedLine), packet


def _python(lines: list) -> list[dict]:
    return [derive_request(orjson.loads(x)) for x in _encode_lines(lines).splitlines()]


def test_python_rule_reads_both_forms_alike():
    new, old = _forms(MESH + ODD)
    assert _python(new) == _python(old)


def _rows(path, lenient: bool) -> list[tuple]:
    sql = (read_ndjson_lenient_sql if lenient else read_ndjson_sql)(str(path))
    cols = ", ".join(f'"{f}"' for f in FIELDS)
    rows = duckdb.connect().execute(f"SELECT {cols} FROM {sql} ORDER BY seq").fetchall()
    return [tuple(orjson.loads(v) if f == "params" and v is not None else v
                  for f, v in zip(FIELDS, row, strict=True)) for row in rows]


def _sql_alike(tmp_path, packets: list[str]) -> None:
    new, old = _forms(packets)
    for i, line in enumerate(new):
        line.seq = i
    for i, line in enumerate(old):
        line.seq = i
    (tmp_path / "new").mkdir(exist_ok=True)
    (tmp_path / "old").mkdir(exist_ok=True)
    (tmp_path / "new" / "w00-1.ndjson").write_bytes(_encode_lines(new))
    (tmp_path / "old" / "w00-1.ndjson").write_bytes(_encode_lines(old))
    for lenient in (False, True):
        got, want = (_rows(tmp_path / d / "w00-1.ndjson", lenient) for d in ("new", "old"))
        assert got == want
        # and the Python rule reads what DuckDB reads
        py = [tuple(ev.get(f) for f in FIELDS) for ev in _python(new)]
        assert got == py


def test_sql_rule_reads_both_forms_alike(tmp_path):
    _sql_alike(tmp_path, MESH + ODD)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_json = st.recursive(st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1)
                     | st.floats(allow_nan=False, allow_infinity=False, width=64) | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=6)


@st.composite
def _packets(draw: Any) -> list[str]:
    out = []
    for _ in range(draw(st.integers(1, 5))):
        packet: dict[str, Any] = {}
        for name, strategy in (("uri", _text), ("method", _text), ("trace.id", _text)):
            if draw(st.booleans()):
                packet[name] = draw(strategy)
        packet["key"] = draw(_text | st.integers(-(2 ** 63), 2 ** 63 - 1))
        if draw(st.booleans()):
            packet["params"] = draw(st.dictionaries(_text, _json, max_size=3) | _json.filter(
                lambda v: v is not None))
        items = list(packet.items())
        draw(st.randoms()).shuffle(items)
        out.append(orjson.dumps(dict(items)).decode())
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_packets())
def test_both_forms_read_alike_for_any_plain_packet(tmp_path, packets):
    assert _python(_forms(packets)[0]) == _python(_forms(packets)[1])
    _sql_alike(tmp_path, packets)


def _lines_at(packets: list[str], first: int, ts: int, unparsed: bool) -> list:
    new, old = _forms(packets, first, ts)
    return new if unparsed else old


@pytest.mark.parametrize("phase", ["live", "compacted"])
async def test_a_store_of_both_forms_reads_alike_queried_tailed_and_sunk(tmp_path, phase):
    packets = MESH + ODD
    n = len(packets)
    store = tmp_path / "mixed"
    writer = await write_store(store, [_lines_at(packets, 1, T0, False),
                                       _lines_at(packets, 1 + n, T0 + 2 * n, True)])
    await writer.close()
    raw = b"".join(p.read_bytes() for p in sorted((store / "segments").glob("*.ndjson")))

    # the Elasticsearch sink's documents: the same but for seq, event.id and @timestamp
    block = encode_block(raw)
    assert block is not None and len(block.seqs) == 2 * n
    docs = [orjson.loads(x) for x in block.body.splitlines()[1::2]]

    def same(events: list[dict]) -> None:
        first, second = events[:n], events[n:]
        for a, b in zip(first, second, strict=True):
            for k in ("seq", "event.id", "@timestamp", "received_at", "_id"):
                a.pop(k, None), b.pop(k, None)
        assert first == second

    same(docs)

    if phase == "compacted":
        assert Compactor(store, grace=0).run_once() == 2
        assert not list((store / "segments").glob("*.ndjson"))
    engine = Engine(store)
    try:
        events, _ = engine.search(None, LO, HI, limit=1000, order="asc")
        assert len(events) == 2 * n
        same(sorted(events, key=lambda e: e["seq"]))
        for q, want in (("http.request.method:POST", 20), ("url.path:/goods", 2 * 22),
                        ("key:15", 2), ('trace.id:"0000000000000000000000000000000c"', 2),
                        ("params.name:pen", 20), ("http.request.method:DELETE", 2)):
            got, _ = engine.search(kql.parse(q), LO, HI, limit=1000)
            assert len(got) == want, (phase, q, len(got))
        names = {f["name"] for f in engine.fields(LO, HI)}
        assert {"http.request.method", "url.path", "trace.id", "key"} <= names
        counts = engine.service_counts(LO, HI)
        assert counts["goods"]["requests"] == 2 * 24  # every packet with a method of its own
        if phase == "live":
            tailed, _ = engine.tail(None, 0, now=T0 + HOUR)
            assert len(tailed) == 2 * n
            same(sorted(tailed, key=lambda e: e["seq"]))
    finally:
        engine.close()
