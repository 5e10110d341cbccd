"""An instance registered twice with the distributor, tried from outside with real processes.

The same host:port can be registered from two connections at once: a service restarted
quickly (its old connection not closed yet), or the book's Node service, whose 3 s timer
connects to the distributor again while its first connection is still being made. The
book's distributor keys its map by connection and lists such an instance twice; the book's
gateway keys its clients by host:port and so routes to it once. Found by hand: logmesh's
distributor listed it twice too, and logmesh's gateway put it twice in the route's
round-robin, so it got two requests for every one of the other instance.
"""

from __future__ import annotations

import re
import shutil
import socket
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.support.procs import HOST, free_port, wait_for

pytestmark = pytest.mark.slow  # real processes

METRICS = re.compile(r"metrics on http://[\d.]+:(\d+)/metrics")
REQUESTS = re.compile(r'^logmesh_service_requests_total\{service="goods"\} (\d+)', re.M)
DISTRIBUTOR_JS = Path(__file__).parents[1] / "interop" / "node" / "distributor.js"
ROUNDS = 40


def served(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=10) as r:
        m = REQUESTS.search(r.read().decode())
    return int(m.group(1)) if m else 0


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as r:
        return orjson.loads(r.read())


def register_again(dist_port: int, port: int) -> socket.socket:
    """A second registration of goods at ``port``, from a connection of its own (kept open)."""
    sock = socket.create_connection((HOST, dist_port), timeout=10)
    packet = {"uri": "/distributes", "method": "POST", "key": 0,
              "params": {"port": port, "name": "goods", "urls": ["POST/goods", "GET/goods", "DELETE/goods"]}}
    sock.sendall(orjson.dumps(packet) + "¶".encode())
    return sock


def spread(procs, tmp_path, dist_port: int, dist_host_seen: str) -> tuple[int, int, list]:
    """Requests through a gateway over goods A (registered twice) and goods B (once)."""
    a, a_port = procs.service("goods", dist_port, tmp_path / "a", "--no-ship", "--metrics-port", "0")
    a_metrics = int(a.wait_line(METRICS)[0].group(1))
    twice = register_again(dist_port, a_port)
    try:
        # B starts after the second registration: once the gateway routes to B, it has
        # heard a list with A's second entry in it
        b, _ = procs.service("goods", dist_port, tmp_path / "b", "--no-ship", "--metrics-port", "0")
        b_metrics = int(b.wait_line(METRICS)[0].group(1))
        gw = procs.start("gateway", "gateway", "--port", "0", "--distributor",
                         f"{dist_host_seen}:{dist_port}", "--no-supervise")
        gw_port = int(gw.wait_line(r"gateway listening on http://[\d.]+:(\d+)")[0].group(1))

        def both_served() -> bool:
            for _ in range(4):
                try:
                    get_json(f"http://{HOST}:{gw_port}/goods")
                except OSError:
                    return False
            return served(a_metrics) > 0 and served(b_metrics) > 0

        wait_for(both_served, 60, "both goods instances answering through the gateway")
        listed = get_json(f"http://{HOST}:{gw_port}/distributes")
        before = served(a_metrics), served(b_metrics)
        for _ in range(ROUNDS):
            get_json(f"http://{HOST}:{gw_port}/goods")
        return served(a_metrics) - before[0], served(b_metrics) - before[1], listed
    finally:
        twice.close()


NEEDS_NODE = pytest.mark.skipif(shutil.which("node") is None,
                                reason="the book's distributor is Node.js")


def book_distributor(procs) -> int:
    """The book's Node distributor on a free port."""
    port = free_port()
    book = procs.start_script("book-distributor", [shutil.which("node") or "node",
                                                   str(DISTRIBUTOR_JS), str(port)])
    book.wait_line("distributor listening")
    return port


def ours(procs) -> int:
    return procs.distributor()[1]


@pytest.mark.parametrize("distributor, entries", [
    (ours, 2),  # one entry per instance (host:port)
    pytest.param(book_distributor, 3, marks=NEEDS_NODE),  # it lists A twice, as the book does
], ids=["logmesh-distributor", "book-distributor"])
def test_an_instance_registered_twice_is_routed_to_once(procs, tmp_path, distributor, entries):
    to_a, to_b, listed = spread(procs, tmp_path, distributor(procs), HOST)
    goods = [n for n in listed if n["name"] == "goods"]
    assert len(goods) == entries, goods
    assert to_a + to_b == ROUNDS
    assert abs(to_a - to_b) <= 2, f"A registered twice got {to_a} requests, B {to_b}"


@NEEDS_NODE
def test_the_mesh_view_shows_a_twice_listed_instance_once(procs, tmp_path):
    dport = book_distributor(procs)
    _, _, http_port = procs.logs(tmp_path / "logs", distributor=dport)
    _, goods_port = procs.service("goods", dport, tmp_path / "svc", "--no-ship")
    twice = register_again(dport, goods_port)
    try:
        def goods_nodes() -> list | None:
            nodes = get_json(f"http://{HOST}:{http_port}/api/v1/mesh")["nodes"]
            return [n for n in nodes if n["name"] == "goods"] or None

        # the book's distributor lists goods twice; its second entry has reached the logs service once a later node is listed after it
        procs.service("members", dport, tmp_path / "svc2", "--no-ship")
        wait_for(lambda: any(n["name"] == "members" for n in
                             get_json(f"http://{HOST}:{http_port}/api/v1/mesh")["nodes"]), 30,
                 "members in the mesh view")
        goods = goods_nodes()
        assert goods is not None and len(goods) == 1, f"one row per instance: {goods}"
    finally:
        twice.close()
