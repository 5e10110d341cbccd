"""A second ``logmesh logs`` started by hand beside a running mesh, tried from outside.

It registered with the mesh's distributor as a second ``logs``: the shippers then move to it
whenever the mesh's own logs service stops (a restart under ``logmesh up`` is enough) and stay,
so the mesh's events went on into the other data directory, and after it exited it was listed
"down" in the mesh view for ten minutes. Issue #8's failover (two logs services sharing one
data directory, each its own stream) is the one way two of them belong in one mesh: that one
still joins; one with a store of its own is refused with what to do, unless asked to join.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.procs import HOST, LISTENING, run_logmesh

pytestmark = pytest.mark.slow  # real processes


def test_a_second_logs_with_its_own_store_is_refused_one_sharing_the_store_joins(
        procs, tmp_path: Path) -> None:
    _, dport = procs.distributor()
    first, lport, _ = procs.logs(tmp_path / "mesh-data", distributor=dport, name="logs-mesh")
    first.wait_line("logs registered with distributor")

    done = run_logmesh(tmp_path, "logs", "--port", "0", "--http-port", "0", "--data-dir",
                       str(tmp_path / "other"), "--distributor", f"{HOST}:{dport}",
                       "--no-supervise", bound=60)
    assert done.returncode == 78, done.stderr[-2000:]
    assert f"already lists a logs service at {HOST}:{lport}" in done.stderr, done.stderr[-2000:]
    assert "--standalone" in done.stderr and "--join-anyway" in done.stderr
    assert "registered with distributor" not in done.stderr

    # asked to: it joins (a second logs service on purpose)
    joined = procs.start("logs-joined", "logs", "--port", "0", "--http-port", "0", "--data-dir",
                         str(tmp_path / "other2"), "--distributor", f"{HOST}:{dport}",
                         "--no-supervise", "--join-anyway")
    joined.wait_line("logs registered with distributor", timeout=60)
    # sharing the mesh's store (issue #8's failover): joins without being asked
    shared = procs.start("logs-shared", "logs", "--port", "0", "--http-port", "0", "--data-dir",
                         str(tmp_path / "mesh-data"), "--distributor", f"{HOST}:{dport}",
                         "--no-supervise")
    assert shared.wait_line(LISTENING["logs"], timeout=60)[0].group(1) == "1"
    shared.wait_line("logs registered with distributor", timeout=60)
