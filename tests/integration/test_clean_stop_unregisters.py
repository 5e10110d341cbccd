"""A clean stop unregisters; a crash is still down (real processes).

A second logs service joined on purpose (``--join-anyway``) and stopped cleanly showed
``down`` in the first one's mesh view for 10 minutes, as if it had crashed: the distributor
protocol had no goodbye. Now a node stopping cleanly sends ``DELETE /distributes`` before it
closes its connection and the distributor's lists name it in ``left``: the mesh view drops its
row (and its shipper's) at once. A node killed with SIGKILL says nothing and is down until
forgotten, as before.
"""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from tests.support.procs import HOST, wait_for

pytestmark = pytest.mark.slow  # real processes


def rows(http_port: int) -> dict[str, dict]:
    """GET /api/v1/mesh's instances by address (two logs services share a name here)."""
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/api/v1/mesh", timeout=5) as r:
        got = orjson.loads(r.read())["instances"]
    return {str(row["address"] or row["instance"]): row for row in got}


def test_a_clean_stop_leaves_the_mesh_view_and_a_kill_is_down(procs, tmp_path):
    _, dist = procs.distributor()
    _, _, http = procs.logs(tmp_path / "a", distributor=dist)
    goods, goods_port = procs.service("goods", dist, tmp_path / "svc")
    members, members_port = procs.service("members", dist, tmp_path / "svc")
    second, second_port, _ = procs.logs(tmp_path / "b", "--join-anyway", distributor=dist, name="logs-b")
    goods_at, members_at, second_at = (f"{HOST}:{p}" for p in (goods_port, members_port, second_port))

    def all_up() -> dict | None:
        now = rows(http)
        ok = all(now.get(a, {}).get("state") == "up" for a in (goods_at, members_at, second_at))
        return now if ok and now[goods_at]["instance"] else None

    wait_for(all_up, 20, "goods, members and the second logs service up")
    seen: list[tuple[str, str, str]] = []  # (name, address, state) of every row seen since

    def without(name: str, address: str) -> dict | None:
        now = rows(http)
        seen.extend((r["name"], a, r["state"]) for a, r in now.items())
        left = address in now or any(r["name"] == name and r["address"] is None for r in now.values())
        return None if left else now

    second.stop()  # SIGTERM: a clean stop
    wait_for(lambda: without("logs", second_at), 10, "the second logs service's row gone")
    goods.stop()  # its row and its shipper's closed connection: no row at all
    wait_for(lambda: without("goods", goods_at), 10, "goods' row gone")
    members.kill9()  # a crash: no goodbye
    wait_for(lambda: rows(http).get(members_at, {}).get("state") == "down", 15, "members down")
    time.sleep(2)  # past the 5 s a closed shipper's connection takes to count as down
    assert without("goods", goods_at) is not None and without("logs", second_at) is not None
    assert not [s for s in seen if s[2] == "down" and s[0] != "members"], seen
    assert rows(http)[members_at]["state"] == "down"
