"""A graceful restart of `logmesh logs` under the chapter's Node services shipping to its book port.

The book's services ship every request they receive to the logs service fire and forget
(tests/interop/node/server.js, writeLog): no answer ever comes back, so a line the kernel
took is, to the Node service, delivered. A SIGTERM that closes such a connection with bytes
unread in its socket throws them away and nobody knows. Node's socket (allowHalfOpen false)
answers the peer's FIN by ending its own side after what it had written, then forgets the
logs service (``logTcpClient = null``) and prints each later packet to its stderr until the
distributor names a logs service again. So a stop that half-closes and reads on loses
nothing: every request the Node service answered is stored or printed.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
from pathlib import Path

import orjson
import pytest

from tests.support.procs import HOST, free_port, store_events, wait_for

NODE = shutil.which("node")
GOODS = Path(__file__).resolve().parents[1] / "interop" / "node" / "goods.js"
WINDOW = 200  # requests in flight on the driver's connection

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")


class Driver(threading.Thread):
    """Book requests to the Node goods service, ``WINDOW`` at a time, numbered by ``params.n``;
    ``answered`` counts the replies read (each request was shipped or printed before its
    reply: server.js calls writeLog before onRead)."""

    def __init__(self, port: int, tag: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.tag, self.stop = port, tag, stop
        self.answered = 0

    def run(self) -> None:
        with socket.create_connection((HOST, self.port), timeout=30) as sock:
            rest = b""
            while not self.stop.is_set():
                sock.sendall(b"".join(
                    orjson.dumps({"uri": "/goods", "method": "GET",
                                  "params": {"key": n, "n": n, "run": self.tag}}) + "¶".encode()
                    for n in range(self.answered, self.answered + WINDOW)))
                got = 0
                while got < WINDOW:
                    data = sock.recv(1 << 16)
                    if not data:
                        raise ConnectionError("the goods service closed")
                    rest += data
                    got += rest.count("¶".encode())
                    rest = rest.rsplit("¶".encode(), 1)[1] if "¶".encode() in rest else rest
                self.answered += WINDOW


def test_a_sigterm_restart_loses_no_line_a_node_service_shipped(procs, tmp_path):
    _, dport = procs.distributor()
    data, port = tmp_path / "data", free_port()
    first, _, _ = procs.logs(data, port=port, distributor=dport, name="logs-1")
    goods = procs.start_script("goods", [NODE, str(GOODS), str(dport)])
    gport = int(goods.wait_line(r'"event":"listening","data":\{"port":(\d+)')[0].group(1))
    tag = "r" + str(gport)

    def stored() -> set[int]:
        out = set()
        for e in store_events(data):
            params = e.get("params")
            if isinstance(params, dict) and params.get("run") == tag:
                out.add(params["n"])
        return out

    def printed() -> set[int]:  # the packets the Node service printed with no logs service
        rx = re.compile(r'^\{"uri":"/goods".*"n":(\d+),"run":"' + tag + r'"\}', re.M)
        return {int(m.group(1)) for m in rx.finditer(goods.log_text())}

    stop = threading.Event()
    driver = Driver(gport, tag, stop)
    driver.start()
    try:
        wait_for(lambda: len(stored()) > 20_000, 60, "20k requests stored")
        assert first.stop(grace=20) == 0, first.log_text()[-3000:]
        procs.logs(data, port=port, distributor=dport, name="logs-2")
        before = driver.answered
        wait_for(lambda: len(stored() - set(range(before))) > 5_000, 60,
                 "5k requests stored after the restart")
    finally:
        stop.set()
        driver.join(30)
    answered = driver.answered
    try:
        wait_for(lambda: len(stored() | printed()) >= answered, 30, "every request stored or printed")
    except AssertionError:
        pass  # said below, with the numbers
    got, shown = stored(), printed()
    lost = set(range(answered)) - got - shown
    print(f"answered {answered}: {len(got)} stored, {len(shown)} printed, {len(lost)} lost")
    assert not lost, (f"{len(lost)} of {answered} lost (first {min(lost)}); "
                      f"{len(got)} stored, {len(shown)} printed")
    assert "read to their end" in first.log_text()
