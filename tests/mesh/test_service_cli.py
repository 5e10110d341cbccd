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


@pytest.mark.parametrize("printing", [("--no-ship", "--print-requests"), ("--ship-mode", "book")],
                         ids=["print-requests", "book-shipper-with-no-logs-node"])
async def test_printed_requests_cannot_forge_the_terminal(procs, tmp_path, printing):
    """--print-requests (and a book-mode shipper with no logs service known) printed the raw
    frame: valid JSON carries C1 controls (U+009B is a CSI to many terminals: ``\\x9b2J``
    clears the screen) and bidi overrides (U+202E shows what follows reversed) unescaped inside
    its strings, so a request could forge the reader's view. They are shown as signs of
    themselves (logmesh.terminal), the frame's text otherwise kept."""
    _, dist = procs.distributor()
    proc, port = procs.service("goods", dist, tmp_path / "data", *printing)
    peer = await Peer.connect(port)
    try:
        # the frame as JSON.stringify sends it: the characters themselves, not \u escapes
        raw = ('{"uri":"/goods","method":"POST","key":1,"params":'
               '{"name":"forged-\u009b2J-\u202etxt.exe-end","key":1}}').encode()
        peer.send_raw(raw + "¶".encode())
        reply = await peer.recv(timeout=5.0)
    finally:
        await peer.close()
    assert reply["errorcode"] == 0
    line = proc.wait_line(r"forged-.*-end", timeout=5.0)[0].group(0)
    assert line == "forged-\\x9b2J-\\u202etxt.exe-end"
