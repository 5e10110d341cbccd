"""Fuzz the logs service's HTTP API from its own OpenAPI description (issue #9).

A real ``logmesh logs`` process, with a token; schemathesis generates requests
for every operation of ``/api/v1/openapi.json`` and the test fails on any 5xx.
Its strategies are driven by hypothesis directly: schemathesis's pytest plugin
(``from_fixture``) reads a private attribute pytest 9 no longer has.
(The description is the query engine's, logs/http/openapi.py. Once the
server has started, a description that cannot be fetched -- a 404, a refused
connection, a body that is not an OpenAPI 3 document -- fails the test: it
never skips, so a broken endpoint cannot pass CI unnoticed.)
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.security.conftest import TOKEN
from tests.support.procs import HOST, Procs

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 40  # per operation; the whole run stays well under a minute


@pytest.fixture(scope="module")
def logs_http_port(tmp_path_factory):
    work = tmp_path_factory.mktemp("schemathesis")
    procs = Procs(work)
    try:
        proc, _, http_port = procs.logs(work / "data", "--token", TOKEN, "--no-compact")
        body = b"\n".join(b'{"message":"seed %d","service.name":"goods","params":{"id":%d}}' % (i, i)
                          for i in range(20))
        req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", data=body,
                                     headers=AUTH, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        yield http_port
        assert proc.popen.poll() is None, "the logs service died under the fuzzer:\n" + proc.log_text()
    finally:
        procs.close()


def fetch_description(url: str) -> dict:
    """The OpenAPI document at ``url``; fails the test (never skips) when there is none."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        pytest.fail(f"GET {url} answered {exc.code}: the logs service started but its API "
                    "description cannot be fetched", pytrace=False)
    except (urllib.error.URLError, OSError) as exc:
        pytest.fail(f"GET {url} failed ({exc}) although the logs service started", pytrace=False)
    try:
        doc = json.loads(body)
    except ValueError as exc:
        pytest.fail(f"GET {url} is not JSON ({exc}): {body[:200]!r}", pytrace=False)
    if not (isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3.") and doc.get("paths")):
        pytest.fail(f"GET {url} is no OpenAPI 3 document with paths: {body[:200]!r}", pytrace=False)
    return doc


@pytest.fixture(scope="module")
def api_schema(logs_http_port):
    url = f"http://{HOST}:{logs_http_port}/api/v1/openapi.json"
    fetch_description(url)
    return schemathesis.openapi.from_url(url)


class _Answer(BaseHTTPRequestHandler):
    status, body = 404, b"404: Not Found"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def answering(status: int, body: bytes):
    """A server on port 0 answering every GET with ``status`` and ``body``; yields its URL."""
    answer = type("Answer", (_Answer,), {"status": status, "body": body})
    server = ThreadingHTTPServer((HOST, 0), answer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}/api/v1/openapi.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status, body", [
    (404, b"404: Not Found"),
    (500, b"oops"),
    (200, b"<html>the web UI</html>"),
    (200, b'{"openapi": "3.1.0", "paths": {}}'),
    (200, b'{"swagger": "2.0", "paths": {"/x": {}}}'),
], ids=["404", "500", "html", "no-paths", "not-openapi-3"])
def test_a_description_that_cannot_be_fetched_fails_and_never_skips(status, body):
    with answering(status, body) as url, pytest.raises(pytest.fail.Exception):
        fetch_description(url)


def test_nothing_listening_fails_too():
    server = ThreadingHTTPServer((HOST, 0), _Answer)
    port = server.server_port
    server.server_close()  # the port is free again: the connection is refused
    with pytest.raises(pytest.fail.Exception, match="failed"):
        fetch_description(f"http://{HOST}:{port}/api/v1/openapi.json")


def test_a_good_description_is_returned():
    doc = {"openapi": "3.1.0", "paths": {"/api/v1/search": {}}}
    with answering(200, json.dumps(doc).encode()) as url:
        assert fetch_description(url) == doc


def test_no_server_errors(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, "the description lists the whole API"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=5 if operation.path == "/api/v1/tail" else EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_5xx(case) -> None:
            if case.path == "/api/v1/tail":
                case.query = {**(case.query or {}), "timeout": 1}  # 0: streams until we hang up
            case.call_and_validate(headers=AUTH, checks=[not_a_server_error], timeout=15)

        no_5xx()
