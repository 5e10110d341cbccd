"""A data directory the service cannot have, found by trying it from outside.

A second ``logmesh logs`` on a data directory in use crashed with a traceback, and its
supervisor restarted it every 10 s for ever: whenever the first one's worker died, the
second could take its stream over. A data directory that cannot be made (a read-only
disk, a path that is a file) was a traceback too. Each is now one line saying why; the
second instance gives up (the first keeps serving), the unwritable directory exits as a
busy port does.
"""

from __future__ import annotations

import urllib.request

from tests.support.procs import HOST, wait_for


def test_a_second_service_on_a_data_dir_in_use_is_refused_and_gives_up(procs, tmp_path):
    data = tmp_path / "data"
    _, _, http_port = procs.logs(data)
    second = procs.start("second", "logs", "--standalone", "--port", "0", "--http-port", "0",
                         "--data-dir", str(data))  # supervised, as a user starts it
    code = wait_for(lambda: second.popen.poll(), 90, "the second service to give up")
    assert code != 0
    text = second.log_text()
    assert "in use by another process" in text and "Traceback" not in text, text[-3000:]
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=10) as resp:
        assert resp.status == 200


def test_a_store_that_cannot_be_made_is_one_line_not_a_traceback(procs, tmp_path):
    """``segments`` a file: the store's directory cannot be made, as on a read-only disk
    (chmod does not stop root, who runs CI)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "segments").write_text("")
    proc = procs.start("logs", "logs", "--standalone", "--port", "0", "--http-port", "0",
                       "--data-dir", str(data), "--no-supervise")
    code = wait_for(lambda: proc.popen.poll(), 60, "the service to exit")
    assert code == 3
    text = proc.log_text()
    assert "Traceback" not in text and "error:" in text and "segments" in text, text[-3000:]
