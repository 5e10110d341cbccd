"""Fuzz the logs service's HTTP API from its own OpenAPI description (issue #9).

A real ``logmesh logs`` process, with a token; schemathesis generates requests
for every operation of ``/api/v1/openapi.json`` and the test fails on any 5xx.
Its strategies are driven by hypothesis directly: schemathesis's pytest plugin
(``from_fixture``) reads a private attribute pytest 9 no longer has.
(The description is the query engine's, logs/query/openapi.py. Should the
endpoint ever answer 404, the test skips and says so rather than pass.)
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from ..integration.procs import HOST, Procs
from .conftest import TOKEN

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


@pytest.fixture(scope="module")
def api_schema(logs_http_port):
    url = f"http://{HOST}:{logs_http_port}/api/v1/openapi.json"
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            pytest.skip("GET /api/v1/openapi.json is 404: the query API has no description yet")
        raise
    return schemathesis.openapi.from_url(url)


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
