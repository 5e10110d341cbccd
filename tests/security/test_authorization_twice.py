"""``Authorization`` given twice with different values is a 400, counted, on every route that
reads it (as Elasticsearch answers a single-valued header given twice: "multiple values for
single-valued header"). Before, the first was read: a request whose first header held the
read token passed, whatever a proxy in front made of the second."""

from __future__ import annotations

import orjson

from logmesh.security import ServerSecurity
from tests.security.test_http import raw_http

READ, WRITE = "r" * 24, "w" * 24


def request(method: str, path: str, *auth: str, body: bytes = b"") -> bytes:
    head = "".join(f"Authorization: Bearer {token}\r\n" for token in auth)
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def test_two_different_authorization_headers_are_a_400_and_counted(start_logs):
    server = await start_logs(security=ServerSecurity(read_token=READ, write_token=WRITE))
    port = server.config.http_port
    event = b'{"message": "twice"}\n'
    cases = [("GET", "/api/v1/search?q=x", (READ, "not-the-token-at-all"), b""),
             ("GET", "/api/v1/search?q=x", ("not-the-token-at-all", READ), b""),
             ("POST", "/api/v1/logs", (WRITE, READ), event)]
    for method, path, auth, body in cases:
        status, _, answer = await raw_http(port, request(method, path, *auth, body=body))
        assert status == 400, (method, path, auth, status, answer[:300])
        assert "given 2 times" in orjson.loads(answer)["error"], answer
    assert server.http_counters.stats["bad_requests"] == len(cases)
    # the same value repeated is one header (a proxy that adds what the client sent)
    status, _, answer = await raw_http(port, request("GET", "/api/v1/search?q=x", READ, READ))
    assert status == 200, answer[:300]
    status, _, answer = await raw_http(port, request("POST", "/api/v1/logs", WRITE, body=event))
    assert status == 200, answer[:300]  # the service goes on; one event stored, not the refused one
    assert server.http_counters.stats["bad_requests"] == len(cases)
