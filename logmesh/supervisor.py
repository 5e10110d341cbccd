"""Keep processes alive, like node's ``cluster`` in the chapter.

The parent starts each child, starts a new one within a second when it dies
(backing off when a child keeps dying young), and on SIGTERM/SIGINT stops
them all: SIGTERM first, SIGKILL for any still running after the grace time.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger("logmesh.supervisor")

RESTART_DELAY = 0.2  # first restart after a crash; well under the 1 s the book's cluster gives
MAX_BACKOFF = 10.0  # a child that keeps dying young waits at most this long
STABLE_AFTER = 5.0  # a child that lived this long resets its backoff
SHUTDOWN_GRACE = 10.0  # seconds between SIGTERM and SIGKILL at shutdown
POLL = 0.05
# A child exiting with one of these will fail the same way again: not restarted; the
# supervisor stops the others and exits so. 78 (EX_CONFIG): its data directory is another
# process's. 2: click refused its options (a bad value in the environment, such as
# LOGMESH_LOGS_RETENTION=7, or --elasticsearch without the client libraries); its argv and
# environment are the same at every restart, so it used to print the same error for ever
# while `logmesh up` ran on without that part.
EXIT_NO_RESTART = 78
EXIT_USAGE = 2
NO_RESTART = (EXIT_NO_RESTART, EXIT_USAGE)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen | None = None
    started: float = 0.0
    delay: float = RESTART_DELAY
    restart_at: float = 0.0
    restarts: int = 0
    history: list[int] = field(default_factory=list)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM us when the supervisor dies, even by SIGKILL.

    Without it a killed supervisor leaves its children running, holding the
    ports its replacement needs (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op).
    The terminal's Ctrl-C (SIGINT to the whole group) is ignored until the child installs
    its own handler: the supervisor stops its children itself, and a child still starting
    printed a KeyboardInterrupt traceback, or "Fatal Python error" in the interpreter's.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def busy_port(host: str, ports: Iterable[tuple[str, int]]) -> tuple[str, int, str] | None:
    """The first ``(name, port)`` that cannot be bound on ``host`` now, with why; else None.

    A child that cannot bind dies and is restarted for ever, and a child that finds the port
    of another mesh's part talks to that mesh; so a supervisor of fixed ports checks first.
    The probe sets SO_REUSEADDR like the servers do: a port in TIME_WAIT is free to them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for name, port in ports:
        try:
            with socket.create_server((host, port), family=family):
                pass
        except OSError as exc:
            return name, port, os.strerror(exc.errno) if exc.errno else str(exc)
    return None


def logmesh_argv(*args: str) -> list[str]:
    """The command line that runs ``logmesh ARGS`` with this interpreter."""
    return [sys.executable, "-m", "logmesh", *args]


class Supervisor:
    def __init__(self, specs: list[ChildSpec]) -> None:
        self.children = [_Child(s) for s in specs]
        self._stop = False

    def _spawn(self, child: _Child) -> None:
        env = {**os.environ, **(child.spec.env or {})}
        child.proc = subprocess.Popen(child.spec.argv, env=env, preexec_fn=_die_with_parent)
        child.started = time.monotonic()
        log.info("started %s (pid %d)", child.spec.name, child.proc.pid)

    def request_stop(self, signum: int = 0, frame: object = None) -> None:
        self._stop = True

    def run(self) -> int:
        """Supervise until signalled; returns the exit code for the parent."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        for child in self.children:
            self._spawn(child)
        while not self._stop:
            now = time.monotonic()
            for child in self.children:
                if child.proc is not None:
                    code = child.proc.poll()
                    if code is None:
                        continue
                    if code in NO_RESTART:
                        log.error("%s cannot start (exit %d, its error is above); not restarting "
                                  "it, stopping", child.spec.name, code)
                        child.proc = None
                        self.shutdown()
                        return code
                    lived = now - child.started
                    young = lived < STABLE_AFTER and child.restarts > 0
                    child.delay = min(child.delay * 2, MAX_BACKOFF) if young else RESTART_DELAY
                    child.restart_at = now + child.delay
                    child.proc = None
                    child.restarts += 1
                    log.warning("%s died (exit %s) after %.1fs; restarting in %.1fs",
                                child.spec.name, code, lived, child.delay)
                elif now >= child.restart_at:
                    self._spawn(child)
            time.sleep(POLL)
        return self.shutdown()

    def shutdown(self) -> int:
        # 1. ask every child to stop; 2. wait up to the grace time; 3. kill the rest.
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in %.0fs; killing it", proc.pid, SHUTDOWN_GRACE)
                proc.kill()
                proc.wait()
        log.info("stopped %d process(es)", len(running))
        return 0
