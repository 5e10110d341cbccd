"""The logs service's HTTP port under hostile requests (issue #9).

Errors are JSON and never leak internals (a bug's traceback goes to the
service's own log, under an id the client is given); path traversal against
the routes that serve files is refused; limits on bodies and slow clients hold.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
import pytest

from logmesh.logs.server import LogsConfig, LogsServer
from logmesh.security import Limits, ServerSecurity
from tests.security.conftest import TOKEN
from tests.support.logs import HOST

SECRET = "s3cr3t-internal-detail"


async def raw_http(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes, bytes]:
    """One request sent byte-for-byte (no client normalises the path): (status, head, body)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, head, body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


TRAVERSALS = [
    "/static/../server.py", "/static/../../server.py", "/static/..%2fserver.py",
    "/static/%2e%2e/server.py", "/static/%2e%2e%2fserver.py", "/static/%252e%252e/server.py",
    "/static/..\\server.py", "/static/..%5cserver.py", "/static//etc/passwd",
    "/static/%2fetc%2fpasswd", "/static/....//....//etc/passwd", "/static/.%2e/.%2e/server.py",
    "/static/app.js%00.png", "/static/app.js/../../server.py", "/static/./app.js/..",
    "/static/%c0%ae%c0%ae/server.py", "/static/.hidden", "/static/", "/static/..",
    "/static/routes.py", "/static/../web/routes.py", "/static/__init__.py",
    "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_path_traversal_is_refused(start_logs, path) -> None:
    srv = await start_logs()
    status, head, body = await raw_http(srv.config.http_port, get(path))
    assert status in (400, 403, 404), (path, status, body[:200])
    assert b"root:" not in body and b"import " not in body and b"def " not in body
    if status != 400:  # 400s for malformed request lines come from the HTTP parser itself
        assert orjson.loads(body)["ok"] is False


async def test_static_files_still_serve(start_logs) -> None:
    srv = await start_logs()
    status, _, body = await raw_http(srv.config.http_port, get("/static/app.js"))
    assert status == 200 and body
    status, _, same = await raw_http(srv.config.http_port, get("/static/app.js?../../etc/passwd"))
    assert status == 200 and same == body, "a query string is not part of the path"


async def test_errors_are_json(start_logs) -> None:
    srv = await start_logs()
    base = f"http://{HOST}:{srv.config.http_port}"
    async with aiohttp.ClientSession() as http:
        for method, path, status in [("GET", "/nope", 404), ("DELETE", "/api/v1/logs", 405),
                                     ("PUT", "/healthz", 405), ("GET", "/api/v1/events/xyz", 400)]:
            async with http.request(method, base + path) as r:
                assert r.status == status, path
                assert r.content_type == "application/json", path
                body = await r.json()
                assert body["ok"] is False and body["status"] == status and body["error"]


async def test_a_body_over_the_limit_is_a_json_413(start_logs) -> None:
    srv = await start_logs(max_body_bytes=1024)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{HOST}:{srv.config.http_port}/api/v1/logs",
                             data=b'{"message":"x"}\n' * 200) as r:
            assert r.status == 413
            assert (await r.json())["status"] == 413


async def test_an_unexpected_exception_is_a_bare_500(tmp_path, caplog) -> None:
    server = LogsServer(LogsConfig(host=HOST, port=0, http_port=0, distributor=None,
                                   data_dir=tmp_path, compact=False,
                                       security=ServerSecurity(token=TOKEN)))

    async def boom(request):
        raise RuntimeError(f"{SECRET} at /etc/shadow")

    server.app.router.add_get("/api/v1/boom", boom)
    await server.start()
    try:
        with caplog.at_level(logging.ERROR, logger="logmesh.logs"):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{HOST}:{server.config.http_port}/api/v1/boom",
                                    headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    assert r.status == 500
                    text = await r.text()
        body = orjson.loads(text)
        assert body["ok"] is False and body["status"] == 500
        assert SECRET not in text and "Traceback" not in text and "RuntimeError" not in text
        error_id = body["error"].split("id ")[1].split(")")[0]
        logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
        assert error_id in logged and SECRET in caplog.text, "the details go to our own log"
    finally:
        await server.stop()


async def test_a_slow_request_head_is_cut_off(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(header_timeout=1.0)))
    reader, writer = await asyncio.open_connection(HOST, srv.config.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # ... and the rest never comes
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # closed by the server, not by our timeout
    assert data == b"" or data.startswith(b"HTTP/1.1 4")
    writer.close()


async def test_connections_past_the_limit_are_closed(start_logs) -> None:
    srv = await start_logs(security=ServerSecurity(limits=Limits(max_connections=5)))
    held = [await asyncio.open_connection(HOST, srv.config.http_port) for _ in range(5)]
    for _, w in held:  # inside a request (its body still on the way): never closed for room
        w.write(b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection(HOST, srv.config.http_port)
    writer.write(get("/healthz"))
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionError:
        pass
    assert srv.site is not None and srv.site.refused >= 1
    for _, w in held:
        w.close()
    await asyncio.sleep(0.2)
    status, _, _ = await raw_http(srv.config.http_port, get("/healthz"))
    assert status == 200, "room again once the others left"


async def test_query_limits_from_the_config(start_logs) -> None:
    srv = await start_logs(max_rows=5)
    base = f"http://{HOST}:{srv.config.http_port}/api/v1/search"
    async with aiohttp.ClientSession() as http:
        async with http.get(base, params={"limit": "6"}) as r:
            assert r.status == 400 and "limit" in (await r.json())["error"]
        async with http.get(base, params={"limit": "5"}) as r:
            assert r.status == 200
    slow = await start_logs(query_timeout=1e-9, data_dir=srv.config.data_dir.parent / "slow")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{HOST}:{slow.config.http_port}/api/v1/logs",
                             data=b'{"message":"one"}') as r:
            assert r.status == 200
        async with http.get(f"http://{HOST}:{slow.config.http_port}/api/v1/search") as r:
            assert r.status == 503 and r.headers["Retry-After"]
            body = await r.json()
            assert body["ok"] is False and "took longer" in body["error"]
