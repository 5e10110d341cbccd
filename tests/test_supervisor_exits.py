"""A supervised child whose exit says a restart fails the same way (2: its options were
refused; 78: its data directory is another process's) is started once: the supervisor stops
its siblings and exits with that code, instead of printing the same error for ever while
`logmesh up` runs on without that part (seen with LOGMESH_ELASTICSEARCH set and no client
libraries installed)."""

from __future__ import annotations

import sys
import threading

import pytest

from logmesh.supervisor import ChildSpec, Supervisor

GUARD = 30.0  # seconds: a supervisor that restarts for ever is stopped here, and the test fails


@pytest.mark.parametrize("code", [2, 78])
def test_a_child_that_cannot_start_stops_the_supervisor_with_its_code(code: int) -> None:
    sup = Supervisor([
        ChildSpec("sibling", [sys.executable, "-c", "import time; time.sleep(60)"]),
        ChildSpec("refused", [sys.executable, "-c", f"import sys; sys.exit({code})"]),
    ])
    guard = threading.Timer(GUARD, sup.request_stop)
    guard.start()
    try:
        assert sup.run() == code
    finally:
        guard.cancel()
    refused = sup.children[1]
    assert refused.restarts == 0
    sibling = sup.children[0].proc
    assert sibling is not None and sibling.poll() is not None  # stopped with the supervisor


def test_a_child_that_crashes_otherwise_is_restarted() -> None:
    sup = Supervisor([ChildSpec("crash", [sys.executable, "-c", "import sys; sys.exit(1)"])])
    done = threading.Event()

    def stop_after_a_restart() -> None:
        while not done.wait(0.05):
            if sup.children[0].restarts >= 1:
                break
        sup.request_stop()

    watcher = threading.Thread(target=stop_after_a_restart)
    watcher.start()
    guard = threading.Timer(GUARD, sup.request_stop)
    guard.start()
    try:
        sup.run()
    finally:
        done.set()
        guard.cancel()
        watcher.join()
    assert sup.children[0].restarts >= 1
