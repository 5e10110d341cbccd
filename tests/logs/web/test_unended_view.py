"""A service that begins a reply and never ends it with ``¶``, seen in the mesh view of a real
browser over real processes: the row said "slow" with N gateway timeouts, as a service that is
merely slow; it now says how many were unended replies (the gateway's 504 names them:
mesh/client.py's UnendedReply), in the API's ``unended`` and in the row."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import orjson
import pytest

from logmesh.protocol import FrameDecoder
from tests.logs.web.conftest import BROWSER, Mesh, http
from tests.support.procs import HOST, Procs, wait_for

pytestmark = BROWSER


class Unending:
    """A service on a socket of its own, registered with the distributor as ``hang`` serving
    ``GET /hang``: it answers every request with the start of a reply and never its end."""

    def __init__(self, distributor: int) -> None:
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()
        self.registration = socket.create_connection((HOST, distributor), timeout=10)
        packet = {"uri": "/distributes", "method": "POST", "key": 0,
                  "params": {"port": self.port, "name": "hang", "urls": ["GET/hang"]}}
        self.registration.sendall(orjson.dumps(packet) + "¶".encode())

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        decoder = FrameDecoder()
        with conn:
            while data := conn.recv(65536):
                for _, packet in decoder.feed(data):
                    reply = {"key": packet["key"], "errorcode": 0, "results": "begun"}
                    conn.sendall(orjson.dumps(reply)[:-1])  # no closing brace, no ¶

    def close(self) -> None:
        self.registration.close()
        self.server.close()


@pytest.fixture(scope="module")
def hung(tmp_path_factory) -> Iterator[tuple[Mesh, Unending]]:
    workdir = tmp_path_factory.mktemp("ui-unended")
    procs = Procs(workdir)
    service = None
    try:
        _, dport = procs.distributor()
        _, tcp_port, http_port = procs.logs(workdir / "data", distributor=dport)
        service = Unending(dport)
        _, gport = procs.gateway(dport, "--timeout", "0.5")
        yield Mesh(ui=f"http://{HOST}:{http_port}", gateway=f"http://{HOST}:{gport}", tcp=tcp_port), service
    except BaseException:
        print(procs.logs_of_all())
        raise
    finally:
        if service is not None:
            service.close()
        procs.close()


def test_a_service_that_never_ends_its_replies_is_named_so_in_the_mesh_view(hung, page):
    from playwright.sync_api import expect

    mesh, service = hung
    answers = []

    def answered_504() -> bool:
        status, body = http("GET", f"{mesh.gateway}/hang", timeout=10)
        answers.append(status)
        return status == 504 and "never ended" in str(body)

    wait_for(answered_504, 30, "the gateway's 504 naming the unended reply")
    for _ in range(2):
        assert answered_504(), answers[-1]

    def row() -> dict | None:
        status, body = http("GET", f"{mesh.ui}/api/v1/mesh")
        rows = [i for i in body.get("instances", ()) if i.get("name") == "hang"] if status == 200 else []
        return rows[0] if rows and (rows[0].get("unended") or 0) >= 3 else None

    wait_for(row, 30, "the mesh answer's hang row with its three unended replies")
    found = row()
    assert found is not None and found["state"] == "slow", found
    assert found["address"] == f"{HOST}:{service.port}"
    assert found["unended"] >= 3 and found["timeouts"] >= found["unended"], found
    assert found["reason"].startswith(f"unended replies: {found['unended']}"), found

    page.goto(mesh.ui + "/?view=mesh")
    cell = page.locator('#inst-rows tr.inst-row[data-name="hang"] .unended')
    expect(cell).to_be_visible()
    expect(cell).to_contain_text("unended replies: ")
    expect(page.locator('#inst-rows tr.inst-row[data-name="hang"]')).to_have_attribute("data-state", "slow")
