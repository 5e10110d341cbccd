"""logmesh's logs service, goods and gateway behind the book's Node distributor.

The book's distributor records a node's host as its socket's ``remoteAddress``; listening
on an IPv6 socket as the book's ``server.listen(port)`` does, an IPv4 peer's is
``::ffff:127.0.0.1``. Found by hand: requests and shipping worked, but the mesh view
(``GET /api/v1/mesh``) did not see that the shippers naming ``127.0.0.1:PORT`` were those
nodes: the gateway had a second row, ``unregistered``, and goods' shipper one of its own.
Each process must be one row, ``up``.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.support.procs import HOST, free_port, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("node") is None,
                                 reason="node is not installed: the book's distributor is Node.js")]

DISTRIBUTOR_JS = Path(__file__).parents[1] / "interop" / "node" / "distributor.js"


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return orjson.loads(r.read())


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def book_distributor(procs):
    """The book's Node distributor on a free port: (its process, the port)."""
    dport = free_port()
    book = procs.start_script("book-distributor", [shutil.which("node") or "node",
                                                   str(DISTRIBUTOR_JS), str(dport)])
    book.wait_line("distributor listening")
    return book, dport


def test_each_process_behind_the_book_distributor_is_one_row_up(procs, tmp_path):
    book, dport = book_distributor(procs)
    _, _, http = procs.logs(tmp_path / "logs", distributor=dport)
    _, goods_port = procs.service("goods", dport, tmp_path / "svc")
    _, gw_port = procs.gateway(dport)
    # the gateway ships an access log per request: its shipper is heard as well
    wait_for(lambda: status(f"http://{HOST}:{gw_port}/goods") == 200, 30, "goods through the gateway")

    def settled() -> list[dict] | None:
        rows = get(f"http://{HOST}:{http}/api/v1/mesh")["instances"]
        names = sorted(r["name"] for r in rows)
        heard = all(r.get("instance") for r in rows if r["name"] in ("goods", "gateway"))
        up = all(r["state"] == "up" for r in rows)
        return rows if names == ["gateway", "goods", "logs"] and heard and up else None

    try:
        rows = wait_for(settled, 30, "one row per process, each up, the shippers linked")
    except AssertionError:
        raise AssertionError(get(f"http://{HOST}:{http}/api/v1/mesh")["instances"]) from None
    by_name = {r["name"]: r for r in rows}
    assert by_name["goods"]["address"].endswith(f":{goods_port}")
    assert by_name["gateway"]["registered"] and by_name["goods"]["registered"]


def test_a_goodbye_to_the_book_distributor_is_ignored_and_the_node_is_down_as_before(procs, tmp_path):
    """A logmesh node stopping cleanly says goodbye (DELETE /distributes); the book's
    distributor handles POST only: it goes on listing and broadcasting, and with no ``left``
    in its lists the mesh view shows the stopped node down, as before the goodbye."""
    book, dport = book_distributor(procs)
    _, _, http = procs.logs(tmp_path / "logs", distributor=dport)
    goods, goods_port = procs.service("goods", dport, tmp_path / "svc")

    def state(name: str) -> str | None:
        rows = get(f"http://{HOST}:{http}/api/v1/mesh")["instances"]
        return next((r["state"] for r in rows if r["name"] == name), None)

    wait_for(lambda: state("goods") == "up", 30, "goods up")
    goods.stop()  # SIGTERM: a clean stop, its goodbye sent
    wait_for(lambda: state("goods") == "down", 20, "goods down (the book's lists name no goodbye)")
    procs.service("members", dport, tmp_path / "svc")
    wait_for(lambda: state("members") == "up", 30, "members listed by the book's distributor after it")
    assert book.popen.poll() is None, book.log_text()[-2000:]
