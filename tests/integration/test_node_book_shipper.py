"""Issue #4, acceptance 2: a Node service's writeLog, as in the chapter, is stored in full.

``node/book_log_writer.js`` ships 60 log packets the chapter's way to a real
logs process (``--text-log`` on): some split across writes (also between the
two bytes of ``¶`` and inside a Korean character), some several to a write,
some byte by byte, some with ``¶`` inside strings sent escaped (``\\u00b6``).
All are stored with their text verbatim, the Node socket received zero bytes
(the book's services drop the log connection on any data), and the text log
has the chapter's tab-separated line for each.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pytest

from tests.support.procs import HOST, store_events

SCRIPT = Path(__file__).parent / "node" / "book_log_writer.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")


def test_node_write_log_packets_are_all_stored_and_never_answered(procs, tmp_path):
    data = tmp_path / "data"
    text_log = tmp_path / "text" / "log.txt"
    _, port, _ = procs.logs(data, "--text-log", str(text_log))
    run = uuid.uuid4().hex[:8]
    out = subprocess.run([NODE, str(SCRIPT), HOST, str(port), run], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    report = orjson.loads(out.stdout.strip().splitlines()[-1])
    sent: list[str] = report["sent"]
    assert len(sent) == 60
    assert report["received"] == 0, "the logs service must never send a byte to a plain book client"
    assert any("¶" in t for t in sent) and any("\\u00b6" in t for t in sent)

    def ours() -> list[dict]:
        return [e for e in store_events(data) if run in (e.get("message") or "")]

    deadline = time.monotonic() + 10
    while len(ours()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    events = ours()
    assert [e["message"] for e in events] == sent, "every packet, verbatim, in order"
    for text, event in zip(sent, events, strict=True):
        assert event["source.address"] == "127.0.0.1"
        if text.startswith("{"):
            request = orjson.loads(text)
            assert event["url.path"] == request["uri"]
            assert event["http.request.method"] == request["method"]
            assert event["params"] == request["params"]
            assert event["trace.id"] == request["trace.id"]
            assert event["key"] == str(request["params"]["key"])
    ports = {e["source.port"] for e in events}
    assert len(ports) == 1, "one connection"

    # --text-log: the chapter's line per packet, in files rotated by the hour
    files = list(text_log.parent.glob("log-*.txt"))
    assert files and all(re.fullmatch(r"log-\d{10}\.txt", f.name) for f in files), files
    text_lines = [line for f in sorted(files) for line in f.read_text("utf-8").splitlines()]
    ours_lines = [line for line in text_lines if run in line]
    assert len(ours_lines) == len(sent)
    (port_seen,) = ports
    for text, line in zip(sent, ours_lines, strict=True):
        date, address, remote_port, packet = line.split("\t", 3)
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", date), date  # toLocaleDateString, en-US
        assert address == "127.0.0.1" and int(remote_port) == port_seen
        assert orjson.loads(packet) == {"uri": "/logs", "method": "POST", "key": 0, "params": text}
