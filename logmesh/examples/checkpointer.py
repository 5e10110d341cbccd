"""A SQLite WAL database's checkpoints in a thread of their own, off its writer's event loop.

SQLite checkpoints a WAL database inside the commit that takes the WAL past 1,000 pages
(``wal_autocheckpoint``): it syncs the WAL, copies its pages into the database file and syncs
that, 15-25 ms on this machine's disk, in the writer's event loop. Under a POST load that came
every ~0.2 s and stopped every request of the service for its length: the tail of goods' POSTs
in the mesh (p99.9 of a commit 16-17 ms, mesh10). Here the writer sets ``wal_autocheckpoint=0``
and this thread checkpoints (PASSIVE: it never waits for the writer, nor makes it wait) with
its own connection, once ``every`` commits (looked at each ``period`` s). Python's sqlite3 lets
go of the GIL while SQLite works, so the loop runs on while the disk syncs.

A PASSIVE checkpoint racing a writer that never stops never lets the WAL start again from its
beginning (it does only at a write that finds every frame copied), and the WAL file grows for as
long as the load lasts (mesh7: 90 MB in 20,000 commits). So once the WAL holds
``restart_frames`` frames the thread asks the writer to hold its writes (``hold``: the writer
calls :meth:`Checkpointer.quiet` once it has no transaction open), copies the few frames
written since its last pass, restarts the WAL itself with a write of its own (the database's
``user_version``, set to what it was: a write that finds every frame copied starts the WAL
again, and syncs its header, which in the writer's commit was one more sync in the loop),
and lets the writer go (``release``). Reads go on through the hold: it stops a service's
writes for a short checkpoint and a sync (a few ms) every ``restart_frames`` frames, and its
loop never.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

CHECKPOINT_PERIOD = 0.05  # s between looks at the writer's commit count (no SQLite call)
CHECKPOINT_COMMITS = 400  # a pass every 400 commits: goods' ~2.3 frames a commit of 8 POSTs,
# so ~1,000 pages a pass as SQLite's own wal_autocheckpoint (and as few syncs)
RESTART_FRAMES = 10_000  # ~40 MB of WAL (4 KiB pages) before the writer holds for a restart


class Checkpointer:
    """Checkpoints ``path`` from a thread while ``commits()`` moves; see the module's text.

    ``hold`` and ``release`` are called in ``loop``; the writer answers ``hold`` by calling
    :meth:`quiet` (in the loop) when its open transaction, if any, is committed."""

    def __init__(self, path: Path, sync: str, loop: asyncio.AbstractEventLoop,
                 commits: Callable[[], int], hold: Callable[[], None],
                 release: Callable[[], None], *, period: float = CHECKPOINT_PERIOD,
                 every: int = CHECKPOINT_COMMITS, restart_frames: int = RESTART_FRAMES) -> None:
        self.path, self.sync, self.loop = path, sync, loop
        self._commits, self._hold, self._release = commits, hold, release
        self._seen = commits()  # read here, in the loop: the thread may start after a commit
        self.period, self.every, self.restart_frames = period, every, restart_frames
        self._restart_at = restart_frames  # doubled while another process keeps writing
        self.checkpoints = 0  # passes that copied frames (a test and the docs read them)
        self.restarts = 0  # holds asked of the writer (each restarts the WAL)
        self.errors = 0  # checkpoints SQLite refused (another process's, a full disk): retried
        self._stop = threading.Event()
        self._quiet = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {path.name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def quiet(self) -> None:
        """The writer holds: no transaction open, none begun until ``release``."""
        self._quiet.set()

    def close(self) -> None:
        """Stop the thread (after its pass, if one runs); a hold it asked for is not released
        here: the writer, closing, writes what it held itself."""
        self._stop.set()
        self._quiet.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        # timeout 0: the restart's write never waits for another process's writer (a worker of
        # the same file) while this one's writes are held; refused, the writer restarts the WAL
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            conn.execute(f"PRAGMA synchronous={self.sync.upper()}")  # the writer's syncs
            while not self._stop.wait(self.period):
                commits = self._commits()
                if commits - self._seen < self.every:
                    continue  # a pass syncs twice: as rarely as SQLite's own
                self._seen = commits
                frames, _ = self._checkpoint(conn)
                if frames >= self._restart_at and not self._restart(conn):
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One PASSIVE pass: the WAL's frames since it last restarted, and how many of them are
        in the database file now ((0, 0) when SQLite refused: another process checkpoints)."""
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            self.errors += 1
            return 0, 0
        self.checkpoints += 1
        return (0, 0) if busy else (frames, copied)

    def _restart(self, conn: sqlite3.Connection) -> bool:
        """Hold the writer for one last pass and the WAL's restart; False when the loop is gone
        (the service stopped)."""
        self._quiet.clear()
        if self._stop.is_set():  # close() set both, perhaps before the clear: no wait
            return False
        try:
            self.loop.call_soon_threadsafe(self._hold)
        except RuntimeError:  # the loop is closed
            return False
        self.restarts += 1
        self._quiet.wait()
        try:
            if not self._stop.is_set():
                frames, copied = self._checkpoint(conn)
                if frames and copied == frames:
                    self._restart_wal(conn)
                    self._restart_at = self.restart_frames
                else:  # another process writes the same file meanwhile: hold it less often
                    self._restart_at = max(self._restart_at, frames) * 2
        finally:
            try:
                self.loop.call_soon_threadsafe(self._release)
            except RuntimeError:
                return False
        return True

    def _restart_wal(self, conn: sqlite3.Connection) -> None:
        """A write of nothing new (page 1's ``user_version`` as it was): it finds the WAL all
        copied, so it writes from the WAL's start, and syncs the header, here."""
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute(f"PRAGMA user_version={int(version)}")
        except sqlite3.Error:
            self.errors += 1  # the writer's next commit restarts it then
