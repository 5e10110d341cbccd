"""Issue 17 item 2 with real processes: GET /api/v1/mesh's instances and their states.

distributor, logs, goods and members (``logmesh service``, unsupervised) and a plain Python
program shipping through ``logmesh.LogHandler`` without registering. goods frozen with SIGSTOP
is reported ``silent`` within 20 s and ``up`` again after SIGCONT; members killed is ``down``;
the plain program is ``unregistered``. Each change is stored as an event
(``labels.event.kind:state``).
"""

from __future__ import annotations

import signal
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes

SCRIPT = Path(__file__).parent / "scripts" / "plain_logger.py"


def get(http_port: int, path: str, **params: str) -> dict:
    url = f"http://{HOST}:{http_port}{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as r:
        return orjson.loads(r.read())


def instances(http_port: int) -> dict[str, dict]:
    """The rows by service name (one process each here)."""
    return {row["name"]: row for row in get(http_port, "/api/v1/mesh")["instances"]}


def state_of(http_port: int, name: str) -> str | None:
    row = instances(http_port).get(name)
    return row["state"] if row else None


def test_frozen_silent_then_up_killed_down_and_a_plain_program_unregistered(procs, tmp_path):
    _, dist = procs.distributor()
    _, logs_port, http = procs.logs(tmp_path / "logs-data", distributor=dist)
    goods, goods_port = procs.service("goods", dist, tmp_path / "svc")
    members, _ = procs.service("members", dist, tmp_path / "svc")
    plain = procs.start_script("plain", [sys.executable, str(SCRIPT), str(logs_port), "billing"])
    plain.wait_line("logged")

    def linked() -> dict | None:
        rows = instances(http)
        ok = all(rows.get(n, {}).get("instance") and rows[n]["state"] == "up" for n in ("goods", "members"))
        return rows if ok and rows.get("billing", {}).get("state") == "unregistered" else None

    rows = wait_for(linked, 20, "goods and members up with their shippers, billing unregistered")
    g = rows["goods"]
    assert g["address"] == f"{HOST}:{goods_port}" and g["registered"] and g["heartbeat"]
    assert g["instance"].startswith("goods-") and g["restarts"] == 0 and g["missing"] == 0
    assert g["first_seen_ms"] <= g["last_seen_ms"]
    b = rows["billing"]
    assert b["address"] is None and not b["registered"] and b["instance"].startswith("billing-")
    assert b["events"] == 1

    goods.signal_group(signal.SIGSTOP)  # frozen: its connections stay open, it says nothing
    t0 = time.monotonic()
    try:
        wait_for(lambda: state_of(http, "goods") in ("silent", "slow"), 20, "goods silent")
        assert time.monotonic() - t0 <= 20
        row = instances(http)["goods"]
        assert row["state"] == "silent" and "no heartbeat" in row["reason"]
        assert state_of(http, "members") == "up", "a quiet service that beats is not silent"
    finally:
        goods.signal_group(signal.SIGCONT)
    wait_for(lambda: state_of(http, "goods") == "up", 10, "goods up again after SIGCONT")

    members.kill9()  # unsupervised: it stays dead
    wait_for(lambda: state_of(http, "members") == "down", 15, "members down")
    row = instances(http)["members"]
    assert not row["registered"] and row["reason"]

    def stored_states() -> list[tuple[str, str]] | None:
        events = get(http, "/api/v1/search", q="labels.event.kind:state", limit="100",
                     order="asc", **{"from": "now-10m", "to": "now+1m"})["events"]
        got = [(e["service.name"], e["labels"]["state"]) for e in events]
        return got if ("members", "down") in got else None

    got = wait_for(stored_states, 10, "the state changes in the store")
    goods_states = [s for n, s in got if n == "goods"]
    assert goods_states[-2:] == ["silent", "up"], got  # up at the start is the baseline: not stored
    assert ("billing", "unregistered") in got
