"""Loki push (``POST /loki/api/v1/push``): JSON and snappy protobuf (issue 19)."""

from __future__ import annotations

import aiohttp
import cramjam
import orjson

from logmesh.logs.ingest.loki import MESSAGES, parse_labels
from tests.support.logs import HOST, metrics, stored

NS = 1795626000123000000


async def push(srv, body: bytes, ctype: str) -> tuple[int, str]:
    url = f"http://{HOST}:{srv.config.http_port}/loki/api/v1/push"
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers={"Content-Type": ctype}) as r:
        return r.status, await r.text()


def protobuf_push(labels: str, *lines: tuple[int, str, dict]) -> bytes:
    req = MESSAGES["PushRequest"]()
    stream = req.streams.add(labels=labels)
    for ns, line, meta in lines:
        entry = stream.entries.add(line=line)
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(ns, 1_000_000_000)
        for k, v in meta.items():
            entry.structuredMetadata.add(name=k, value=v)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


async def test_json_push_labels_and_service_name(start_logs):
    srv = await start_logs()
    doc = {"streams": [
        {"stream": {"job": "cron", "level": "ERROR", "host": "db-1"},
         "values": [[str(NS), "backup failed"], [str(NS + 1_000_000), "retrying", {"try": "2"}]]},
        {"stream": {"service_name": "api", "app": "ignored-for-service"}, "values": [["0", "now"]]}]}
    status, text = await push(srv, orjson.dumps(doc), "application/json")
    assert status == 204, text
    a, b, c = stored(srv.config.data_dir)
    assert a["message"] == "backup failed" and a["@timestamp"] == 1795626000123
    assert a["service.name"] == "cron" and a["log.level"] == "error"
    # `job` names the service and stays a label: Loki's users select streams by it (job:cron)
    assert a["labels"] == {"job": "cron", "host": "db-1"}
    assert b["labels"] == {"job": "cron", "host": "db-1", "try": "2"} and b["@timestamp"] == 1795626000124
    assert c["service.name"] == "api" and c["labels"] == {"app": "ignored-for-service"}
    assert c["@timestamp"] == c["received_at"]


async def test_snappy_protobuf_push(start_logs):
    srv = await start_logs()
    body = protobuf_push('{app="shop", env="prod", note="a \\"quoted\\" word"}',
                         (NS, "GET /cart 200", {}), (NS + 5, "GET /pay 500", {"trace_id": "t1"}))
    status, text = await push(srv, body, "application/x-protobuf")
    assert status == 204, text
    first, second = stored(srv.config.data_dir)
    assert first["service.name"] == "shop" and first["message"] == "GET /cart 200"
    assert first["labels"] == {"app": "shop", "env": "prod", "note": 'a "quoted" word'}
    assert second["labels"]["trace_id"] == "t1"


async def test_bad_pushes_are_refused_counted_and_the_service_goes_on(start_logs):
    srv = await start_logs()
    whole = protobuf_push('{app="x"}', (NS, "one", {}), (NS, "two", {}))
    raw = bytes(cramjam.snappy.decompress_raw(whole))
    truncated = bytes(cramjam.snappy.compress_raw(raw[:-3]))
    assert (await push(srv, truncated, "application/x-protobuf"))[0] == 400
    status, text = await push(srv, b"not snappy at all", "application/x-protobuf")
    assert status == 400 and "snappy" in text
    assert (await push(srv, protobuf_push("app=x", (NS, "l", {})), "application/x-protobuf"))[0] == 400
    # one bad entry among good ones: Loki's rule, the good ones stored and the push answered 400
    doc = {"streams": [{"stream": {"app": "x"}, "values": [[str(NS), "good"], ["soon", "bad"],
                                                          [str(NS), "also good"]]}]}
    status, text = await push(srv, orjson.dumps(doc), "application/json")
    assert status == 400 and "1 entries refused, 2 stored" in text
    assert (await push(srv, whole, "application/x-protobuf"))[0] == 204
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["good", "also good", "one", "two"]
    samples = await metrics(srv.config.http_port)
    by_reason = {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                 if name == "logmesh_ingest_rejected_total" and ("protocol", "loki") in labels}
    assert by_reason == {"bad_protobuf": 1, "bad_snappy": 1, "bad_labels": 1, "bad_timestamp": 1}
    assert samples[("logmesh_ingest_events_total",
                    frozenset({("worker", "0"), ("protocol", "loki")}))] == 4


