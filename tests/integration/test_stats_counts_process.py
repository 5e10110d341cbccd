"""/api/v1/stats from the writers' counts (store/live_counts.py), on a real ``logmesh logs
--workers 2``: both workers' segments summed, across seals, compactions and a kill -9 of the
whole process group mid-ingest; its events and per-service counts equal what is on disk and
what a query counts."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from tests.support.logs import book_frame, request_text
from tests.support.procs import (
    HOST,
    free_port,
    http_json,
    read_store_still,
    uncompacted_lines,
    wait_for,
)

pytestmark = pytest.mark.slow  # real processes

SERVICES = ["goods", "members", "pay", None]


def on_disk(data: Path) -> tuple[int, dict[str, int]]:
    """Events and events per service, read from the files as every reader reads them."""

    def read(data: Path, files: tuple) -> tuple[int, dict[str, int]]:
        services: Counter[str] = Counter()
        total = 0
        for chunk in uncompacted_lines(data, files):
            for line in chunk.splitlines():
                total += 1
                svc = orjson.loads(line).get("service.name")
                if svc is not None:
                    services[svc] += 1
        if files[1]:
            con = duckdb.connect()
            try:
                rows = con.execute('SELECT "service.name", count(*) FROM read_parquet(?) GROUP BY ALL',
                                   [[str(data / "parquet" / n) for n in files[1]]]).fetchall()
            finally:
                con.close()
            for svc, n in rows:
                total += n
                if svc is not None:
                    services[svc] += n
        return total, dict(services)

    return read_store_still(data, read)


def ask(http: int, path: str, **params: str) -> dict:
    """GET, asked again while the service turns queries away under load (503)."""
    for _ in range(100):
        try:
            return http_json(http, path, **params)
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            time.sleep(0.2)
    raise AssertionError(f"{path}: 503 for 20 s")


def jsonl_sender(port: int, k: int, n: int, stop: threading.Event) -> None:
    """JSON lines of four services (one with none), in reads of 50, until ``stop`` (a kill)."""
    try:
        with socket.create_connection((HOST, port), timeout=10) as sock:
            for i in range(0, n, 50):
                if stop.is_set():
                    return
                sock.sendall(b"".join(
                    orjson.dumps({"message": f"c{k} {j}", **({"service.name": svc} if (
                        svc := SERVICES[(k + j) % 4]) else {})}) + b"\n" for j in range(i, i + 50)))
                time.sleep(0.01)
    except OSError:  # the process was killed under it
        pass


def book_sender(port: int, n: int) -> None:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(b"".join(book_frame(request_text(i, "stats")) for i in range(n)))


def test_stats_sums_both_workers_counts_across_a_kill_and_compactions(procs, tmp_path):
    data = tmp_path / "data"
    port, http, jsonl = free_port(), free_port(), free_port()
    args = ("logs", "--workers", "2", "--port", str(port), "--http-port", str(http), "--jsonl-port",
            str(jsonl), "--standalone", "--data-dir", str(data), "--max-segment-size", "64KB")
    def run(name: str, conns: int, lines: int, stop: threading.Event) -> tuple[Any, list]:
        logs = procs.start(name, *args)
        logs.wait_line(r"logs worker (\d+): TCP", count=2, timeout=30)
        senders = [threading.Thread(target=jsonl_sender, args=(jsonl, k, lines, stop))
                   for k in range(conns)]
        for t in senders:
            t.start()
        return logs, senders

    stop = threading.Event()
    logs, senders = run("logs", 8, 4000, stop)
    for _ in range(3):  # asked while ingest runs: answers, whatever it counts
        ask(http, "/api/v1/stats")
        time.sleep(0.3)
    logs.signal_group(9)  # kill -9 the supervisor and both workers, mid-ingest
    logs.popen.wait(10)
    stop.set()
    for t in senders:
        t.join(30)
    logs, senders = run("logs-again", 4, 1000, threading.Event())
    for _ in range(4):
        book_sender(port, 100)  # a book block: one service a connection (the route's, none here)
    for t in senders:
        t.join(60)
    segments = {p.name[:3] for p in (data / "segments").glob("w*.ndjson")} | {
        p.name[:3] for p in (data / "parquet").glob("w*.parquet")}
    assert segments == {"w00", "w01"}, segments  # both workers stored some

    def agree() -> dict | None:
        st = ask(http, "/api/v1/stats")
        total, services = on_disk(data)
        if st["events"] != total or st["services"] != services or not st["parquet_files"]:
            return None
        return st

    st = wait_for(agree, 90, "stats to equal the disk, with a segment compacted")
    top = ask(http, "/api/v1/top", field="service.name", limit="10", **{"from": "now-1d", "to": "now+1d"})
    assert top["total"] == st["events"]
    assert {v["value"]: v["count"] for v in top["values"]} == st["services"]
    assert "Traceback" not in logs.log_text()
