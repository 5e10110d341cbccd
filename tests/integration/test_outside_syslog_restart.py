"""A graceful restart of `logmesh logs` under syslog senders that behave as rsyslog's omfwd.

Syslog over TCP has no acknowledgement: a line the kernel took is, to the sender, delivered.
rsyslog's omfwd peeks its socket before each write and, on the peer's FIN, closes and sends
the rest through a new connection (after its disk queue held it while nobody listened). So
a SIGTERM that closes a syslog connection with bytes unread in its socket loses them without
anyone knowing; one that half-closes it and reads on until the sender closes loses nothing.
Found from outside: rsyslog with a disk queue through a SIGTERM restart lost 256-1,224 of
300,000 lines (docs/ingest.md). Every line here is written by a sender that checks, as
omfwd does, and every line it wrote must be stored exactly once.
"""

from __future__ import annotations

import socket
import threading
import time

from tests.support.procs import HOST, free_port, store_events, wait_for

SENDERS = 4


class OmfwdLikeSender(threading.Thread):
    """Numbered RFC 5424 lines as fast as the socket takes them. Before each write it peeks
    for the peer's EOF (rsyslog's nsd_ptcp CheckConnection); on EOF or a refused write it
    closes and reconnects, retrying every 20 ms, and sends the line it had not written.
    ``written`` is the lines a sendall returned for: the ones it counts as delivered."""

    def __init__(self, tag: str, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.tag, self.port, self.stop = tag, port, stop
        self.written = 0
        self.reconnects = 0

    def _connect(self) -> socket.socket:
        while not self.stop.is_set():
            try:
                sock = socket.create_connection((HOST, self.port), timeout=5)
                sock.settimeout(None)  # blocking: a timeout would make the peek below wait
                return sock
            except OSError:
                time.sleep(0.02)
        raise SystemExit  # stopped while nobody listened

    def run(self) -> None:
        sock = self._connect()
        try:
            while not self.stop.is_set():
                try:
                    if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        raise ConnectionResetError("the peer closed its side")
                except BlockingIOError:
                    pass  # nothing to read: the connection is open
                except OSError:
                    sock.close()
                    self.reconnects += 1
                    sock = self._connect()
                    continue
                lines = b"".join(b"<14>1 2026-11-30T10:00:00Z h %s - - - line %d\n"
                                 % (self.tag.encode(), n)
                                 for n in range(self.written, self.written + 50))
                try:
                    sock.sendall(lines)
                except OSError:
                    # a write the peer refused (its RST) may have been taken in part: the
                    # sender cannot know which lines, so none of these counts as written
                    sock.close()
                    self.reconnects += 1
                    sock = self._connect()
                    continue
                self.written += 50
        finally:
            sock.close()


def test_a_sigterm_restart_keeps_every_line_an_omfwd_like_sender_wrote(procs, tmp_path):
    data, port = tmp_path / "data", free_port()
    args = ("--syslog-port", str(port))
    procs.logs(data, *args, name="logs-1")
    first = procs.procs[-1]
    stop = threading.Event()
    senders = [OmfwdLikeSender(f"s{i}", port, stop) for i in range(SENDERS)]
    for s in senders:
        s.start()
    try:
        wait_for(lambda: sum(s.written for s in senders) > 40_000, 60, "40k lines written")
        assert first.stop(grace=20) == 0, first.log_text()[-3000:]
        procs.logs(data, *args, name="logs-2")
        before = sum(s.written for s in senders)
        wait_for(lambda: sum(s.written for s in senders) > before + 10_000, 60,
                 "10k lines more after the restart")
    finally:
        stop.set()
        for s in senders:
            s.join(10)
    assert all(s.reconnects >= 1 for s in senders), "every sender saw the restart"
    wanted = {s.tag: s.written for s in senders}

    def stored() -> dict[str, list[int]]:
        got: dict[str, list[int]] = {tag: [] for tag in wanted}
        for e in store_events(data):
            got[e["service.name"]].append(int(e["message"].split()[1]))
        return got

    def complete() -> dict[str, list[int]] | None:
        got = stored()
        return got if all(len(set(got[t])) >= n for t, n in wanted.items()) else None

    try:
        got = wait_for(complete, 60, "every written line stored")
    except AssertionError:
        got = stored()
        lost = {t: n - len({x for x in got[t] if x < n}) for t, n in wanted.items()}
        raise AssertionError(f"written {wanted}, lost {lost}") from None
    for tag, n in wanted.items():
        numbers = sorted(got[tag])
        assert len(numbers) == len(set(numbers)), f"{tag}: a line stored twice"
        assert set(range(n)) <= set(numbers), tag
