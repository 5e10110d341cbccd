"""A client that goes away in the middle of its request's body (a shipper killed, a proxy's
timeout) on a real logs process: one counted line, never a traceback (aiohttp logged a
ConnectionResetError's, about 20 lines each), and the service goes on."""

from __future__ import annotations

import socket
import struct
import urllib.request

from tests.support.procs import HOST, wait_for

PATHS = ("/api/v1/logs", "/v1/logs", "/api/v1/saved-searches")


def cut_short(http_port: int, path: str) -> None:
    """Headers announcing 50 kB (under every limit), 1 kB of it, then a reset (SO_LINGER 0).

    ``Expect: 100-continue``, and the body only after the server's ``100 Continue``: the
    request is then surely being read when the reset comes (a reset that came first
    could discard the request unread, and there would be nothing to count)."""
    with socket.create_connection((HOST, http_port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Expect: 100-continue\r\nContent-Length: 50000\r\n\r\n".encode())
        assert b" 100 " in sock.recv(256), "the server asks for the body"
        sock.sendall(b"{" + b" " * 1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def disconnects(http_port: int) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("logmesh_http_client_disconnects_total"))


def test_a_body_cut_short_is_one_counted_line_not_a_traceback(procs, tmp_path):
    logs, _, http_port = procs.logs(tmp_path / "data")
    for path in PATHS:
        cut_short(http_port, path)
    wait_for(lambda: disconnects(http_port) == len(PATHS), 15, "the disconnects counted")
    logs.wait_line("went away", count=len(PATHS))
    body = b'{"message": "after", "service.name": "s"}\n'
    req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", data=body,
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status in (200, 202)
    assert logs.popen.poll() is None, "the service is up"
    text = logs.log_text()
    assert "Traceback" not in text, text[-3000:]
    assert text.count("ConnectionResetError") == len(PATHS), "one line each"
