"""``logmesh query`` and ``stats`` against an HTTP server that answers badly, tried from outside.

Found by hand: a logs service that hung after its answer's headers (60 s later), one that
closed its connection in the middle of the body, and an ``--url`` that named some other
HTTP server answering 200 with a page of HTML each ended in a Python traceback (TimeoutError,
IncompleteRead, JSONDecodeError). Each is now a sentence naming the address, exit 1 (the
logs service could not be read: ``logmesh --help``'s exit codes).

Found from outside later: an ``--url`` naming another HTTP server that answers 404 (a
static file server, the gateway) printed ``Error: HTTP 404 File not found``, exit 2 (a bad
request), with no word of the address or what to do; and an error answer's text went to the
terminal raw (an ESC sequence in it cleared the screen).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from tests.support.procs import HOST

pytestmark = pytest.mark.slow  # real processes

ANSWERS = {
    "cut": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
           b'{"events": [',
    "html": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 27\r\n\r\n"
            b"<html><body>hi</body></html>"[:27],
    "not-found": b"HTTP/1.1 404 File not found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n"
                 b"not found",
    "escapes": b"HTTP/1.1 500 Oops\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n"
               b'{"error": "\\u001b[2Jforged\\u009b"}',
}


class BadServer:
    """Answers every request with ``answer`` and closes the connection."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.answer)


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize("command", [["query", "x"], ["stats"]], ids=["query", "stats"])
def test_a_bad_answer_is_a_sentence_and_exit_1(answer, command):
    server = BadServer(ANSWERS[answer])
    try:
        done = subprocess.run([sys.executable, "-m", "logmesh", *command, "--url",
                               f"http://{HOST}:{server.port}"], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    finally:
        server.server.close()
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{HOST}:{server.port}" in done.stderr, done.stderr
    assert "\x1b" not in done.stderr and "\x9b" not in done.stderr
    if answer == "not-found":
        assert "is --url the logs service's HTTP address" in done.stderr, done.stderr


@pytest.mark.parametrize("answer", ["not-found", "html"])
def test_tail_f_at_an_address_that_is_no_logs_service_stops_at_once(answer):
    """Found from outside: ``logmesh tail -f --url <the gateway>`` printed "answered 404 ...
    is --url the logs service's HTTP address?; retrying in 1s" once a second for ever. An
    address that never answered as the logs API is a wrong address, not a restart: exit 1.
    (A stream that broke after it opened is still followed again, like tail -F.)"""
    server = BadServer(ANSWERS[answer])
    try:
        done = subprocess.run([sys.executable, "-m", "logmesh", "tail", "-f", "--url",
                               f"http://{HOST}:{server.port}"], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    finally:
        server.server.close()
    assert done.returncode == 1, done.stderr[-3000:]
    assert "is --url the logs service's HTTP address" in done.stderr, done.stderr
    assert "retrying" not in done.stderr, done.stderr


def test_an_https_url_at_a_plain_http_service_says_to_use_http():
    """Found from outside: ``logmesh stats --url https://127.0.0.1:9041`` (a logs service
    without TLS) said "cannot reach the logs service ... ([SSL: WRONG_VERSION_NUMBER] ...);
    start it with: logmesh logs", though it was running."""
    server = BadServer(ANSWERS["not-found"])
    try:
        done = subprocess.run([sys.executable, "-m", "logmesh", "stats", "--url",
                               f"https://{HOST}:{server.port}"], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    finally:
        server.server.close()
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"http://{HOST}:{server.port}" in done.stderr, done.stderr
    assert "start it with" not in done.stderr, done.stderr
