"""One OTLP record whose body is 6 MB of control characters, within every default limit,
is stored as a 36 MB line (JSON writes each as ``\\u0001``): longer than DuckDB reads with
its ``maximum_object_size`` of 16 MB (~32 MB), which it then fails the whole read for, the
lenient read with ``ignore_errors`` too. Found from outside: every search answered 500 while
that line sat in the live segment, and once it was sealed its compaction failed every minute
for ever. Now the read is done again with room for the longest line (store/long_lines.py).
"""

from __future__ import annotations

import time
import urllib.request

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from tests.support.procs import HOST, http_json, wait_for

BODY_CHARS = 6_000_000  # 36 MB stored: past DuckDB's ~32 MB at a maximum_object_size of 16 MB


def post_otlp(http_port: int, bodies: list[str]) -> None:
    req = logs_service_pb2.ExportLogsServiceRequest()
    scope = req.resource_logs.add().scope_logs.add()
    for body in bodies:
        record = scope.log_records.add()
        record.time_unix_nano = time.time_ns()
        record.body.string_value = body
    http = urllib.request.Request(f"http://{HOST}:{http_port}/v1/logs", data=req.SerializeToString(),
                                  method="POST", headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(http, timeout=60) as resp:
        assert resp.status == 200


def found(http_port: int, word: str) -> list[str]:
    events = http_json(http_port, "/api/v1/search", q=word, limit="100", **{"from": "now-1h"})["events"]
    return sorted(e["message"] for e in events)


def test_a_line_longer_than_duckdbs_buffers_is_searched_and_compacted(procs, tmp_path):
    data = tmp_path / "data"
    _, _, http_port = procs.logs(data, "--max-segment-size", "1MB")
    long_text = "longline " + "\x01" * BODY_CHARS
    post_otlp(http_port, [long_text, "longline beside"])
    [segment] = (data / "segments").glob("*.ndjson")
    assert segment.stat().st_size > 6 * BODY_CHARS
    # live: every search read the segment's new lines and failed (500) on the long one
    wait_for(lambda: found(http_port, "beside") == ["longline beside"], 30, "the live segment searched")
    assert len(found(http_port, "longline")) == 2

    post_otlp(http_port, ["after the seal"])  # the segment is past 1 MB: this seals it
    # sealed, then compacted once its grace is over; it failed every minute for ever
    wait_for(lambda: not list((data / "segments").glob("*.idx.json"))
             and list((data / "parquet").glob("*.parquet")), 60, "the sealed segment compacted")
    assert found(http_port, "longline") == sorted([long_text, "longline beside"])
    assert found(http_port, "seal") == ["after the seal"]
    assert not (data / "quarantine").exists(), "nothing set aside: the long line is an acknowledged event"