def test_label_sets():
    assert parse_labels('{a="1",b="x\\\\y"}') == {"a": "1", "b": "x\\y"}
    assert parse_labels("{}") == {}


async def test_a_snappy_body_is_capped_by_its_declared_length_before_unpacking(start_logs):
    srv = await start_logs(max_body_bytes=1 << 20)
    body = protobuf_push('{app="x"}', (NS, "y" * (2 << 20), {}))
    assert len(body) < 1 << 20
    status, text = await push(srv, body, "application/x-protobuf")
    assert status == 413 and "--max-body-size" in text
    assert stored(srv.config.data_dir) == []


# Lines as loki-logger-handler (JSON) and Grafana Alloy / Go services (logfmt) push them, in a
# stream with no level label: Loki reads the level out of the line (discover_log_levels).
LEVELLED = [
    ('{"message": "db down", "level": "ERROR", "logger": "app"}', "error"),
    ("ts=2026-11-30T10:00:00Z level=warn msg=\"disk 91%\"", "warning"),
    ('{"msg": "slow", "lvl": "dbg"}', "debug"),
    ('lvl="Info" caller=main.go:12', "info"),
    ('{"severity": "critical", "x": 1}', "critical"),
    ("SEVERITY=fatal something", "fatal"),
    ('{"ctx": {"level": "error"}, "msg": "nested: not Loki\'s top-level key"}', "info"),
    ("0 errors, level unknown", "info"),
    ('{"level": "verbose"}', "info"),
    ("plain text line", "info"),
]


async def test_a_line_carrying_its_level_is_stored_at_that_level_when_the_stream_has_none(start_logs):
    srv = await start_logs()
    lines = [line for line, _ in LEVELLED]
    doc = {"streams": [{"stream": {"service_name": "api"},
                        "values": [[str(NS + i), line] for i, line in enumerate(lines)]}]}
    status, text = await push(srv, orjson.dumps(doc), "application/json")
    assert status == 204, text
    body = protobuf_push('{app="shop"}', *((NS + i, line, {}) for i, line in enumerate(lines)))
    status, text = await push(srv, body, "application/x-protobuf")
    assert status == 204, text
    # per entry (structured metadata takes that path) as in a run
    body = protobuf_push('{app="shop"}', *((NS + i, line, {"k": "v"}) for i, line in enumerate(lines)))
    status, text = await push(srv, body, "application/x-protobuf")
    assert status == 204, text
    # a level label wins over the line's
    doc = {"streams": [{"stream": {"service_name": "api", "level": "notice"},
                        "values": [[str(NS), lines[0]]]}]}
    status, text = await push(srv, orjson.dumps(doc), "application/json")
    assert status == 204, text
    events = stored(srv.config.data_dir)
    want = [level for _, level in LEVELLED]
    assert [e["log.level"] for e in events] == want * 3 + ["notice"]
    assert [e["message"] for e in events[:len(lines)]] == lines


def test_line_level_reads_what_loki_reads():
    from logmesh.logs.ingest.line_level import levels_of, line_level

    for line, level in LEVELLED:
        assert (line_level(line) or "info") == level, line
    assert levels_of(["a", "b"], "info") == "info"
    assert levels_of(["level=error", "level=ERR"], "info") == "error"
    assert levels_of(["level=error", "x"], "info") == ["error", "info"]
    assert line_level("   {\"Level\": \"WRN\"}  ") == "warning"
    assert line_level("{not json level}") is None


async def test_an_out_of_range_timestamp_is_named_briefly(start_logs):
    """A 300-digit timestamp is refused with an answer that quotes its start, not every digit."""
    srv = await start_logs()
    doc = {"streams": [{"stream": {"app": "x"}, "values": [["1" + "0" * 300, "far"], [str(NS), "ok"]]}]}
    status, text = await push(srv, orjson.dumps(doc), "application/json")
    assert status == 400 and "not between 1970 and 9999" in text, text
    assert "0" * 60 not in text and len(text) < 400, text
    assert [e["message"] for e in stored(srv.config.data_dir)] == ["ok"]
