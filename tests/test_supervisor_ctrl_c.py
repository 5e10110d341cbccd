"""Ctrl-C at ``logmesh up`` while its children start, tried from outside with real processes.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the supervisor and
every child. Found by hand: pressed while the children were still importing, each child
printed a KeyboardInterrupt traceback (a "Fatal Python error: init_import_site" when it hit
the interpreter's own start-up) or click's "Aborted!", though the supervisor stops them
itself (SIGTERM, then SIGKILL after a grace). Children now ignore the terminal's SIGINT
until they install their own handler; the supervisor's SIGTERM stops them quietly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support.procs import ROOT
from tests.support.waiting import wait_for
from tests.test_up import free_offset


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_ctrl_c_while_the_children_start_stops_all_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMESH_")}
    env["PYTHONPATH"] = str(ROOT)  # this tree's code, not the installed one
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "logmesh", "up", "--no-traffic",
                                 "--port-offset", str(free_offset()), "--data-dir",
                                 str(tmp_path / "data")], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                                start_new_session=True)
    try:
        wait_for(lambda: "started purchases" in log_path.read_text(), 60, "every child started")
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
        assert proc.wait(60) == 0
        wait_for(lambda: not group_alive(proc.pid), 30, "every child gone")
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    text = log_path.read_text()
    for noise in ("Traceback", "KeyboardInterrupt", "Aborted!", "Fatal Python error"):
        assert noise not in text, text[-4000:]
    assert "stopped" in text, text[-2000:]
