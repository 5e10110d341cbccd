"""A resource service: POST/GET/DELETE on one SQLite table.

The book used MariaDB; an embedded database file under the data directory
needs no server, and SQLite's own locking lets supervised restarts reopen it.

Writes are committed in groups: every POST and DELETE of one turn of the event
loop runs in one transaction, committed at the end of the turn, and each is
answered only once that commit returned, from the commit's own call (a
``service.Later`` each, not a Future whose callback answered a turn later), the group's
replies sent in that call too (``service.settle_group``), not at the end of the next turn.
With ``sync="normal"`` (WAL, ``synchronous=NORMAL``) a commit is in the WAL
file when it is answered: it
survives the service crashing or being killed, not the machine losing power
(the checkpoint syncs it later); ``sync="full"`` fsyncs the WAL at each commit,
one fsync per group instead of per request. Reads use a connection of their
own, so a GET never sees a write that was not committed (and answered) yet. A GET of the
whole table is answered from the rows it read last while SQLite's ``data_version`` says no
connection (of this process or another worker's) committed since: a third of the cost of the
query and the rows' dicts. ``data_version`` itself is asked once a turn of the loop, not per GET
(a SQLite statement: ~10% of goods' samples on GET): the GETs of one turn read as of its start.

The WAL is checkpointed by a thread of its own (``checkpointer.Checkpointer``), never inside a
commit in the loop: SQLite's own checkpoint there (every 1,000 pages, two syncs) stopped every
request for 15-25 ms a few times a second under POSTs. When the WAL must start again from its
beginning the thread asks the store to hold its writes for one short checkpoint: the writes that
come meanwhile wait in ``_held``, unrun and unseen by any GET, and are run and committed (then
answered) when it lets go. Durability is the commits': a checkpoint copies committed pages only.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..mesh.service import HandlerError, Later, Service, settle_group
from ..security import OPEN_MODE, ServerSecurity
from .checkpointer import CHECKPOINT_COMMITS, CHECKPOINT_PERIOD, RESTART_FRAMES, Checkpointer


@dataclass(frozen=True)
class Resource:
    name: str
    port: int
    fields: dict[str, str]  # column -> SQLite type
    required: tuple[str, ...]


RESOURCES = {
    "goods": Resource("goods", 9010, {"name": "TEXT", "category": "TEXT", "price": "REAL",
                                      "description": "TEXT"}, ("name",)),
    "members": Resource("members", 9020, {"username": "TEXT", "email": "TEXT"}, ("username",)),
    "purchases": Resource("purchases", 9030, {"userid": "INTEGER", "goodsid": "INTEGER",
                                              "quantity": "INTEGER"}, ("userid", "goodsid")),
}


SYNC_MODES = ("normal", "full")


class ResourceStore:
    def __init__(self, resource: Resource, path: Path, *, sync: str = "normal",
                 checkpoint_period: float = CHECKPOINT_PERIOD,
                 checkpoint_commits: int = CHECKPOINT_COMMITS,
                 restart_frames: int = RESTART_FRAMES) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        self.resource = resource
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.sync = path, sync
        self.writer = sqlite3.connect(path, isolation_level=None)
        self.writer.execute("PRAGMA journal_mode=WAL")
        self.writer.execute(f"PRAGMA synchronous={sync.upper()}")
        self.writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does it
        cols = ", ".join(f"{c} {t}" for c, t in resource.fields.items())
        self.writer.execute(f"CREATE TABLE IF NOT EXISTS {resource.name} "
                            f"(id INTEGER PRIMARY KEY AUTOINCREMENT, {cols}, "
                            "created_at TEXT DEFAULT CURRENT_TIMESTAMP)")
        self.db = sqlite3.connect(path, isolation_level=None)  # reads: committed rows only
        self.db.row_factory = sqlite3.Row
        self._group: list[tuple[Later, Any]] = []  # written, waiting for the commit
        self._columns = tuple(resource.fields)
        self._insert_sql = (f"INSERT INTO {resource.name} ({', '.join(self._columns)}) "
                            f"VALUES ({', '.join('?' for _ in self._columns)})")
        self.commits = 0  # groups committed (a test reads how writes were grouped)
        self._all: tuple[int, list[dict]] | None = None  # (data_version, every row) of a GET
        self._version: int | None = None  # data_version as read in this turn of the loop
        self._checkpoint_period, self._restart_frames = checkpoint_period, restart_frames
        self._checkpoint_commits = checkpoint_commits
        self.checkpointer: Checkpointer | None = None  # started by the first write, in the loop
        self._held: list[tuple[str, list, Callable[[sqlite3.Cursor], Any], Later]] | None = None
        self._closed = False

    def _write(self, sql: str, args: list, result: Callable[[sqlite3.Cursor], Any]) -> Later:
        """Run one write in this turn's transaction (opened by the first); answered with
        ``result(cursor)`` once ``_commit`` ran. While the checkpointer holds the writes it
        waits in ``_held``, run at the release (its error then answered through the Later)."""
        if self._held is not None:
            later = Later()
            self._held.append((sql, args, result, later))
            return later
        if not self.writer.in_transaction:
            self._begin()
        return self._later(result(self._execute(sql, args)))

    def _execute(self, sql: str, args: list) -> sqlite3.Cursor:
        """One write in the open transaction; a refused one is undone alone, a 400."""
        try:
            return self.writer.execute(sql, args)
        except sqlite3.Error as exc:  # this statement is undone; the group goes on
            raise HandlerError(f"cannot store {self.resource.name}: {exc}", 400) from None

    def _begin(self, commit_soon: bool = True) -> None:
        """BEGIN; the commit at the end of this turn (``commit_soon``: not when closing)."""
        if self.checkpointer is None:
            self.checkpointer = Checkpointer(
                self.path, self.sync, asyncio.get_running_loop(), lambda: self.commits,
                self._hold, self._release, period=self._checkpoint_period,
                every=self._checkpoint_commits, restart_frames=self._restart_frames)
            self.checkpointer.start()
        self.writer.execute("BEGIN")
        if commit_soon:
            asyncio.get_running_loop().call_soon(self._commit)

    def _later(self, result: Any) -> Later:
        later = Later()
        self._group.append((later, result))
        return later

    def _commit(self) -> None:
        if self._closed:
            return
        group, self._group = self._group, []
        try:
            self.writer.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.writer.in_transaction:
                self.writer.execute("ROLLBACK")
            # none of them was stored: each caller learns it
            settle_group(group, HandlerError(f"cannot store {self.resource.name}: {exc}", 500))
        else:
            self.commits += 1
            self._version = None  # our own commit changed it
            settle_group(group)  # answered now, the replies sent in the commit's turn
        if self._held is not None and self.checkpointer is not None:
            self.checkpointer.quiet()

    def _hold(self) -> None:
        """The checkpointer's ask (in the loop): write nothing until ``_release``."""
        if self._closed or self._held is not None:
            return
        self._held = []
        if not self.writer.in_transaction and self.checkpointer is not None:
            self.checkpointer.quiet()  # else the commit due this turn says it

    def _release(self, commit_soon: bool = True) -> None:
        """Run the writes held since ``_hold`` as one group (the WAL restarts at the first)."""
        held, self._held = self._held, None
        if not held or self._closed:
            return
        if not self.writer.in_transaction:
            self._begin(commit_soon)
        for sql, args, result, later in held:
            try:
                cur = self._execute(sql, args)
            except HandlerError as exc:
                settle_group([(later, None)], exc)
                continue
            self._group.append((later, result(cur)))

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()  # its pass ends first: a held write is run below
        self._release(commit_soon=False)
        if self.writer.in_transaction:
            self._commit()
        self._closed = True
        self.writer.close()
        self.db.close()

    def insert(self, params: Any, packet: dict) -> Later:
        params = params if isinstance(params, dict) else {}
        for field in self.resource.required:
            if params.get(field) in (None, ""):
                missing = [f for f in self.resource.required if params.get(f) in (None, "")]
                raise HandlerError(f"missing field(s): {', '.join(missing)}", 400)
        values = list(map(params.get, self._columns))  # no Python call per column
        for value in values:
            if isinstance(value, (dict, list)):
                raise HandlerError("field values must be scalars", 400)
        return self._write(self._insert_sql, values, _new_id)

    def select(self, params: Any, packet: dict) -> list[dict]:
        params = params if isinstance(params, dict) else {}
        if params.get("id") not in (None, ""):
            rows = self.db.execute(f"SELECT * FROM {self.resource.name} WHERE id = ?",
                                   [params["id"]])
            return [dict(r) for r in rows]
        version = self._version
        if version is None:
            version = self._version = self.db.execute("PRAGMA data_version").fetchone()[0]
            asyncio.get_running_loop().call_soon(self._forget_version)
        if self._all is not None and self._all[0] == version:
            return self._all[1]  # encoded, never changed: the same list serves every reply
        rows = self.db.execute(f"SELECT * FROM {self.resource.name} ORDER BY id")
        found = [dict(r) for r in rows]
        self._all = (version, found)
        return found

    def _forget_version(self) -> None:
        self._version = None

    def delete(self, params: Any, packet: dict) -> Later:
        params = params if isinstance(params, dict) else {}
        if params.get("id") in (None, ""):
            raise HandlerError("DELETE needs an id", 400)
        return self._write(f"DELETE FROM {self.resource.name} WHERE id = ?", [params["id"]],
                           _deleted)


def _new_id(cur: sqlite3.Cursor) -> dict:
    return {"id": cur.lastrowid}


def _deleted(cur: sqlite3.Cursor) -> dict:
    return {"deleted": cur.rowcount}


def make_service(name: str, data_dir: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 distributor: tuple[str, int] | None = ("127.0.0.1", 9000),
                 security: ServerSecurity = OPEN_MODE, sync: str = "normal",
                 reuse_port: bool = False, metrics_dir: Path | None = None) -> Service:
    if name not in RESOURCES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(RESOURCES)}")
    res = RESOURCES[name]
    store = ResourceStore(res, Path(data_dir) / f"{name}.db", sync=sync)
    path = f"/{name}"
    svc = Service(name, res.port if port is None else port,
                  {f"POST{path}": store.insert, f"GET{path}": store.select,
                   f"DELETE{path}": store.delete},
                  host=host, distributor=distributor, security=security, reuse_port=reuse_port,
                  metrics_dir=metrics_dir)
    svc.on_stop.append(store.close)
    return svc
