"""OTLP logs over HTTP (``POST /v1/logs``): protobuf, JSON, gzip, refusals (issue 19)."""

from __future__ import annotations

import gzip

import aiohttp
import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from tests.support.logs import HOST, metrics, stored

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


def kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def request(*records: LogRecord, service: str = "checkout") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend([kv("service.name", string_value=service),
                                   kv("service.instance.id", string_value="i-1"),
                                   kv("deployment.environment", string_value="prod")])
    sl = rl.scope_logs.add()
    sl.scope.name = "checkout.payments"
    sl.log_records.extend(records)
    return req


def record(body: str, **kw) -> LogRecord:
    return LogRecord(time_unix_nano=1795626000123456789, severity_number=17, severity_text="ERROR",
                     body=AnyValue(string_value=body), trace_id=TRACE, span_id=SPAN,
                     attributes=[kv("http.response.status_code", int_value=502),
                                 kv("order", int_value=42), kv("retry", bool_value=True)], **kw)


async def post(srv, body: bytes, ctype: str, **headers) -> tuple[int, bytes, str]:
    url = f"http://{HOST}:{srv.config.http_port}/v1/logs"
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers={
            "Content-Type": ctype, **headers}) as resp:
        return resp.status, await resp.read(), resp.content_type


async def test_protobuf_records_stored_with_resource_severity_trace_and_attributes(start_logs):
    srv = await start_logs()
    status, body, ctype = await post(srv, request(record("card declined")).SerializeToString(),
                                     "application/x-protobuf")
    assert status == 200 and ctype == "application/x-protobuf"
    answer = ExportLogsServiceResponse.FromString(body)
    assert answer.partial_success.rejected_log_records == 0
    [ev] = stored(srv.config.data_dir)  # a 200 means durable
    assert ev["message"] == "card declined" and ev["@timestamp"] == 1795626000123
    assert ev["service.name"] == "checkout" and ev["service.instance"] == "i-1"
    assert ev["log.level"] == "error" and ev["log.logger"] == "checkout.payments"
    assert ev["trace.id"] == TRACE.hex() and ev["http.response.status_code"] == 502
    assert ev["labels"] == {"span.id": SPAN.hex(), "order": 42, "retry": True,
                            "deployment.environment": "prod"}


async def test_json_and_gzip(start_logs):
    srv = await start_logs()
    doc = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"scope": {"name": "web.app"}, "logRecords": [
            {"timeUnixNano": "1795626000000000000", "severityNumber": 13,
             "body": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "7"}}]}},
             "traceId": TRACE.hex(), "spanId": SPAN.hex(),
             "attributes": [{"key": "tags", "value": {"arrayValue": {"values": [
                 {"stringValue": "x"}, {"doubleValue": 1.5}]}}}]},
            {"observedTimeUnixNano": "1795626000500000000", "body": {"stringValue": "second"},
             "severityNumber": "SEVERITY_NUMBER_INFO"}]}]}]}
    status, body, ctype = await post(srv, gzip.compress(orjson.dumps(doc)), "application/json",
                                     **{"Content-Encoding": "gzip"})
    assert status == 200 and ctype == "application/json" and orjson.loads(body) == {}
    first, second = stored(srv.config.data_dir)
    assert first["service.name"] == "web" and first["log.level"] == "warning"
    assert orjson.loads(first["message"]) == {"a": 7} and first["trace.id"] == TRACE.hex()
    assert first["labels"] == {"tags": ["x", 1.5], "span.id": SPAN.hex()}
    assert second["@timestamp"] == 1795626000500 and second["message"] == "second"
    assert second["log.level"] == "info"


async def test_truncated_protobuf_is_refused_in_otlp_form_and_counted(start_logs):
    srv = await start_logs()
    whole = request(record("a"), record("b")).SerializeToString()
    status, body, _ = await post(srv, whole[:-7], "application/x-protobuf")
    assert status == 400 and b"ExportLogsServiceRequest" in body  # a google.rpc.Status
    assert stored(srv.config.data_dir) == []
    status, _, _ = await post(srv, whole, "application/x-protobuf")  # the service goes on
    assert status == 200 and len(stored(srv.config.data_dir)) == 2
    samples = await metrics(srv.config.http_port)
    key = ("logmesh_ingest_rejected_total",
           frozenset({("worker", "0"), ("protocol", "otlp"), ("reason", "bad_protobuf")}))
    assert samples[key] == 1


