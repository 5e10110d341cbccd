"""A request body dribbled a byte a second is cut long before the 60 s a whole body may take.

Found from outside: 2,000 POSTs to /api/v1/logs, each sending its body a byte a second, held
the HTTP port's every slot for a minute (a connection inside a request is never evicted for
a new one), so /healthz, the web UI, the query API and HTTP ingest were closed to everyone
else; the client only had to start again every minute. A body must now keep up a minimum
rate once a short grace has passed (Apache's mod_reqtimeout: body=20,MinRate=500).
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

from tests.support.procs import HOST

SLOW = 5  # connections dribbling a body
CUT_BEFORE = 30  # body bytes each had sent (one a second) when it was cut; 60 before the fix


def dribble(http_port: int, out: list, i: int) -> None:
    sock = socket.create_connection((HOST, http_port), timeout=120)
    sock.sendall(b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    sock.settimeout(1.0)
    sent = 0
    answer = b""
    while sent < 100:
        try:
            answer = sock.recv(4096)
            break  # answered (or closed: b"")
        except TimeoutError:
            pass
        try:
            sock.sendall(b"a")
            sent += 1
        except OSError:
            break
    sock.close()
    out[i] = (sent, answer.split(b"\r\n")[0])


def test_a_body_dribbled_a_byte_a_second_is_cut_and_others_are_served(procs, tmp_path):
    _, _, http_port = procs.logs(tmp_path / "data", "--max-connections", str(SLOW))
    out: list = [None] * SLOW
    threads = [threading.Thread(target=dribble, args=(http_port, out, i)) for i in range(SLOW)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    for sent, status in out:
        assert status.startswith(b"HTTP/1.1 408") and sent < CUT_BEFORE, out
    deadline = time.monotonic() + 30
    while True:  # the slots are free again
        try:
            with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=10) as resp:
                assert resp.status == 200
                break
        except OSError:
            assert time.monotonic() < deadline, "the HTTP port did not answer after the slow bodies"
            time.sleep(0.5)
