"""A second SIGTERM while a server stops must not cut its stop short.

``logmesh logs --workers N`` runs under a supervisor that forwards SIGTERM to
each worker, and a user's ``kill`` of the process group reaches each worker as
well: every worker gets two. Cancelling the stop half-way skipped the writer's
last flush and seal and the metrics' last publish (found in issue 16).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.procs import Procs


@pytest.mark.parametrize("gap", [0.0, 0.02, 0.05, 0.1])
def test_a_second_sigterm_while_stopping_is_ignored(tmp_path, gap):
    procs = Procs(tmp_path)
    try:
        proc, _, _ = procs.logs(tmp_path / "data")
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(gap)
        if proc.popen.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        assert proc.popen.wait(timeout=20) == 0, proc.log_text()[-2000:]
        assert "stopped;" in proc.log_text(), proc.log_text()[-2000:]
    finally:
        procs.close()
