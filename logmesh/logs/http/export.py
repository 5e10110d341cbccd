"""``GET /api/v1/export``: the events of a search as a file, NDJSON or CSV, streamed.

The web UI's "Export" and any script: the same ``q``, ``from``, ``to`` and ``order`` as
/api/v1/search, at most ``limit`` events (default DEFAULT_ROWS, at most MAX_ROWS), read a page
at a time (each page a query of its own through QueryAPI.call, so an export waits for a
query slot like any search and never holds one while the client reads slowly). The first
page is read before the answer starts, so a bad query is still a 400 with its message.

CSV has the ``columns`` asked for (default DEFAULT_COLUMNS), ``@timestamp`` as ISO 8601 UTC,
objects as JSON, and is safe to open in a spreadsheet: a text cell that starts with
``= + - @``, a tab or a carriage return gets a leading ``'`` (OWASP's advice against formula
injection); numbers stay numbers. The file's name comes from ``filename``, reduced to
letters, digits, ``.``, ``-`` and ``_`` (never a quote or a path).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from ..event import FIELD_TYPES
from ..query.errors import QueryTimeout
from ..query.timerange import now_ms
from .params import (
    DEADLINE,
    BadRequest,
    int_param,
    order_param,
    parameters,
    query_param,
    range_param,
)
from .slots import Busy

log = logging.getLogger("logmesh.logs.api")

DEFAULT_ROWS = 10_000
MAX_ROWS = 1_000_000
PAGE_ROWS = 5_000  # events per engine call (at most the service's max rows per page)
# Each page's query reads its whole first time slice (plan.slices), 250k stored rows for a
# search: a page of 5,000 then read 50x its rows, 73 µs an exported event of 200k in all
# (docs/benchmarks.md, "Export of a big search"). A slice of a few pages' rows reads ~4x.
SLICE_PAGES = 4
MAX_COLUMNS = 100
DEFAULT_COLUMNS = ("@timestamp", "service.name", "log.level", "http.request.method", "url.path",
                   "http.response.status_code", "trace.id", "message")
FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(raw: str | None, fmt: str, now: float) -> str:
    """A download name that is only [A-Za-z0-9._-], ends in .ndjson/.csv, never starts with a dot."""
    stem = _UNSAFE_NAME.sub("-", (raw or "").rsplit(".", 1)[0] if raw and raw.lower().endswith(
        (".csv", ".ndjson")) else raw or "").strip(".-")[:80]
    if not stem:
        stem = "logmesh-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stem}.{fmt}"


def field_value(ev: dict, name: str) -> Any:
    """A column's value: the event's field, or a key inside params/labels (``labels.event.duration_ms``
    as one key when there is one, else ``params.a.b`` by the path)."""
    if name in ev:
        return ev[name]
    head, _, rest = name.partition(".")
    value: Any = ev.get(head)
    if not rest or not isinstance(value, dict):
        return None
    if rest in value:
        return value[rest]
    for part in rest.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def csv_cell(name: str, value: Any) -> str | int | float:
    if value is None:
        return ""
    if name in ("@timestamp", "received_at") and isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_rows(columns: list[str], events: Iterable[dict]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(
        [csv_cell(c, field_value(ev, c)) for c in columns] for ev in events)
    return out.getvalue().encode()


def csv_header(columns: list[str]) -> bytes:
    """The column names; a made-up name that starts like a formula is defused as a cell is."""
    return _row(["'" + c if c.startswith(FORMULA_START) and c not in FIELD_TYPES
                                           else c for c in columns])


def _row(cells: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue().encode()


def columns_param(request: web.Request) -> list[str]:
    raw = parameters(request).get("columns")
    if not raw:
        return list(DEFAULT_COLUMNS)
    cols = [c.strip() for c in raw.split(",") if c.strip()]
    if not cols or len(cols) > MAX_COLUMNS or any(len(c) > 256 for c in cols):
        raise BadRequest(f"columns must be 1 to {MAX_COLUMNS} field names separated by commas, "
                         "e.g. columns=@timestamp,service.name,message")
    return cols


class Export:
    """The export handler over a QueryAPI's engine and query admission (``call``)."""

    def __init__(self, api: Any, clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.clock = clock

    async def handle(self, request: web.Request) -> web.StreamResponse:
        fmt = parameters(request).get("format") or "ndjson"
        if fmt not in FORMATS:
            raise BadRequest(f"format must be ndjson or csv, got {fmt[:40]!r}")
        node = query_param(request)
        start, end = range_param(request, self.clock)
        limit = int_param(request, "limit", DEFAULT_ROWS, 1, MAX_ROWS)
        order = order_param(request)
        columns = columns_param(request) if fmt == "csv" else []
        now = now_ms(self.clock)
        page = min(PAGE_ROWS, self.api.max_rows)
        engine = self.api.engine

        async def read(cursor: str | None, want: int) -> tuple[list[dict], str | None]:
            if self.api.timeout:  # each page is a query of its own, with its own deadline
                request[DEADLINE] = time.monotonic() + self.api.timeout
            return await self.api.call(request, engine.search, node, start, end, limit=want,
                                       order=order, cursor=cursor, now=now,
                                       slice_rows=SLICE_PAGES * page)

        events, cursor = await read(None, min(page, limit))  # a failure here is still a proper answer
        name = safe_filename(parameters(request).get("filename"), fmt, self.clock())
        resp = web.StreamResponse(headers={
            "Content-Type": f"{FORMATS[fmt]}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
        await resp.prepare(request)
        if fmt == "csv":
            await resp.write(csv_header(columns))
        sent = 0
        try:
            while True:
                if events:
                    await resp.write(csv_rows(columns, events) if fmt == "csv"
                                     else b"".join(orjson.dumps(e) + b"\n" for e in events))
                    sent += len(events)
                if cursor is None or sent >= limit:
                    break
                events, cursor = await read(cursor, min(page, limit - sent))
        except (QueryTimeout, Busy) as exc:  # a page past its deadline: said in one line, as
            # a 503 of a search is (a traceback for it told an operator nothing more)
            log.warning("export stopped after %d events: a page ran out of time (%s); each page "
                        "has --query-timeout (%g s): export a narrower query or range, or raise "
                        "--query-timeout", sent, getattr(exc, "message", exc), self.api.timeout or 0)
            if request.transport is not None:
                request.transport.close()
            return resp
        except Exception:  # the status is sent: an unfinished chunked body tells the client
            log.warning("export stopped after %d events", sent, exc_info=True)
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write_eof()
        return resp
