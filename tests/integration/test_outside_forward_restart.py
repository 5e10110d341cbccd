"""A graceful restart of `logmesh logs` under Fluent forward senders that wait for acks.

Fluent Bit's out_forward (``Require_ack_response``) and fluentd's (``require_ack_response``)
send a chunk with ``option.chunk`` and wait for ``{"ack": chunk}``; a chunk whose connection
ends before its ack is sent again to the next server. So at a server's shutdown a chunk
must be acked only once it is stored, and every chunk acked must be found in the store;
one in flight may be stored and acked, or not acked (then it is resent and stored by the
next process). These senders behave that way: one chunk at a time, resent until acked.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import msgpack

from tests.support.procs import HOST, free_port, store_events, wait_for

SENDERS = 4
CHUNK = 100  # records a chunk


class AckedForwardSender(threading.Thread):
    """Chunks of numbered records in Forward mode, each resent (same id, same records) over
    a new connection until its ack comes. ``acked`` is the chunks whose ack was read."""

    def __init__(self, tag: str, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.tag, self.port, self.stop = tag, port, stop
        self.acked = 0
        self.resent = 0

    def _connect(self) -> socket.socket | None:
        while not self.stop.is_set():
            try:
                return socket.create_connection((HOST, self.port), timeout=10)
            except OSError:
                time.sleep(0.02)
        return None

    def run(self) -> None:
        sock = self._connect()
        unpacker = msgpack.Unpacker(raw=False)
        while sock is not None and not self.stop.is_set():
            chunk = f"{self.tag}-{self.acked}"
            first = self.acked * CHUNK
            entries = [[int(time.time()), {"message": f"{self.tag} {n}", "service": self.tag}]
                       for n in range(first, first + CHUNK)]
            try:
                sock.sendall(msgpack.packb([self.tag, entries, {"chunk": chunk}]))
                while True:
                    data = sock.recv(1 << 16)
                    if not data:
                        raise ConnectionResetError("closed before the ack")
                    unpacker.feed(data)
                    if any(isinstance(m, dict) and m.get("ack") == chunk for m in unpacker):
                        break
            except OSError:
                sock.close()
                self.resent += 1
                unpacker = msgpack.Unpacker(raw=False)
                sock = self._connect()
                continue
            self.acked += 1
        if sock is not None:
            sock.close()


def test_a_sigterm_restart_stores_every_chunk_it_acked_and_leaves_the_rest_unacked(procs, tmp_path):
    data, port = tmp_path / "data", free_port()
    args = ("--forward-port", str(port))
    first, _, _ = procs.logs(data, *args, name="logs-1")
    stop = threading.Event()
    senders = [AckedForwardSender(f"f{i}", port, stop) for i in range(SENDERS)]
    for s in senders:
        s.start()
    try:
        wait_for(lambda: sum(s.acked for s in senders) > 400, 60, "400 chunks acked")
        assert first.stop(grace=20) == 0, first.log_text()[-3000:]
        acked_by_first = {s.tag: s.acked for s in senders}
        procs.logs(data, *args, name="logs-2")
        wait_for(lambda: all(s.acked > acked_by_first[s.tag] + 20 for s in senders), 60,
                 "20 chunks more each after the restart")
    finally:
        stop.set()
        for s in senders:
            s.join(15)
    assert all(s.resent >= 1 for s in senders), "every sender saw the restart"
    wanted = {s.tag: s.acked * CHUNK for s in senders}

    def stored() -> Counter:
        return Counter((e["service.name"], int(e["message"].split()[1])) for e in store_events(data))

    try:
        got = wait_for(lambda: (c := stored()) and all(
            all((t, x) in c for x in range(n)) for t, n in wanted.items()) and c, 30,
            "every acked record stored")
    except AssertionError:
        got = stored()
        lost = {t: sum((t, x) not in got for x in range(n)) for t, n in wanted.items()}
        raise AssertionError(f"acked {wanted} records, lost {lost}") from None
    twice = sum(1 for k, v in got.items() if v > 1)
    assert not twice, f"{twice} records stored twice (acked, yet resent)"
