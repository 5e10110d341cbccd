"""A logs service restarted while its disk is still full starts, serves what it stored and
refuses (507) what it cannot store, and takes events again once space comes back.

Found from outside: SIGTERM on a full disk leaves the active segment unsealed; the next
start's recovery wrote its index, got ENOSPC, and the service exited ("error: [Errno 28]
No space left on device") at every start until someone freed space by hand: nothing could
be read, /healthz did not answer, and --max-disk retention never ran. After a kill -9 that
cut a write short, recovery's quarantine of the torn bytes failed the same way.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from tests.durability.machine import fill_disk, small_tmpfs
from tests.support.procs import HOST, http_json
from tests.support.waiting import wait_for


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path / "disk", 16 * 1024 * 1024) as path:
        yield path


def post(http_port: int, messages: list[str]) -> int:
    body = b"".join(orjson.dumps({"message": m}) + b"\n" for m in messages)
    req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert orjson.loads(resp.read())["accepted"] == len(messages)
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def healthz(http_port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=30) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def found(http_port: int) -> list[str]:
    events = http_json(http_port, "/api/v1/search", q="fulldisk", limit="1000", **{"from": "now-1h"})["events"]
    return sorted(e["message"] for e in events)


@pytest.mark.parametrize("how", ["sigterm", "kill9_torn"])
def test_a_restart_on_a_full_disk_starts_serves_reads_and_refuses_writes(procs, small_disk, how):
    """``kill9_torn``: kill -9, and the segment ends in half a line (a write cut short), whose
    recovery must set it aside in the quarantine: no room for it, the file is left as it is."""
    data = small_disk / "data"
    proc, _, http_port = procs.logs(data, "--no-compact")
    first = [f"fulldisk a{i}" for i in range(100)]
    assert post(http_port, first) == 200
    fill_disk(small_disk / "filler")
    never = [f"fulldisk never {i} " + "x" * 1000 for i in range(200)]  # more than a page's room
    assert post(http_port, never) == 507
    if how == "sigterm":
        proc.stop()  # SIGTERM while full: the active segment cannot be sealed
    else:
        proc.kill9()
        [segment] = (data / "segments").glob("*.ndjson")
        (small_disk / "filler").unlink()
        with open(segment, "ab") as f:
            f.write(b'{"seq":999999,"@timestamp":1,"mess')
        fill_disk(small_disk / "filler")

    proc, _, http_port = procs.logs(data, "--no-compact")  # the disk still full
    assert found(http_port) == sorted(first)
    assert post(http_port, never) == 507
    status, health = healthz(http_port)  # the write that failed says why
    assert status == 503 and "No space left" in str(health["problems"]), health

    (small_disk / "filler").unlink()  # space comes back: writes go on, no restart needed
    later = [f"fulldisk b{i}" for i in range(100)]
    # 507 (Retry-After) until the writer's next try finds the room; a client sends again
    wait_for(lambda: post(http_port, later) == 200, 60, "the events taken once space came back", 1.0)
    proc.stop()
    _, _, http_port = procs.logs(data, "--no-compact")
    assert found(http_port) == sorted(first + later)
