"""OTLP records stored as runs (otlp_columns.py, line_block.py) give the very lines
the per-record path gives (issue 19): every mapping is checked by running both on one body."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from logmesh.logs.ingest import otlp, otlp_json

from .runs_support import assert_stores_alike, lines

RECEIVED = 1795626999000
NS = 1795626000123456789
TRACE, SPAN = bytes.fromhex("5B8EFFF798038103D269B633813FC60C"), bytes.fromhex("eee19b7ec3c1b174")
TEXTS = ["plain", 'a "quoted" {json}', "tab\there\nnewline \\ back", "caf\u00e9 \u2603 \U0001f600", ""]



def kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def pb_body(*scopes: list[LogRecord], resource: list[KeyValue] | None = None,
            logger: str = "app") -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(resource if resource is not None else [
        kv("service.name", string_value="shop"), kv("service.instance.id", int_value=7),
        kv("env", string_value="prod"), kv("team", kvlist_value={"values": [kv("a", bool_value=True)]})])
    for records in scopes:
        sl = rl.scope_logs.add()
        sl.scope.name = logger
        sl.log_records.extend(records)
    return req.SerializeToString()


def rec(i: int, **kw) -> LogRecord:
    args = {"time_unix_nano": NS + i * 1_000_000, "severity_text": "Warn",
            "body": AnyValue(string_value=TEXTS[i % len(TEXTS)])}
    args.update(kw)
    return LogRecord(**{k: v for k, v in args.items() if v is not None})


PB_CASES = {
    "plain": [[rec(i) for i in range(10)]],
    "ids on every record": [[rec(i, trace_id=TRACE, span_id=SPAN) for i in range(6)]],
    "ids on some": [[rec(0, trace_id=TRACE), rec(1), rec(2, span_id=SPAN), rec(3, trace_id=TRACE, span_id=SPAN)]],
    "an id's bytes in a body without one": [[rec(0, trace_id=TRACE), rec(1, body=AnyValue(
        string_value="J\x10 R\x08"))]],
    "an id's bytes in a body with one": [[rec(0, trace_id=TRACE, span_id=SPAN, body=AnyValue(
        string_value="J\x10 R\x08")), rec(1)]],
    "an id of another length": [[rec(0, trace_id=TRACE[:8]), rec(1)]],
    "the SDK, some records in a span": [[rec(i, trace_id=TRACE if i % 3 else None, span_id=SPAN if i % 3 else None,
                                             attributes=[kv("code.lineno", int_value=i)]) for i in range(7)]],
    "severity numbers": [[rec(i, severity_text=None, severity_number=n)
                          for i, n in enumerate([1, 5, 9, 13, 17, 21, 24, 25])]],
    "no severity": [[rec(i, severity_text=None) for i in range(3)]],
    "observed time only": [[rec(i, time_unix_nano=None, observed_time_unix_nano=NS + i) for i in range(3)]],
    "no time": [[rec(i, time_unix_nano=None) for i in range(3)]],
    "a time past 9999": [[rec(0), rec(1, time_unix_nano=2**64 - 1)]],
    "attributes": [[rec(0, attributes=[kv("http.response.status_code", int_value=502),
                                       kv("exception.stacktrace", string_value="tb")]), rec(1)]],
    "a body that is no string": [[rec(0, body=AnyValue(int_value=5)), rec(1)]],
    "no body": [[rec(0, body=None)]],
    "attributes as the SDK sends them": [[rec(i, trace_id=TRACE, span_id=SPAN, attributes=[
        kv("code.filepath", string_value=f"/app/{i}.py"), kv("code.lineno", int_value=i),
        kv("ok", bool_value=i % 2 == 0), kv("ratio", double_value=i / 3),
        kv("exception.message", string_value="renamed")]) for i in range(5)]],
    "attributes, no ids": [[rec(i, attributes=[kv("a", string_value=str(i)), kv("b", int_value=-i)])
                            for i in range(4)]],
    "attributes of another kind on one record": [[
        rec(0, attributes=[kv("a", string_value="x"), kv("b", int_value=1)]),
        rec(1, attributes=[kv("a", int_value=2), kv("b", string_value="y")])]],
    "attributes in another order": [[rec(0, attributes=[kv("a", string_value="x"), kv("b", int_value=1)]),
                                     rec(1, attributes=[kv("b", int_value=2), kv("a", string_value="y")])]],
    "attributes on some records": [[rec(0, attributes=[kv("a", string_value="x")]), rec(1), rec(2)]],
    "an attribute that sets a field": [[rec(i, attributes=[kv("exception.stacktrace", string_value="tb")])
                                        for i in range(2)]],
    "an attribute named as the resource's": [[rec(i, attributes=[kv("env", string_value="dev")])
                                              for i in range(2)]],
    "a nested attribute": [[rec(i, attributes=[kv("m", kvlist_value={"values": [kv("x", int_value=1)]})])
                            for i in range(2)]],
    "two scopes, one plain": [[rec(0), rec(1)], [rec(2, attributes=[kv("k", string_value="v")])], [rec(3)]],
}


@pytest.mark.parametrize("scopes", PB_CASES.values(), ids=PB_CASES.keys())
@pytest.mark.parametrize("resource", ["default", "none", "ECS-named"])
def test_protobuf_runs_store_what_the_per_record_path_stores(monkeypatch, scopes, resource):
    attrs = {"default": None, "none": [], "ECS-named": [
        kv("service.name", string_value="x"), kv("log.level", string_value="error")]}[resource]
    body = pb_body(*scopes, resource=attrs)
    fast = otlp.parse_protobuf(body, RECEIVED)
    monkeypatch.setattr(otlp, "_pb_run", lambda *a: False)
    slow = otlp.parse_protobuf(body, RECEIVED)
    assert lines(fast) == lines(slow) and fast.rejected == slow.rejected
    assert fast.block.count == slow.block.count and fast.block.count > 0


def test_plain_scopes_are_stored_as_runs():
    """The comparison above is not of one path with itself: plain scopes take a run."""
    for case in ("plain", "attributes as the SDK sends them", "attributes, no ids", "ids on some",
                 "the SDK, some records in a span", "an id's bytes in a body with one"):
        parsed = otlp.parse_protobuf(pb_body(PB_CASES[case][0]), RECEIVED)
        assert [type(p).__name__ for p in parsed.block.parts] == ["_Run"], case
    for case in ("attributes of another kind on one record", "an id's bytes in a body without one"):
        parsed = otlp.parse_protobuf(pb_body(PB_CASES[case][0]), RECEIVED)
        assert [type(p).__name__ for p in parsed.block.parts] == ["list"], case
    doc = orjson.loads(otlp_json_body(PB_CASES["plain"][0]))
    assert [type(p).__name__ for p in otlp_json.parse_json(orjson.dumps(doc), RECEIVED).block.parts] == ["_Run"]


def otlp_json_body(records: list[LogRecord], **record_fields) -> bytes:
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(ExportLogsServiceRequest.FromString(pb_body(records)))
    for rl in doc["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for r in sl["logRecords"]:  # OTLP JSON writes ids in hex, not base64
                for name in ("traceId", "spanId"):
                    if name in r:
                        r[name] = __import__("base64").b64decode(r[name]).hex()
                r.update(record_fields)
    return orjson.dumps(doc)


JSON_CASES = {name: scopes[0] for name, scopes in PB_CASES.items() if len(scopes) == 1}


@pytest.mark.parametrize("records", JSON_CASES.values(), ids=JSON_CASES.keys())
@pytest.mark.parametrize("extra", [{}, {"traceId": TRACE.hex().upper(), "spanId": SPAN.hex()},
                                   {"traceId": "nothex" * 5 + "zz"}, {"traceId": "ab" * 8 + "\n" + "c" * 15},
                                   {"severityNumber": "SEVERITY_NUMBER_ERROR"},
                                   {"severityNumber": "SEVERITY_NUMBER_NOPE"}, {"timeUnixNano": "0"},
                                   {"timeUnixNano": "soon"}, {"attributes": []}, {"flags": 1},
                                   # int64s read as one array (otlp_json._ints): as int() reads each
                                   {"timeUnixNano": NS}, {"timeUnixNano": "1,2"}, {"timeUnixNano": "-1"},
                                   {"timeUnixNano": " 1795626000123456789 "}, {"timeUnixNano": "1e18"},
                                   {"timeUnixNano": "0", "observedTimeUnixNano": str(NS)},
                                   {"body": None}, {"body": {}}])
def test_json_runs_store_what_the_per_record_path_stores(records, extra):
    body = otlp_json_body(records, **extra)
    fast, slow = otlp_json.parse_json(body, RECEIVED), otlp_json._parse_json_slow(body, RECEIVED)
    assert lines(fast) == lines(slow) and fast.rejected == slow.rejected


@pytest.mark.parametrize("value", [b'"bad \xff\xfe utf-8"', b'"a bad \\x escape"', b'"a raw\ttab"',
                                   b'{"an": "object"}', b'[\n"x"]', b'"ok \xc3\xa9"', b"5",
                                   b'"cut short \xe3\x81"', b'"\xed\xa0\x80 a surrogate"',
                                   b'"\xc0\xaf overlong"', b'"\xeb\xb3\xbc\xed\x8e\x9c"'])
def test_a_body_is_stored_only_as_a_json_string_in_utf8(value):
    """msgspec's Raw skip checks escapes and control characters, not UTF-8 or the kind."""
    body = (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "fine"}}, '
            b'{"body": {"stringValue": %s}}]}]}]}' % value)
    assert_stores_alike(lambda b: otlp_json.parse_json(b, RECEIVED),
                        lambda b: otlp_json._parse_json_slow(b, RECEIVED), body, otlp.BadRequest)



def test_a_column_of_another_length_is_refused_not_cut():
    """map() stops at its shortest input: a short column would store fewer lines than counted."""
    from logmesh.logs.ingest.line_block import LineBlock

    with pytest.raises(ValueError, match="message"):
        LineBlock().add_run([1, 2, 3], received_at=5, message=["a", "b"])
