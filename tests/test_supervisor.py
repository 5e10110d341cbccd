"""The supervisor with real processes: a killed child is replaced, SIGTERM stops the tree,
and a restarted distributor sees its services again (DESIGN.md §1, the book's cluster)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logmesh.protocol import BadFrame, FrameDecoder, encode
from tests.support.mesh import HOST, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

STARTUP = 10.0  # a cold interpreter on a busy 2-core machine


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        text = out.stdout
    return [int(x) for x in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def one_child(pid: int, timeout: float = STARTUP) -> int:
    return wait_for(lambda: (kids := children(pid)) and len(kids) == 1 and kids[0], timeout,
                    f"the child of supervisor {pid}")


def exchange(port: int, packet: dict | None, timeout: float = 1.0,
             want: Callable[[dict], bool] = lambda p: True) -> dict | None:
    """Connect, optionally send one packet, return the first packet matching ``want``."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            if packet is not None:
                sock.sendall(encode(packet))
            decoder = FrameDecoder()
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    return None
                for item in decoder.feed(data):
                    if not isinstance(item, BadFrame) and want(item[1]):
                        return item[1]
    except OSError:
        return None
    return None


def serves_goods(port: int) -> bool:
    reply = exchange(port, {"uri": "/goods", "method": "GET", "params": {"key": 77}},
                     want=lambda p: p.get("key") == 77)
    return bool(reply) and reply.get("errorcode") == 0


def distributor_nodes(port: int) -> list[dict] | None:
    reply = exchange(port, {"uri": "/distributes", "method": "GET", "params": {"key": 5}},
                     want=lambda p: p.get("key") == 5)
    return reply["params"] if reply else None


def registered(dist_port: int, name: str, port: int) -> bool:
    nodes = distributor_nodes(dist_port) or []
    return any(n.get("name") == name and n.get("port") == port for n in nodes)


class Procs:
    """Starts `python -m logmesh ...` in its own process group; kills every group at the end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        with open(self.logdir / f"{len(self.procs)}-{args[0]}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "logmesh", *args], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def terminate(self, proc: subprocess.Popen, timeout: float = 8.0) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def kill_all(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the supervisor and its children
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.logdir.glob("*.log")))


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    logdir = tmp_path / "logs"
    logdir.mkdir()
    p = Procs(logdir)
    try:
        yield p
    finally:
        p.kill_all()


@pytest.fixture
def mesh(procs: Procs, tmp_path: Path):
    """A supervised distributor and a supervised goods service, both serving."""
    dist_port, goods_port = free_port(), free_port()
    dist = procs.start("distributor", "--port", str(dist_port))
    goods = procs.start("service", "goods", "--port", str(goods_port),
                        "--distributor", f"{HOST}:{dist_port}", "--data-dir", str(tmp_path / "data"))
    try:
        wait_for(lambda: serves_goods(goods_port), STARTUP, "goods to serve")
        wait_for(lambda: registered(dist_port, "goods", goods_port), STARTUP, "goods to register")
    except AssertionError:
        print(procs.logs())
        raise
    return {"dist": dist, "dist_port": dist_port, "goods": goods, "goods_port": goods_port}


def test_killed_child_is_replaced_at_once_and_serves_again(mesh, procs):
    """The supervisor starts the new child within 2 s; how soon it serves is a cold
    interpreter's start, which a busy 2-core machine stretches past 2 s (STARTUP)."""
    supervisor = mesh["goods"]
    old = one_child(supervisor.pid)
    os.kill(old, signal.SIGKILL)
    try:
        wait_for(lambda: (kids := children(supervisor.pid)) and kids[0] != old, 2.0, "a new child")
        wait_for(lambda: serves_goods(mesh["goods_port"]), STARTUP, "the new child to serve",
                 interval=0.02)
    except AssertionError:
        print(procs.logs())
        raise
    assert supervisor.poll() is None
    new = one_child(supervisor.pid)
    assert new != old and not alive(old)
    # and it registers with the distributor again
    wait_for(lambda: registered(mesh["dist_port"], "goods", mesh["goods_port"]), 5.0,
             "the new child to register")


def test_restarted_distributor_sees_the_service_again_within_5s(mesh, procs):
    dist_port = mesh["dist_port"]
    assert procs.terminate(mesh["dist"]) == 0
    assert distributor_nodes(dist_port) is None  # really gone
    time.sleep(0.5)  # the service's link is backing off by now
    procs.start("distributor", "--port", str(dist_port))
    started = time.monotonic()
    try:
        wait_for(lambda: registered(dist_port, "goods", mesh["goods_port"]), 5.0 + STARTUP / 2,
                 "goods to register with the new distributor")
    except AssertionError:
        print(procs.logs())
        raise
    assert time.monotonic() - started < 5.0  # including the new distributor's own start-up
    assert serves_goods(mesh["goods_port"])


def test_sigterm_to_a_supervisor_stops_its_children(mesh, procs):
    supervisors = [mesh["goods"], mesh["dist"]]
    kids = [one_child(s.pid) for s in supervisors]
    for sup in supervisors:
        assert procs.terminate(sup) == 0
    for pid in kids:
        wait_for(lambda pid=pid: not alive(pid), 3.0, f"child {pid} to exit")
    assert not serves_goods(mesh["goods_port"])
    assert distributor_nodes(mesh["dist_port"]) is None


def test_children_stop_when_their_supervisor_is_killed(mesh, procs):
    """SIGKILL leaves the supervisor no time to clean up: the children must notice by themselves."""
    sup = mesh["goods"]
    kid = one_child(sup.pid)
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait(5)
    wait_for(lambda: not alive(kid), 5.0, f"child {kid} to exit after its supervisor died")
    assert not serves_goods(mesh["goods_port"])
