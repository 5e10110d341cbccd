"""Terminal control sequences in log text, printed by ``logmesh query``, ``tail`` and ``stats``:
tried from outside with a real logs service, into a pipe and into a terminal (a pty).

Found by hand: log text comes from anyone who can send a request (a URL path through the
gateway, an NDJSON line), and the commands printed it raw. In a terminal an ESC sequence in a
message cleared the screen (``ESC[2J``), set the window title or, on terminals that allow it,
the clipboard (OSC 52); a CR overwrote the row with other text; U+009B is a CSI to many
terminals; a right-to-left override reordered the rest of the line. Into a pipe click strips
CSI sequences only: OSC, BEL and CR went through. Now each is shown as a sign of itself (␛, ␍,
\\x9b, \\u202e) and ``--json`` stays the exact text, escaped by JSON.
"""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import time

import pytest

from tests.support.procs import HOST, ROOT, http_json, post_ndjson, run_logmesh, wait_for

pytestmark = pytest.mark.slow  # real processes

MESSAGE = "termtag ansi \x1b[2J\x1b]52;c;cHduZWQ=\x07RED\rFAKE \x9b31m \u202eevil\x00end"
SERVICE = "s\x1b]0;t\x07"
PATH = "/p\x1b[31m\r"
RAW = ["\x1b[2J", "\x1b]52", "\x1b]0;", "\x07", "\rFAKE", "\x1b[31m\r", "\x9b", "\u202e", "\x00"]


def in_a_terminal(*args: str, bound: float = 60.0) -> str:
    """``python -m logmesh ARGS`` with its stdout a terminal (a pty): what it wrote there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMESH_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200", TERM="xterm")
    main, sub = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "logmesh", *args], stdin=subprocess.DEVNULL, stdout=sub,
                            stderr=subprocess.PIPE, env=env)
    os.close(sub)
    out = b""
    deadline = time.monotonic() + bound
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(max(deadline - time.monotonic(), 1)) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(10)
        os.close(main)
    return out.decode("utf-8", "replace")


def test_control_sequences_in_log_text_reach_no_terminal(procs, tmp_path):
    _, _, http_port = procs.logs(tmp_path / "logs")
    now = int(time.time() * 1000)
    assert post_ndjson(http_port, [{"@timestamp": now, "message": MESSAGE, "service.name": SERVICE,
                                    "url.path": PATH, "log.level": "info"}])["accepted"] == 1
    wait_for(lambda: http_json(http_port, "/api/v1/histogram", q="termtag",
                               **{"from": "now-1h"})["total"] == 1, 60, "the event searchable")
    url = f"http://{HOST}:{http_port}"
    outputs = {
        "query, pipe": run_logmesh(tmp_path, "query", "termtag", "--since", "1h", "--url", url).stdout,
        "query, terminal": in_a_terminal("query", "termtag", "--since", "1h", "--url", url),
        "tail, terminal": in_a_terminal("tail", "-n", "1", "termtag", "--url", url),
        "stats, terminal": in_a_terminal("stats", "--url", url),
    }
    for name, out in outputs.items():
        for raw in RAW:
            assert raw not in out, (name, raw, out)
    for name in ("query, pipe", "query, terminal", "tail, terminal"):
        out = outputs[name]
        assert "␛[2J␛]52;c;cHduZWQ=␇RED␍FAKE \\x9b31m \\u202eevil␀end" in out, (name, out)
        assert "/p␛[31m␍" in out and "s␛]0;t␇" in out, (name, out)
    assert "s␛]0;t␇" in outputs["stats, terminal"]
    # --json is for programs: the exact text, which JSON escapes
    lines = run_logmesh(tmp_path, "query", "termtag", "--since", "1h", "--json", "--url", url).stdout.splitlines()
    ev = json.loads(lines[0])
    assert (ev["message"], ev["service.name"], ev["url.path"]) == (MESSAGE, SERVICE, PATH)


def test_a_peers_text_in_a_process_log_reaches_no_terminal(procs):
    """A node registered with an ESC sequence and a newline in its name: the distributor logs the
    name (``node registered: ...``) as signs, on one line; it was written raw, into the terminal
    of whoever ran ``make run``."""
    proc, port = procs.distributor()
    name = "n\x1b]0;pwn\x07\x1b[2J\nFAKE 2026 logmesh.distributor INFO all fine"
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(json.dumps({"uri": "/distributes", "method": "POST", "key": 0,
                                 "params": {"port": 9999, "name": name, "urls": []}}).encode() + "¶".encode())
        proc.wait_line("node registered: n")
    text = proc.log_text()
    assert "node registered: n␛]0;pwn␇␛[2J⏎FAKE 2026" in text, text
    for raw in ("\x1b", "\x07", "\nFAKE"):
        assert raw not in text, (raw, text)
