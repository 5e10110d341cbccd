"""A resource service: POST/GET/DELETE on one SQLite table.

The book used MariaDB; an embedded database file under the data directory
needs no server, and SQLite's own locking lets supervised restarts reopen it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..mesh.service import HandlerError, Service
from ..security import OPEN_MODE, ServerSecurity


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


class ResourceStore:
    def __init__(self, resource: Resource, path: Path) -> None:
        self.resource = resource
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        cols = ", ".join(f"{c} {t}" for c, t in resource.fields.items())
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {resource.name} "
                        f"(id INTEGER PRIMARY KEY AUTOINCREMENT, {cols}, "
                        "created_at TEXT DEFAULT CURRENT_TIMESTAMP)")
        self.db.row_factory = sqlite3.Row

    def insert(self, params: Any, packet: dict) -> dict:
        params = params if isinstance(params, dict) else {}
        missing = [f for f in self.resource.required if params.get(f) in (None, "")]
        if missing:
            raise HandlerError(f"missing field(s): {', '.join(missing)}", 400)
        values = {c: params.get(c) for c in self.resource.fields}
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        try:
            cur = self.db.execute(f"INSERT INTO {self.resource.name} ({cols}) VALUES ({marks})",
                                  [self._scalar(v) for v in values.values()])
        except sqlite3.Error as exc:
            raise HandlerError(f"cannot store {self.resource.name}: {exc}", 400) from None
        return {"id": cur.lastrowid}

    def select(self, params: Any, packet: dict) -> list[dict]:
        params = params if isinstance(params, dict) else {}
        if params.get("id") not in (None, ""):
            rows = self.db.execute(f"SELECT * FROM {self.resource.name} WHERE id = ?",
                                   [params["id"]])
        else:
            rows = self.db.execute(f"SELECT * FROM {self.resource.name} ORDER BY id")
        return [dict(r) for r in rows]

    def delete(self, params: Any, packet: dict) -> dict:
        params = params if isinstance(params, dict) else {}
        if params.get("id") in (None, ""):
            raise HandlerError("DELETE needs an id", 400)
        cur = self.db.execute(f"DELETE FROM {self.resource.name} WHERE id = ?", [params["id"]])
        return {"deleted": cur.rowcount}

    @staticmethod
    def _scalar(value: Any) -> Any:
        if isinstance(value, (dict, list)):
            raise HandlerError("field values must be scalars", 400)
        return value


def make_service(name: str, data_dir: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 distributor: tuple[str, int] | None = ("127.0.0.1", 9000),
                 security: ServerSecurity = OPEN_MODE) -> Service:
    if name not in RESOURCES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(RESOURCES)}")
    res = RESOURCES[name]
    store = ResourceStore(res, Path(data_dir) / f"{name}.db")
    path = f"/{name}"
    return Service(name, res.port if port is None else port,
                   {f"POST{path}": store.insert, f"GET{path}": store.select,
                    f"DELETE{path}": store.delete},
                   host=host, distributor=distributor, security=security)
