"""Loki entries stored as runs (line_block.py, the column view of the protobuf, msgspec
for JSON) give the very lines the per-entry path gives (issue 19): both run on one body."""

from __future__ import annotations

import cramjam
import orjson
import pytest

from logmesh.logs.ingest import loki

from .runs_support import assert_stores_alike, lines

RECEIVED = 1795626999000
NS = 1795626000123456789
LINES = ["plain", 'a "quoted" {json}', "tab\there\nnewline \\ back", "caf\u00e9 \u2603 \U0001f600"]



def protobuf(*streams: tuple[str, list[tuple[int, int, str, dict]]]) -> bytes:
    req = loki.MESSAGES["PushRequest"]()
    for labels, entries in streams:
        stream = req.streams.add(labels=labels)
        for seconds, nanos, line, meta in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = seconds, nanos
            for k, v in meta.items():
                entry.structuredMetadata.add(name=k, value=v)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def entries(n: int, **kw) -> list[tuple[int, int, str, dict]]:
    return [(kw.get("seconds", NS // 10**9 + i), kw.get("nanos", NS % 10**9), kw.get("line", LINES[i % 4]),
             kw.get("meta", {})) for i in range(n)]


LABELS = ['{app="shop", level="WARN", env="prod"}', '{}', '{job="cron", note="a \\"q\\""}']
PB_CASES = {
    "plain": [entries(8)],
    "whole seconds": [entries(3, nanos=0)],
    "some whole seconds": [entries(2) + entries(2, nanos=0) + entries(1)],
    "seconds before 1978": [entries(1, seconds=5, nanos=1) + entries(1, seconds=6, nanos=0)],
    "at 0 ns": [entries(2, seconds=0, nanos=0)],
    "negative": [entries(2, seconds=-5)],
    "past 9999": [entries(2, seconds=2**62)],
    "empty line": [entries(2) + entries(1, line="")],
    "metadata": [entries(2) + entries(1, meta={"trace_id": "t1"})],
    "three streams": [entries(2), entries(1, meta={"k": "v"}), entries(3)],
}


@pytest.mark.parametrize("streams", PB_CASES.values(), ids=PB_CASES.keys())
@pytest.mark.parametrize("labels", LABELS)
def test_protobuf_runs_store_what_the_per_entry_path_stores(monkeypatch, streams, labels):
    body = protobuf(*[(labels, e) for e in streams])
    fast = loki.parse_protobuf(body, RECEIVED, 1 << 30)
    monkeypatch.setattr(loki, "_run", lambda *a: False)
    slow = loki.parse_protobuf(body, RECEIVED, 1 << 30)
    assert lines(fast) == lines(slow) and fast.rejected == slow.rejected


def test_plain_streams_are_stored_as_runs():
    """The comparison above is not of one path with itself."""
    for case in (entries(5), PB_CASES["some whole seconds"][0]):
        parsed = loki.parse_protobuf(protobuf(('{app="a"}', case)), RECEIVED, 1 << 30)
        assert [type(p).__name__ for p in parsed.block.parts] == ["_Run"]
    doc = {"streams": [{"stream": {"app": "a"}, "values": [[str(NS), "x"]]}]}
    assert [type(p).__name__ for p in loki.parse_json(orjson.dumps(doc), RECEIVED).block.parts] == ["_Run"]


JSON_VALUES = {
    "plain": [[str(NS + i), line] for i, line in enumerate(LINES)],
    "escapes kept as sent": f'[["{NS}", "caf\\u00e9 \\"x\\" \\ud83d\\ude00"]]',
    "a lone surrogate": f'[["{NS}", "bad \\ud800 half"]]',
    "at 0 ns": [["0", "now"], [str(NS), "then"]],
    "a bad timestamp": [["soon", "x"], [str(NS), "y"]],
    "negative": [["-5000000", "x"]],
    "metadata": [[str(NS), "x", {"trace_id": "t"}], [str(NS), "y"]],
    "bad metadata": [[str(NS), "x", {"n": 1}]],
    "a line that is no string": [[str(NS), 5]],
    "too long an entry": [[str(NS), "x", {}, "extra"]],
    "empty": [],
}


@pytest.mark.parametrize("values", JSON_VALUES.values(), ids=JSON_VALUES.keys())
@pytest.mark.parametrize("labels", ['{"app": "shop", "level": "WARN"}', "{}", '{"n": 1}'])
def test_json_runs_store_what_the_per_entry_path_stores(values, labels):
    values = values if isinstance(values, str) else orjson.dumps(values).decode()
    body = ('{"streams": [{"stream": ' + labels + ', "values": ' + values + '}, '
            '{"stream": {"job": "j"}, "values": [["' + str(NS) + '", "b"]]}]}').encode()
    assert_stores_alike(lambda b: loki.parse_json(b, RECEIVED), lambda b: loki._parse_json_slow(b, RECEIVED),
                        body, loki.BadPush)


@pytest.mark.parametrize("line", [b'"bad \xff\xfe utf-8"', b'"a bad \\x escape"', b'"a raw\ttab"',
                                  b'{"an": "object"}', b'[\n"x"]', b'"ok \xc3\xa9"', b"null"])
def test_a_line_is_stored_only_as_a_json_string_in_utf8(line):
    """msgspec's Raw skip checks escapes and control characters, not UTF-8 or the kind."""
    body = b'{"streams": [{"stream": {"app": "a"}, "values": [["%d", "fine"], ["%d", %s]]}]}' % (
        NS, NS, line)
    assert_stores_alike(lambda b: loki.parse_json(b, RECEIVED), lambda b: loki._parse_json_slow(b, RECEIVED),
                        body, loki.BadPush)
