"""``logmesh service`` as a real process: what it prints with shipping off."""

from __future__ import annotations

import pytest

from tests.support.mesh import Peer


async def _post_one(port: int, marker: str) -> dict:
    peer = await Peer.connect(port)
    try:
        return await peer.request({"uri": "/goods", "method": "POST", "key": 1,
                                   "params": {"name": marker, "key": 1}}, timeout=5.0)
    finally:
        await peer.close()


@pytest.mark.parametrize("printing", [False, True])
async def test_no_ship_prints_requests_only_when_asked(procs, tmp_path, printing):
    """--no-ship printed every request packet to stdout, with no way to turn it off: a
    service under load spent its time writing to a terminal nobody reads."""
    _, dist = procs.distributor()
    extra = ["--print-requests"] if printing else []
    proc, port = procs.service("goods", dist, tmp_path / "data", "--no-ship", *extra)
    marker = f"marker-{printing}"
    reply = await _post_one(port, marker)
    assert reply["errorcode"] == 0
    if printing:
        proc.wait_line(marker, timeout=5.0)
    else:
        await _post_one(port, "second")  # the first request's print, if any, came before this reply
        assert marker not in proc.log_text()
