"""``logmesh logs --workers 2``: any worker's ``/metrics`` shows every worker's counters.

The workers share the HTTP port (SO_REUSEPORT), so each scrape reaches one of them;
before prometheus-client's multiprocess mode each showed only its own series, and the
sum of ``logmesh_stored_events_total`` over a scrape was short of what was sent.
"""

from __future__ import annotations

import re
import socket
import urllib.request
import uuid

import orjson

from logmesh.protocol import encode
from tests.support.procs import HOST, free_port, tagged_per_stream, wait_for


def book_frame(tag: str, i: int) -> bytes:
    text = orjson.dumps({"uri": "/goods", "method": "GET", "params": {"key": i},
                         "trace.id": f"{tag}-{i}"}).decode()
    return encode({"uri": "/logs", "method": "POST", "key": 0, "params": text})


def scrape(http_port: int) -> str:
    """One scrape, on a new connection (the kernel picks the worker)."""
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        return resp.read().decode()


def by_worker(text: str, name: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(rf'^{name}\{{worker="(\d+)"\}} (\S+)$', text, re.M)}


def test_any_worker_shows_every_workers_counters(procs, tmp_path):
    data = tmp_path / "data"
    port, http_port = free_port(), free_port()
    logs = procs.start("logs-workers", "logs", "--workers", "2", "--port", str(port),
                       "--http-port", str(http_port), "--standalone", "--data-dir", str(data))
    found = logs.wait_line(r"logs worker (\d+): TCP [\d.]+:(\d+)", count=2, timeout=20)
    assert sorted(int(m.group(1)) for m in found) == [0, 1]

    tag = uuid.uuid4().hex[:8]
    sent = 0

    def stored_by_stream() -> dict[str, int]:
        return tagged_per_stream(data, tag)

    # Connections land on either worker as the kernel hashes them: send until both stored some.
    for _ in range(10):
        for _ in range(8):
            with socket.create_connection((HOST, port), timeout=5) as sock:
                sock.sendall(b"".join(book_frame(tag, sent + k) for k in range(5)))
                sent += 5
        total = sent
        wait_for(lambda total=total: sum(stored_by_stream().values()) == total, 10,
                 f"{total} events stored")
        if all(stored_by_stream().get(w) for w in ("w00", "w01")):
            break
    per_stream = stored_by_stream()
    assert per_stream.get("w00") and per_stream.get("w01"), per_stream

    def every_worker_counted() -> str | None:
        text = scrape(http_port)
        stored = by_worker(text, "logmesh_stored_events_total")
        return text if sum(stored.values()) == sent else None

    wait_for(every_worker_counted, 10, f"one scrape showing all {sent} stored events")
    for _ in range(8):  # whichever worker answers
        text = scrape(http_port)
        stored = by_worker(text, "logmesh_stored_events_total")
        assert stored == {"0": per_stream["w00"], "1": per_stream["w01"]}, stored
        received = by_worker(text, "logmesh_received_events_total")
        assert sum(received.values()) == sent, received
        assert set(by_worker(text, "logmesh_healthy")) == {"0", "1"}
    assert "Traceback" not in logs.log_text()

    # A stopped worker's gauges leave the merged page; the next start deletes its files.
    logs.stop(grace=15)
    files = sorted(p.name for p in (data / "metrics").glob("*.db"))
    assert files and not [f for f in files if f.startswith("gauge_live")], files
    logs2 = procs.start("logs-workers-again", "logs", "--workers", "2", "--port", str(port),
                        "--http-port", str(http_port), "--standalone", "--data-dir", str(data))
    logs2.wait_line(r"logs worker (\d+): TCP", count=2, timeout=20)
    text = scrape(http_port)
    assert sum(by_worker(text, "logmesh_received_events_total").values()) == 0, text
