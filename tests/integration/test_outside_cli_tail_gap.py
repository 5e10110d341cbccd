"""``logmesh tail -f`` across a broken stream, tried from outside with real processes.

Found by hand, as the web UI's live tail was last round: the stream to the logs service
breaks (a restart, a network blip), the command says "reconnecting" and opens a new stream
after its second of waiting, which starts at the events stored after it connects. What was
stored in between, though a search finds it, was never printed. The command now asks the
new stream for the newest events too and prints those stored since its last stream opened
that it has not printed.

The stream goes through a proxy the test holds shut while the gap's events are stored, so
the order the fix is about happens on every run, whatever the load.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes


class Proxy:
    """TCP from a port of its own to ``target``; ``cut()`` drops every connection and refuses
    new ones until ``mend()``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection((HOST, self.target))
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.socks.clear()

    def mend(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.server.close()


def post(http_port: int, lines: list[dict]) -> None:
    body = "\n".join(json.dumps(e) for e in lines).encode()
    req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", data=body,
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200


def searched(http_port: int, q: str) -> int:
    url = f"http://{HOST}:{http_port}/api/v1/search?q={q}&from=now-1h&limit=100"
    with urllib.request.urlopen(url, timeout=30) as r:
        return len(json.loads(r.read())["events"])


class Lines:
    """A process's stdout lines, read as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self.lines.append(line) for line in stdout], daemon=True).start()

    def having(self, word: str) -> list[str]:
        return [line for line in list(self.lines) if word in line]


def test_tail_follow_prints_what_was_stored_while_its_stream_was_down(procs, tmp_path):
    _, _, http_port = procs.logs(tmp_path / "logs")
    post(http_port, [{"service.name": "gapcli", "message": "gapcli before"}])
    wait_for(lambda: searched(http_port, "gapcli") == 1, 30, "the first event searchable")
    proxy = Proxy(http_port)
    tail = subprocess.Popen([sys.executable, "-m", "logmesh", "tail", "-f", "gapcli", "-n", "5",
                             "--json", "--url", f"http://{HOST}:{proxy.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        out = Lines(tail)
        wait_for(lambda: out.having("gapcli before"), 30, "the first event printed")
        post(http_port, [{"service.name": "gapcli", "message": "gapcli streamed"}])
        wait_for(lambda: out.having("gapcli streamed"), 30, "an event over the stream")

        proxy.cut()
        post(http_port, [{"service.name": "gapcli", "message": f"gapcli while{i}"} for i in range(3)])
        wait_for(lambda: searched(http_port, "gapcli") == 5, 30, "the gap's events searchable")
        proxy.mend()

        wait_for(lambda: len(out.having("gapcli while")) == 3, 60,
                 "the events stored while the stream was down printed")
        post(http_port, [{"service.name": "gapcli", "message": "gapcli after"}])
        wait_for(lambda: out.having("gapcli after"), 30, "an event after the gap")
        printed = [json.loads(line)["message"] for line in out.lines if line.startswith("{")]
        assert sorted(printed) == sorted(["gapcli before", "gapcli streamed", "gapcli while0",
                                          "gapcli while1", "gapcli while2", "gapcli after"]), printed
    finally:
        tail.kill()
        tail.wait(10)
        proxy.close()
