"""The README's "Sending logs from anything" lines, sent as written to a real ``logmesh logs``.

Found by trying logmesh from outside: the NDJSON example (``{"service": {"name": "ci"}}``,
nested ECS) was answered ``accepted: 1`` and stored as a line no reader could parse
(``"labels":}``), so no query found it. Each example here must be acked, stored as a line
orjson reads, and found by the query API.
"""

from __future__ import annotations

import urllib.error
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


def post_raw(http_port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{HOST}:{http_port}{path}", data=body, method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_gzip_body_cut_short_or_not_gzip_is_refused_whole(procs, tmp_path):
    """A body sent with ``Content-Encoding: gzip`` that is cut short (a proxy, a client killed
    mid-send) was answered 200 with the lines before the cut stored and the rest never named;
    one that was no gzip at all was a 500. Both are a 400 and store nothing; whole gzip
    (one or several members) and deflate still work, and a coding nobody can undo is a 415."""
    import gzip
    import zlib

    data = tmp_path / "data"
    _, _, http_port = procs.logs(data)
    tag = uuid.uuid4().hex[:8]
    lines = b"".join(b'{"message": "cut %s %d"}\n' % (tag.encode(), i) for i in range(200))
    for path, ctype, body in (
            ("/api/v1/logs", "application/x-ndjson", lines),
            ("/_bulk", "application/x-ndjson", b"".join(b'{"create":{}}\n' + line for line in lines.splitlines(True))),
            ("/loki/api/v1/push", "application/json",
             orjson.dumps({"streams": [{"stream": {"job": "cut"}, "values": [["0", f"cut {tag} {i}"] for i in range(200)]}]})),
            ("/v1/logs", "application/json",
             orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
                 {"body": {"stringValue": f"cut {tag} {i}"}} for i in range(200)]}]}]}))):
        packed = gzip.compress(body)
        for broken in (packed[:-12], packed[: len(packed) // 2], b"not gzip at all " + body[:40]):
            status, answer = post_raw(http_port, path, broken, {"Content-Type": ctype, "Content-Encoding": "gzip"})
            assert status == 400, (path, status, answer[:300])
    assert search(http_port, f"cut and {tag}") == []

    def whole_line(letter: str) -> bytes:  # (a replace of " a" also hit a tag that began with a)
        return b'{"message": "whole %s %s"}\n' % (tag.encode(), letter.encode())

    whole = whole_line("a")
    for body, coding in ((gzip.compress(whole), "gzip"),
                         (gzip.compress(whole) + gzip.compress(whole_line("b")), "gzip"),
                         (zlib.compress(whole_line("c")), "deflate"),
                         (whole_line("d"), "identity")):
        status, answer = post_raw(http_port, "/api/v1/logs", body, {"Content-Encoding": coding})
        assert status == 200, (coding, answer)
    status, _ = post_raw(http_port, "/api/v1/logs", whole, {"Content-Encoding": "br"})
    assert status == 415
    found = wait_for(lambda: (lambda evs: evs if len(evs) == 5 else None)(search(http_port, f"whole and {tag}")),
                     timeout=30, what="the whole bodies' events")
    assert sorted(e["message"][-1] for e in found) == ["a", "a", "b", "c", "d"]
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=10) as resp:
        assert resp.status == 200
