"""Requests with no body on the HTTP ingest routes, found by a mutational fuzzer.

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
