"""HTTP ingest bodies found by a mutational fuzzer: requests with no body, bad UTF-8 in OTLP JSON.

aiohttp hands every request without a body one shared ``EmptyStreamReader``, whose
``iter_chunks`` ends only the first time it is read (aiohttp issues 7616 and 11397): the
second bodiless POST of the process made ``read_whole`` spin on the event loop for ever,
and the whole service (every port, /healthz) stopped answering. Each must be answered.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from tests.support.procs import HOST

ROUTES = [("/api/v1/logs", "application/x-ndjson"), ("/v1/logs", "application/json"),
          ("/v1/logs", "application/x-protobuf"), ("/_bulk", "application/x-ndjson"),
          ("/loki/api/v1/push", "application/json")]


def status(http_port: int, path: str, content_type: str | None, method: str = "POST") -> int:
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(f"http://{HOST}:{http_port}{path}", data=b"" if method == "POST" else None,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_requests_without_a_body_are_answered_every_time(procs, tmp_path):
    _, _, http_port = procs.logs(tmp_path / "data")
    for _ in range(3):
        for path, content_type in ROUTES:
            assert status(http_port, path, content_type) < 500, path
    assert status(http_port, "/healthz", None, "GET") == 200
    req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", data=b'{"message": "after"}\n',
                                 method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def test_otlp_json_with_bad_utf8_in_a_resource_or_scope_is_a_400_counted(procs, tmp_path):
    """Found by the same fuzzer: msgspec keeps a resource and a scope as raw JSON without
    checking their UTF-8, and orjson's error on them escaped the handler as a 500."""
    import re

    proc, _, http_port = procs.logs(tmp_path / "data")
    resource = b'{"attributes":[{"key":"service.\xf2ame","value":{"stringValue":"s"}}]}'
    scope = b'{"name":"n\xff"}'
    for res, sc in ((resource, b'{"name":"n"}'), (b'{}', scope)):
        body = (b'{"resourceLogs":[{"resource":' + res + b',"scopeLogs":[{"scope":' + sc +
                b',"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"x"}}]}]}]}')
        req = urllib.request.Request(f"http://{HOST}:{http_port}/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30)
            code = 200
        except urllib.error.HTTPError as exc:
            code = exc.code
        assert code == 400
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    # bad_utf8 (it was bad_json, in orjson's words "surrogates not allowed"): common.not_json
    pattern = r'^logmesh_ingest_rejected_total{protocol="otlp",reason="bad_utf8",worker="\d+"} (\S+)$'
    assert sum(float(m.group(1)) for m in re.finditer(pattern, text, re.M)) >= 2
    assert "Traceback" not in proc.log_text()
