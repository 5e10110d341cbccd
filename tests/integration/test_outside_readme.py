"""The README's "Sending logs from anything" lines, sent as written to a real ``logmesh logs``.

Found by trying logmesh from outside: the NDJSON example (``{"service": {"name": "ci"}}``,
nested ECS) was answered ``accepted: 1`` and stored as a line no reader could parse
(``"labels":}``), so no query found it. Each example here must be acked, stored as a line
orjson reads, and found by the query API.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
import uuid

import orjson

from tests.support.procs import HOST, wait_for


def post(http_port: int, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{HOST}:{http_port}{path}", data=body, method="POST",
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, orjson.loads(resp.read() or b"{}")


def search(http_port: int, q: str) -> list[dict]:
    url = f"http://{HOST}:{http_port}/api/v1/search?" + urllib.parse.urlencode(
        {"q": q, "from": "now-1h", "limit": "100"})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return orjson.loads(resp.read())["events"]


def test_nested_ecs_documents_are_stored_readable_and_found(procs, tmp_path):
    data = tmp_path / "data"
    _, _, http_port = procs.logs(data)
    tag = uuid.uuid4().hex[:8]
    # README: echo '{"message": "deploy done", "service": {"name": "ci"}}' | curl --data-binary @- .../api/v1/logs
    status, answer = post(http_port, "/api/v1/logs",
                          b'{"message": "deploy done %s", "service": {"name": "ci"}}\n' % tag.encode(),
                          "application/x-www-form-urlencoded")  # what curl --data-binary sends
    assert status == 200 and answer["accepted"] == 1, answer
    # the same document through the Elasticsearch bulk API, with and without an index
    body = b'{"create":{}}\n{"message":"bulk %s","service":{"name":"ci"}}\n' % tag.encode()
    status, answer = post(http_port, "/_bulk", body, "application/x-ndjson")
    assert status == 200 and not answer["errors"], answer
    status, answer = post(http_port, "/shop/_bulk", body, "application/x-ndjson")
    assert status == 200 and not answer["errors"], answer

    for seg in (data / "segments").glob("*.ndjson"):
        for line in seg.read_bytes().splitlines():
            orjson.loads(line)  # every stored line is one a reader can read

    found = wait_for(lambda: (lambda evs: evs if len(evs) == 3 else None)(
        search(http_port, f"service.name:ci and {tag}")), timeout=30,
        what="the three events found by the query API")
    assert sorted(e["message"] for e in found) == sorted(
        [f"deploy done {tag}", f"bulk {tag}", f"bulk {tag}"])
