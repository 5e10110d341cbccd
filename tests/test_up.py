"""``logmesh up`` with real processes: a second one refuses ports the first holds, and
``--port-offset`` moves every port of a mesh together (issue 15 item 9), and an option of a
part that ``up`` does not take reaches it from the environment (the README's
``LOGMESH_LOGS_RETENTION=7d make run``)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import ROOT
from tests.support.waiting import wait_for
from tests.test_supervisor import distributor_nodes, serves_goods

HOST = "127.0.0.1"
# Every port `logmesh up` binds, at offset 0 (README: gateway 8000 and its metrics, distributor,
# goods, members, purchases and their metrics, logs TCP and HTTP).
UP_PORTS = (8000, 8001, 9000, 9010, 9011, 9020, 9021, 9030, 9031, 9040, 9041)
STARTUP = 30.0  # seven cold interpreters on a busy 2-core machine


def free(port: int) -> bool:
    try:
        with socket.create_server((HOST, port)):
            return True
    except OSError:
        return False


def free_offset() -> int:
    """An offset (a multiple of 100) at which no port of a mesh is taken."""
    rng = random.Random()
    for _ in range(50):
        offset = rng.randrange(100, 500) * 100
        if all(free(p + offset) for p in UP_PORTS):
            return offset
    raise AssertionError("no free block of ports found")


def up(tmp_path: Path, name: str, *args: str, env_extra: dict[str, str] | None = None
       ) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMESH_")}
    env["PYTHONPATH"] = str(ROOT)  # this tree's code: "." ran the installed one from tmp_path
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "logmesh", "up", "--no-traffic",
                             "--data-dir", str(tmp_path / name), *args],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path, env=env, start_new_session=True)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # a clean stop of the whole mesh
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_up_refuses_a_busy_port_and_says_which_and_what_to_do(tmp_path, procs):
    offset = free_offset()
    with socket.create_server((HOST, 9040 + offset)):  # someone holds the logs service's port
        proc = up(tmp_path, "mesh", "--port-offset", str(offset))
        procs.append(proc)
        assert proc.wait(15) == 3
    out = (tmp_path / "mesh.log").read_text()
    assert f"port {9040 + offset} (logs" in out and "in use" in out
    assert "--port-offset" in out  # what to do
    assert "logmesh is starting" not in out  # no URLs of a mesh that is not this one
    assert all(free(p + offset) for p in UP_PORTS if p != 9040)  # and nothing was started


@pytest.mark.slow
def test_a_second_up_exits_and_leaves_the_first_alone_and_an_offset_moves_every_port(tmp_path, procs):
    offset = free_offset()
    first = up(tmp_path, "first", "--port-offset", str(offset))
    procs.append(first)
    expected = {("gateway", 8000 + offset), ("logs", 9040 + offset), ("goods", 9010 + offset),
                ("members", 9020 + offset), ("purchases", 9030 + offset)}

    def registered() -> set:
        return {(n["name"], n["port"]) for n in distributor_nodes(9000 + offset) or []}

    try:
        wait_for(lambda: registered() == expected, STARTUP, "every part of the first mesh")
        wait_for(lambda: serves_goods(9010 + offset), STARTUP, "the first mesh's goods")
    except AssertionError:
        print((tmp_path / "first.log").read_text()[-4000:])
        raise
    gateway_spool = tmp_path / "first" / "spool" / "gateway"  # w<id> in it with workers
    assert gateway_spool.is_dir(), "up gives the gateway's shipper a spool, as the services'"
    for port, path in ((8000, "/goods"), (8001, "/metrics"), (9011, "/metrics"),
                       (9041, "/healthz")):
        with urllib.request.urlopen(f"http://{HOST}:{port + offset}{path}", timeout=5) as r:
            assert r.status == 200, (port, path)

    second = up(tmp_path, "second", "--port-offset", str(offset))
    procs.append(second)
    assert second.wait(15) == 3
    out = (tmp_path / "second.log").read_text()
    assert "in use" in out and "--port-offset" in out and "logmesh is starting" not in out
    assert first.poll() is None and serves_goods(9010 + offset)
    assert registered() == expected  # nobody else registered


def connects(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_an_option_of_the_logs_service_reaches_it_under_up_from_the_environment(tmp_path, procs):
    offset = free_offset()
    with socket.create_server((HOST, 0)) as s:
        jsonl = s.getsockname()[1]  # a free port, closed again before the mesh starts
    proc = up(tmp_path, "mesh", "--port-offset", str(offset),
              env_extra={"LOGMESH_LOGS_JSONL_PORT": str(jsonl), "LOGMESH_LOGS_RETENTION": "7d"})
    procs.append(proc)
    try:
        wait_for(lambda: connects(jsonl), STARTUP, "the logs service's JSON-lines port")
    except AssertionError:
        print((tmp_path / "mesh.log").read_text()[-4000:])
        raise
    assert proc.poll() is None
