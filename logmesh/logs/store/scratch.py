"""A process's temporary files, kept in the data directory so a restart after a crash removes them.

The query engine writes each chunk of a live segment to a file for DuckDB to read, and
DuckDB spills a large query's intermediate results to disk. Those files used to live in a
``tempfile.mkdtemp()`` directory of ``/tmp`` (and DuckDB's spill in ``./.tmp`` of whatever
directory the service was started from), removed only by a clean close: every ``kill -9``,
OOM kill or power cut left one behind, and a machine here had 259 of them after months of
test runs. Now each process's are in ``scratch/<kind>-<pid>-<random>/`` of the data
directory, holding ``.lock`` under ``flock`` for as long as the process lives. Opening one
removes every other whose lock nobody holds and whose pid is not running (both: a pid
reused by another process keeps a dead one's directory until that process ends, never
longer; a live owner in another pid namespace keeps its lock). So whatever crashed, what
is left is removed by the next start, and at most one directory per running process is
ever there.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ...metrics import pid_running
from . import layout

log = logging.getLogger("logmesh.logs.store")

LOCK_NAME = ".lock"


class Scratch:
    """One process's scratch directory, ``path``; :meth:`close` removes it."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._fd: int | None = lock_fd

    @classmethod
    def open(cls, data_dir: Path, kind: str) -> Scratch:
        """A new scratch directory for ``kind`` (a word: ``query``), after removing the ones
        crashed processes left."""
        root = Path(data_dir) / layout.SCRATCH_DIR
        try:
            root.mkdir(parents=True, exist_ok=True)
            sweep(root)
            return cls(*_locked(Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=root))))
        except OSError as exc:  # a full disk (no room for a directory): reads must go on
            path = Path(tempfile.mkdtemp(prefix=f"logmesh-{kind}-{os.getpid()}-"))
            log.warning("cannot make a scratch directory in %s (%s); using %s, which a kill -9 "
                        "would leave behind", root, exc, path)
            return cls(*_locked(path))

    def close(self) -> None:
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)  # after the removal: a sweep never sees it unlocked and half gone
        self._fd = None


def _locked(path: Path) -> tuple[Path, int]:
    """``path`` (new) with its lock held; removed if the lock cannot be made."""
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        raise
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else holds it
    return path, fd


def sweep(root: Path) -> list[Path]:
    """Remove the directories of ``root`` left by processes that are gone; returns them."""
    removed = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        pid = _pid_of(entry.name)
        if pid is None or pid == os.getpid() or pid_running(pid) or not entry.is_dir(
                follow_symlinks=False):
            continue  # a name not ours, or a live process's (or a fresh one's, not locked yet)
        path = Path(entry.path)
        try:
            fd = os.open(path / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None  # crashed between making it and locking it
        except OSError:
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except BlockingIOError:
            continue  # held: its owner runs (another pid namespace)
        finally:
            if fd is not None:
                os.close(fd)
    if removed:
        log.info("removed %d scratch directories of processes that are gone: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed


def _pid_of(name: str) -> int | None:
    """``query-1234-ab_c9`` -> 1234."""
    parts = name.split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
