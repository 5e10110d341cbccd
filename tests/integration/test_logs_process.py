"""The logs service as a real process: bad input survived (acceptance 4) and ``--workers 2``.

* Garbage, bad UTF-8 and an oversized packet on one connection: each counted
  in /metrics by reason, valid packets after them on the same connection
  stored, the connection and the process stay up, nothing is sent back.
* ``--workers 2``: two processes share one port (SO_REUSEPORT); each writes
  its own ``w00``/``w01`` stream and both get events from several connections.
"""

from __future__ import annotations

import re
import socket
import urllib.request
import uuid

import orjson

from logmesh.protocol import encode
from tests.support.procs import HOST, free_port, store_events, tagged_per_stream, wait_for

DELIM = "¶".encode()


def book_frame(text: str) -> bytes:
    return encode({"uri": "/logs", "method": "POST", "key": 0, "params": text})


def request_text(tag: str, i: int) -> str:
    return orjson.dumps({"uri": "/goods", "method": "GET", "params": {"key": i},
                         "trace.id": f"{tag}-{i}"}).decode()


def get_metrics(http_port: int) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def bad_frames(text: str, reason: str) -> int:
    m = re.search(rf'^logmesh_bad_frames_total\{{reason="{reason}",worker="\d+"\}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def received_within(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    try:
        return sock.recv(65536) or b"<EOF>"
    except TimeoutError:
        return b""


def test_bad_input_is_counted_and_survived_by_the_process(procs, tmp_path):
    data = tmp_path / "data"
    logs, port, http_port = procs.logs(data, "--max-packet-size", "4KiB")
    tag = uuid.uuid4().hex[:8]
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(book_frame(request_text(tag, 0)))
        sock.sendall(b"\x80\x81 garbage" + DELIM)                       # bad UTF-8
        sock.sendall(b'{"uri":"/logs","params":"\xe9t\xe9"}' + DELIM)    # bad UTF-8 in a string
        sock.sendall(b"{{{ not json" + DELIM)
        sock.sendall(book_frame("y" * 5000))                             # over 4 KiB
        sock.sendall(b"z" * 3000)
        sock.sendall(b"z" * 3000 + DELIM)                                # oversized, across writes
        for i in range(1, 4):
            sock.sendall(book_frame(request_text(tag, i)))

        def ours() -> list[dict]:
            return [e for e in store_events(data) if e.get("trace.id", "").startswith(tag)]

        wait_for(lambda: len(ours()) == 4, 10, "the valid packets stored")
        assert [e["trace.id"] for e in ours()] == [f"{tag}-{i}" for i in range(4)]
        assert received_within(sock, 0.5) == b"", "nothing is sent back; the connection stays open"

        metrics = get_metrics(http_port)
        assert bad_frames(metrics, "bad_utf8") == 0, metrics  # one is kept, U+FFFD for its bytes;
        assert bad_frames(metrics, "bad_json") == 2, metrics  # the other is not JSON even then
        assert bad_frames(metrics, "too_large") == 2, metrics

        sock.sendall(book_frame(request_text(tag, 4)))  # the same connection still works
        wait_for(lambda: len(ours()) == 5, 10, "a packet after the garbage")
    assert logs.popen.poll() is None, "the service is up"
    assert "Traceback" not in logs.log_text()


def test_two_workers_share_the_port_each_with_its_own_stream(procs, tmp_path):
    data = tmp_path / "data"
    port, http_port = free_port(), free_port()
    logs = procs.start("logs-workers", "logs", "--workers", "2", "--port", str(port),
                       "--http-port", str(http_port), "--standalone", "--data-dir", str(data))
    found = logs.wait_line(r"logs worker (\d+): TCP [\d.]+:(\d+)", count=2, timeout=20)
    assert sorted(int(m.group(1)) for m in found) == [0, 1]
    assert {int(m.group(2)) for m in found} == {port}

    tag = uuid.uuid4().hex[:8]
    sent = 0

    def streams() -> dict[str, int]:
        return tagged_per_stream(data, tag)

    # new connections land on either worker (the kernel hashes them); a few dozen reach both
    for _ in range(8):
        for _ in range(8):
            with socket.create_connection((HOST, port), timeout=5) as sock:
                sock.sendall(b"".join(book_frame(request_text(tag, sent + k)) for k in range(5)))
                sent += 5
                assert received_within(sock, 0.05) == b""
        total = sent
        wait_for(lambda total=total: sum(streams().values()) == total, 10, f"{total} events stored")
        if len([n for n in streams().values() if n]) == 2:
            break
    counts = streams()
    assert set(counts) == {"w00", "w01"} and all(counts.values()), counts

    events = [e for e in store_events(data) if e.get("trace.id", "").startswith(tag)]
    assert sorted(int(e["trace.id"].rsplit("-", 1)[1]) for e in events) == list(range(sent))
    assert len({e["seq"] for e in events}) == sent, "seq is unique across the workers' streams"
    for name in ("w00.lock", "w01.lock"):
        assert (data / "segments" / name).exists()

    # SIGTERM: the supervisor stops both workers, each seals its stream
    logs.stop(grace=15)
    idx = sorted(p.name[:3] for p in (data / "segments").glob("*.idx.json"))
    assert "w00" in idx and "w01" in idx, idx