async def test_a_bad_record_is_a_partial_success_and_the_others_are_stored(start_logs):
    srv = await start_logs()
    records = [{"body": {"stringValue": "good one"}},
               {"body": {"stringValue": "bad trace"}, "traceId": "not hex"},
               {"body": {"stringValue": "good two"}}]
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    status, body, _ = await post(srv, orjson.dumps(doc), "application/json")
    assert status == 200
    answer = orjson.loads(body)["partialSuccess"]
    assert answer["rejectedLogRecords"] == "1" and "traceId" in answer["errorMessage"]
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["good one", "good two"]
    samples = await metrics(srv.config.http_port)
    key = ("logmesh_ingest_rejected_total",
           frozenset({("worker", "0"), ("protocol", "otlp"), ("reason", "bad_field")}))
    assert samples[key] == 1


async def test_write_token_is_required(start_logs):
    from logmesh.security import ServerSecurity

    srv = await start_logs(security=ServerSecurity(write_token="w" * 24))
    payload = request(record("x")).SerializeToString()
    status, _, _ = await post(srv, payload, "application/x-protobuf")
    assert status == 401
    status, _, _ = await post(srv, payload, "application/x-protobuf", Authorization="Bearer " + "w" * 24)
    assert status == 200 and len(stored(srv.config.data_dir)) == 1


async def test_a_gzip_body_is_capped_once_unpacked(start_logs):
    """--max-body-size holds for what the body unpacks to, not its compressed size."""
    srv = await start_logs(max_body_bytes=1 << 20)
    packed = gzip.compress(b" " * (4 << 20))  # 4 MiB of JSON whitespace in ~4 KiB
    assert len(packed) < 1 << 16
    status, _, _ = await post(srv, packed, "application/json", **{"Content-Encoding": "gzip"})
    assert status == 413
    status, _, _ = await post(srv, request(record("x")).SerializeToString(), "application/x-protobuf")
    assert status == 200


async def test_an_out_of_range_time_names_the_field_and_unit_the_client_sent(start_logs):
    """It said "@timestamp 253402300800000 is not epoch milliseconds": a field and a unit the
    OTLP client never sent (outside20)."""
    srv = await start_logs()
    far = str(10_000 * 365 * 86_400 * 10**9)  # year ~11970 in nanoseconds: JSON only (past a uint64)
    records = [{"body": {"stringValue": "far"}, "timeUnixNano": far},
               {"body": {"stringValue": "far observed"}, "observedTimeUnixNano": far},
               {"body": {"stringValue": "good"}}]
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    status, body, _ = await post(srv, orjson.dumps(doc), "application/json")
    answer = orjson.loads(body)["partialSuccess"]
    assert status == 200 and answer["rejectedLogRecords"] == "2"
    assert f"timeUnixNano {far} is not epoch nanoseconds between 1970 and 9999" in answer["errorMessage"]
    assert "@timestamp" not in answer["errorMessage"] and "milli" not in answer["errorMessage"]
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["good"]


async def test_content_encoding_given_twice_is_read_as_one_list(start_logs):
    """HTTP reads a header given twice as the comma-joined list. Found from outside: only the
    first was read, so ``identity`` + ``gzip`` took a gzip body as it came (400), and
    ``identity`` + ``gzip`` over a plain body stored it as if no coding were named."""
    from multidict import CIMultiDict

    srv = await start_logs()

    async def post_coded(body: bytes, *codings: str) -> tuple[int, bytes]:
        headers = CIMultiDict([("Content-Type", "application/json"),
                               *(("Content-Encoding", c) for c in codings)])
        async with aiohttp.ClientSession() as s, s.post(
                f"http://{HOST}:{srv.config.http_port}/v1/logs", data=body, headers=headers) as resp:
            return resp.status, await resp.read()

    doc = orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "twice"}}]}]}]})
    status, _ = await post_coded(gzip.compress(doc), "identity", "gzip")
    assert status == 200
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["twice"]
    status, _ = await post_coded(doc, "identity", "gzip")  # says gzip, is not
    assert status == 400
    status, body = await post_coded(gzip.compress(doc), "gzip", "deflate")
    assert status == 415 and b"gzip, deflate" in body
    assert len(stored(srv.config.data_dir)) == 1
