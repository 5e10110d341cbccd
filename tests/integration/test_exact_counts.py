"""Issue 17, item 5: what the API counts is what is on disk, while ingest runs.

A real ``logmesh logs`` process with 64 KB segments (they seal every few hundred events and
worker 0 compacts them to Parquet meanwhile); events arrive over TCP from six connections at
once: four send the book's packets, two are logmesh shippers (acked batches, their own
processes). Three clients poll ``/api/v1/stats``, the histogram's total and ``top``'s total
all along. No answer may count more events than the disk holds once it is given (lines of the
segments not compacted + rows of the Parquet files; nothing is deleted here), and once ingest
is over every count equals the events sent.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import orjson
import pytest

from logmesh.protocol import encode
from tests.support.procs import HOST, read_store_still, uncompacted_lines, wait_for

pytestmark = pytest.mark.slow  # real processes

ACK_SHIPPER = Path(__file__).parent / "scripts" / "ack_shipper.py"
BOOK_CONNECTIONS, BOOK_EVENTS = 4, 2_500  # per connection
SHIPPERS, SHIPPED, RATE = 2, 3_000, 300  # per shipper; events/s
FAR = {"from": "now-1d", "to": "now+1d"}


def on_disk(data_dir: Path) -> dict[str, int]:
    """The store as readers see it: lines of the segments without a Parquet file, Parquet rows."""

    def read(data_dir: Path, files: tuple) -> dict[str, int]:
        _, pq = files
        lines = sum(data.count(b"\n") for data in uncompacted_lines(data_dir, files))
        rows = 0
        if pq:
            con = duckdb.connect()
            try:
                rows = con.execute("SELECT count(*) FROM read_parquet(?)",
                                   [[str(data_dir / "parquet" / n) for n in pq]]).fetchone()[0]
            finally:
                con.close()
        return {"live": lines, "parquet": rows, "parquet_files": len(pq), "events": lines + rows}

    return read_store_still(data_dir, read)


def get(http_port: int, path: str, **params: str) -> dict:
    url = f"http://{HOST}:{http_port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=20) as resp:
        return orjson.loads(resp.read())


def book_sender(port: int, k: int) -> None:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        for i in range(BOOK_EVENTS):
            text = orjson.dumps({"uri": "/goods", "method": "GET", "params": {"key": i},
                                 "trace.id": f"book{k}-{i}"}).decode()
            sock.sendall(encode({"uri": "/logs", "method": "POST", "key": 0, "params": text}))
            if i % 50 == 49:
                time.sleep(0.1)  # ~10 s of traffic: seals and compactions happen meanwhile


def test_stats_count_and_histogram_never_count_more_than_the_disk_holds(procs, tmp_path):
    data = tmp_path / "data"
    _, port, http = procs.logs(data, "--max-segment-size", "64KB")
    shippers = [procs.start_script(f"shipper{i}", [sys.executable, str(ACK_SHIPPER), HOST, str(port),
                                                   str(SHIPPED), str(RATE), str(tmp_path / f"p{i}.json")])
                for i in range(SHIPPERS)]
    senders = [threading.Thread(target=book_sender, args=(port, k)) for k in range(BOOK_CONNECTIONS)]
    for t in senders:
        t.start()
    sent = BOOK_CONNECTIONS * BOOK_EVENTS + SHIPPERS * SHIPPED
    over: list[str] = []
    polls = {"stats": 0, "histogram": 0, "top": 0}
    seen = {"parquet_files": 0, "live_segments": 0}
    stop = threading.Event()

    def poll(kind: str) -> None:
        while not stop.is_set():
            try:
                n = ask(kind)
            except urllib.error.HTTPError as exc:  # a query turned away under load: ask again
                if exc.code != 503:
                    raise
                time.sleep(0.1)
                continue
            disk = on_disk(data)["events"]  # after the answer: the disk only grows here
            polls[kind] += 1
            if n > disk:
                over.append(f"{kind} counted {n} while the disk held {disk}")

    def ask(kind: str) -> int:
        if kind == "stats":
            r = get(http, "/api/v1/stats")
            seen["parquet_files"] = max(seen["parquet_files"], r["parquet_files"])
            seen["live_segments"] = max(seen["live_segments"], r["live_segments"])
            return r["events"]
        if kind == "histogram":
            return get(http, "/api/v1/histogram", **FAR)["total"]
        return get(http, "/api/v1/top", field="service.name", **FAR)["total"]

    pollers = [threading.Thread(target=poll, args=(kind,)) for kind in polls]
    for t in pollers:
        t.start()
    try:
        for t in senders:
            t.join(60)
        for s in shippers:
            s.wait_line(rf'"acked": ?{SHIPPED}\b', timeout=60)
        wait_for(lambda: on_disk(data)["events"] == sent, 20, f"{sent} events on disk")
        # the counts must also hold across a compaction, which a loaded machine may not have
        # finished by the time the last event is on disk: the pollers go on until it has
        wait_for(lambda: seen["parquet_files"] >= 1, 60, "a compacted file in the stats")
        # a loaded machine answers fewer polls during the ~10 s of traffic (5 at load ~12): the
        # pollers go on until each has compared often enough for the check to mean something
        wait_for(lambda: min(polls.values()) >= 10, 60, "10 polls of each kind")
    finally:
        stop.set()
        for t in pollers:
            t.join(30)
    assert not over, over[:5]
    assert min(polls.values()) >= 10, polls
    assert seen["parquet_files"] >= 1 and seen["live_segments"] >= 2, seen  # across seals and compactions

    def exact() -> dict | None:
        st = get(http, "/api/v1/stats")
        disk = on_disk(data)
        if (st["events"], st["live_events"], st["parquet_events"]) != (disk["events"], disk["live"],
                                                                       disk["parquet"]):
            return None
        return st

    st = wait_for(exact, 10, "stats to equal the disk")
    assert st["events"] == sent and st["services"]["acktest"] == SHIPPERS * SHIPPED
    assert get(http, "/api/v1/histogram", **FAR)["total"] == sent
    assert get(http, "/api/v1/top", field="service.name", **FAR)["total"] == sent
    acked = [json.loads((tmp_path / f"p{i}.json").read_text())["acked"] for i in range(SHIPPERS)]
    assert acked == [SHIPPED] * SHIPPERS


def test_a_store_read_is_retried_for_a_file_gone_before_its_read_not_for_later_ones(tmp_path):
    """read_store_still under a store that changes during every read (a loaded machine's reads
    took longer than ingest and compaction left the store still: "the store kept changing
    while being read" in a poller, 50 tries in a row): new segments after the listing do not
    make it read again; a listed segment gone before it was read does."""
    segments = tmp_path / "segments"
    segments.mkdir()
    (segments / "w00-1.ndjson").write_bytes(b"{}\n{}\n")
    (segments / "w00-2.ndjson").write_bytes(b"{}\n")
    reads = []

    def read(data_dir: Path, files: tuple) -> int:
        reads.append(files)
        if len(reads) == 1:  # compacted between the listing and the read
            (segments / "w00-2.ndjson").rename(segments / "moved")
        lines = sum(data.count(b"\n") for data in uncompacted_lines(data_dir, files))
        (segments / f"w00-{len(reads) + 2}.ndjson").write_bytes(b"{}\n")  # ingest goes on
        return lines

    assert read_store_still(tmp_path, read) == 2  # the second listing: w00-1 (w00-2 went away)
    assert len(reads) == 2
