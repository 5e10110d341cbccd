"""``--workers N`` for the gateway and the services: processes sharing one port (SO_REUSEPORT)."""

from __future__ import annotations

import os
import re
import urllib.request

import pytest
from click.testing import CliRunner

from logmesh import cli as cli_module
from tests.support.mesh import Peer
from tests.support.procs import HOST, free_port, wait_for


async def _registered(dist: int) -> list[dict]:
    peer = await Peer.connect(dist)
    try:
        reply = await peer.request({"uri": "/distributes", "method": "GET", "key": 1})
        return reply["params"]
    finally:
        await peer.close()


def _get(url: str) -> int:
    """One request on a connection of its own (the kernel picks a worker per connection)."""
    with urllib.request.urlopen(url, timeout=5) as r:
        r.read()
        return r.status


def _requests_total(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return float(re.search(r"^logmesh_gateway_requests_total (\S+)$", text, re.M).group(1))


async def test_gateway_and_goods_workers_share_their_ports_and_their_metrics(procs, tmp_path):
    dist_proc, dist = procs.distributor()
    goods_port, port, metrics = free_port(), free_port(), free_port()
    procs.start("goods", "service", "goods", "--port", str(goods_port), "--distributor",
                f"{HOST}:{dist}", "--data-dir", str(tmp_path / "data"), "--no-ship",
                "--workers", "2")
    gw = procs.start("gateway", "gateway", "--port", str(port), "--distributor", f"{HOST}:{dist}",
                     "--no-ship", "--workers", "2", "--metrics-port", str(metrics))
    gw.wait_line(r"gateway listening on http://[\d.]+:\d+", count=2)
    # every worker registered; the two of each share one address, which the distributor lists
    # once (the latest registration of an instance)
    dist_proc.wait_line(r"node registered: gateway ", count=2)
    dist_proc.wait_line(r"node registered: goods ", count=2)
    assert sorted(n["name"] for n in await _registered(dist)) == ["gateway", "goods"]
    url = f"http://{HOST}:{port}/goods"
    # each gateway worker has heard of goods: 20 connections in a row answered (the kernel
    # hands each to either worker)
    wait_for(lambda: all(_try(url) for _ in range(20)) or None, 15.0, "GET /goods routed")
    before = _requests_total(metrics)
    assert all(_get(url) == 200 for _ in range(60))
    # any worker's /metrics counts every worker's requests: the total moved by exactly 60
    assert {_requests_total(metrics) - before for _ in range(6)} == {60}


def _try(url: str) -> bool:
    try:
        return _get(url) == 200
    except OSError:
        return False


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (4, 2), (64, 4)])
def test_up_runs_a_gateway_worker_per_two_cores(monkeypatch, tmp_path, cores, workers):
    seen: list = []

    class Recorder:  # the specs `up` hands its supervisor, which is not run
        def __init__(self, specs) -> None:
            seen.extend(specs)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(cli_module, "Supervisor", Recorder)
    monkeypatch.setattr(cli_module, "busy_port", lambda host, ports: None)
    monkeypatch.setattr(cli_module.os, "cpu_count", lambda: cores)
    result = CliRunner().invoke(cli_module.cli, ["up", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    gateways = [s for s in seen if s.argv[3] == "gateway"]  # python -m logmesh gateway ...
    assert [s.name for s in gateways] == ["gateway"] + [f"gateway-w{i}" for i in range(1, workers)]
    for i, spec in enumerate(gateways):
        argv = spec.argv
        assert argv[argv.index("--port") + 1] == "8000"
        if workers == 1:
            assert "--workers" not in argv
        else:
            assert argv[argv.index("--workers") + 1] == str(workers)
            assert argv[argv.index("--worker-id") + 1] == str(i)
            assert argv[argv.index("--metrics-dir") + 1] == str(tmp_path / "gateway-metrics")


def test_a_killed_supervisors_metrics_directory_is_removed_by_the_next(tmp_path, monkeypatch):
    """Each kill -9 of a --workers supervisor left its metrics directory in the temp directory
    for ever (only a clean end removed it); the next one removes those whose pid is gone."""
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dead = tmp_path / f"logmesh-gateway-metrics-{gone}-x1"
    alive = tmp_path / f"logmesh-goods-metrics-{os.getpid()}-x2"
    other = tmp_path / "logmesh-gateway-metrics-notapid"
    for d in (dead, alive, other):
        d.mkdir()
        (d / "counter_1.db").write_bytes(b"x")
    made = cli_module.metrics_directory("gateway")
    assert made.is_dir() and made.parent == tmp_path and f"-{os.getpid()}-" in made.name
    assert not dead.exists() and alive.exists() and other.exists()
