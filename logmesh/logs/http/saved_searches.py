"""Saved searches (docs/api.md): a named query with its time range, columns and stack-by field,
kept by the logs service in its data directory so a team shares them.

``GET /api/v1/saved-searches`` lists them (a read token); ``POST`` saves one and ``DELETE
/api/v1/saved-searches/{id}`` removes one (a write token: the method-based auth middleware
decides). Saving a name that exists replaces it and keeps its id.

They are one small JSON file, ``saved-searches.json`` (store/layout.py), replaced with
``fsio.write_atomic`` under an ``flock`` on a lock file beside it: with ``--workers N`` every
worker reads and writes the same file, and a change is read, applied and written by one
process at a time, so two saves at once never lose one. A file that cannot be read (damaged
by hand) is answered 500 and left as it is, never overwritten.
"""

from __future__ import annotations

import asyncio
import fcntl
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ...fsio import write_atomic
from ...security_http import json_error, json_response
from ..query import kql
from ..query.timerange import TimeRangeError, parse_range
from ..store.layout import SAVED_SEARCHES_FILE
from .params import MAX_QUERY_CHARS, BadRequest, read_small_body

MAX_SAVED = 1_000  # searches per data directory
MAX_NAME = 200  # characters of a name
MAX_COLUMNS = 50
MAX_FIELD = 256  # characters of a column's or stack-by field name (as histogram's by)
MAX_TIME = 200  # characters of from / to
KEYS = ("name", "q", "from", "to", "columns", "by")  # what a POST sets
# What GET lists besides: a listed search edited and posted back saves (they are not taken).
LISTED = ("id", "created_at", "updated_at")


class DamagedFile(Exception):
    """saved-searches.json is not what this module writes."""


def _text(obj: dict, name: str, limit: int, *, required: bool = False, default: str = "") -> str:
    value = obj.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip() if name == "name" else value
    if required and not value:
        raise BadRequest(f"{name} is required, e.g. {{\"name\": \"gateway 5xx\", \"q\": "
                         "\"service.name:gateway and http.response.status_code >= 500\"}")
    if len(value) > limit:
        raise BadRequest(f"{name} is {len(value)} characters long; at most {limit}")
    return value


def checked(obj: Any, clock: Callable[[], float] = time.time) -> dict:
    """A saved search from a POST's JSON body, each part checked as the search API checks it."""
    if not isinstance(obj, dict):
        raise BadRequest('the body must be a JSON object, e.g. {"name": "errors", "q": "log.level:error", '
                         '"from": "now-1h", "to": "now", "columns": ["service.name", "message"]}')
    unknown = [k for k in obj if k not in KEYS and k not in LISTED]
    if unknown:  # ignored, a misspelt "query" or "range" saved a search of everything
        raise BadRequest(f"unknown key{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(k[:MAX_FIELD]) for k in unknown[:10])}; "
                         f"the keys are {', '.join(KEYS)}")
    name = _text(obj, "name", MAX_NAME, required=True)
    q = _text(obj, "q", MAX_QUERY_CHARS)
    try:
        kql.parse(q)
    except kql.KQLSyntaxError as exc:
        raise BadRequest(f"bad query: {exc.message}", position=exc.position) from None
    start, end = _text(obj, "from", MAX_TIME, default="now-15m"), _text(obj, "to", MAX_TIME, default="now")
    try:
        parse_range(start, end, clock=clock)
    except TimeRangeError as exc:
        raise BadRequest(str(exc)) from None
    columns = obj.get("columns") or []
    if not isinstance(columns, list) or len(columns) > MAX_COLUMNS or not all(
            isinstance(c, str) and 0 < len(c) <= MAX_FIELD for c in columns):
        raise BadRequest(f"columns must be a list of at most {MAX_COLUMNS} field names "
                         f"(1 to {MAX_FIELD} characters each), e.g. [\"service.name\", \"message\"]")
    by = _text(obj, "by", MAX_FIELD)
    return {"name": name, "q": q, "from": start, "to": end, "columns": list(dict.fromkeys(columns)),
            "by": by}


class SavedSearches:
    """The data directory's saved searches: each change under the lock, written atomically."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / SAVED_SEARCHES_FILE
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.clock = clock

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield  # closing the file releases the lock

    def _read(self) -> list[dict]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DamagedFile(f"{self.path.name} is not JSON: {exc}") from None
        items = doc.get("saved_searches") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i and "name" in i for i in items):
            raise DamagedFile(f"{self.path.name} holds no list of saved searches")
        return items

    def _write(self, items: list[dict]) -> None:
        write_atomic(self.path, orjson.dumps({"version": 1, "saved_searches": items}, option=orjson.OPT_INDENT_2))

    def list(self) -> list[dict]:
        with self._locked():
            return sorted(self._read(), key=lambda i: str(i["name"]).lower())

    def save(self, search: dict) -> tuple[dict, bool]:
        """Store ``search`` (from :func:`checked`); a name that exists is replaced. (it, created)."""
        with self._locked():
            items = self._read()
            now = int(self.clock() * 1000)
            old = next((i for i in items if i["name"] == search["name"]), None)
            if old is None and len(items) >= MAX_SAVED:
                raise BadRequest(f"there are {len(items)} saved searches, the most kept: delete some first")
            entry = {"id": old["id"] if old else secrets.token_hex(8), **search,
                     "created_at": old.get("created_at", now) if old else now, "updated_at": now}
            items = [entry if i is old else i for i in items] if old else [*items, entry]
            self._write(items)
            return entry, old is None

    def delete(self, ident: str) -> bool:
        with self._locked():
            items = self._read()
            kept = [i for i in items if i["id"] != ident]
            if len(kept) == len(items):
                return False
            self._write(kept)
            return True


async def read_json_body(request: web.Request) -> Any:
    """The request's body as JSON, at most MAX_QUERY_BODY_BYTES (then PayloadTooLarge)."""
    body = await read_small_body(request)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body must be JSON: {exc}") from None


class SavedSearchAPI:
    """The handlers; http/query_api.py registers them (its wrapper counts and answers the 400s)."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.store = SavedSearches(data_dir, clock)
        self.clock = clock

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)  # flock and fsync: never on the event loop

    async def list(self, request: web.Request) -> web.Response:
        try:
            return json_response({"saved_searches": await self._run(self.store.list)})
        except DamagedFile as exc:
            return json_error(f"the saved searches cannot be read: {exc}; fix or remove it", 500)

    async def save(self, request: web.Request) -> web.Response:
        search = checked(await read_json_body(request), self.clock)
        try:
            entry, created = await self._run(self.store.save, search)
        except DamagedFile as exc:
            return json_error(f"the saved searches cannot be read: {exc}; fix or remove it", 500)
        return json_response({"saved_search": entry}, 201 if created else 200)

    async def delete(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        if not (0 < len(ident) <= 64):
            raise BadRequest("id must be a saved search's id, as GET /api/v1/saved-searches lists it")
        try:
            gone = await self._run(self.store.delete, ident)
        except DamagedFile as exc:
            return json_error(f"the saved searches cannot be read: {exc}; fix or remove it", 500)
        if not gone:
            return json_error(f"no saved search with id {ident[:64]!r}", 404)
        return json_response({"deleted": ident})
