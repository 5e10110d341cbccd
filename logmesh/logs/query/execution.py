"""Running the engine's SQL on DuckDB: the connection, a cursor per thread, deadlines.

A query's deadline is a ``threading.Timer`` that interrupts the thread's own
cursor, so one query running out of time never stops another thread's. An
error that names a file of the store is told apart from a bad query: a file
removed under the query (compaction, retention) is :class:`FileGone`, one that
cannot be read is :class:`DamagedFile`; the engine handles both and asks again
(``Engine.with_deadline``).

DuckDB's own worker threads can run at a lower CPU priority than ingest
(``connect_at_nice``): on Linux a thread's nice value is inherited by the
threads it starts, so the connection is made from a short-lived thread at that
level.

The engine's counters (:class:`QueryCounters`) are prometheus-client counters of the
server's registry: queries and their time are counted here, the rest by the engine
and its view.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ... import metrics as prom
from ...metrics import Metrics, number
from ...protocol import loads_exact
from ..store import catalogue, layout
from ..store.columns import COLUMNS, SELECT_LIST, sql_str
from ..store.duck import duckdb
from .errors import DamagedFile, FileGone, QueryError, QueryTimeout

log = logging.getLogger("logmesh.logs.query")
CLOSE_WAIT_SECONDS = 5.0  # how long close waits for interrupted queries to let go

JSON_COLUMNS = {n for n, t in COLUMNS if t == "JSON"}
# The files of the store DuckDB reads: segments, Parquet files and their RED summaries (.red,
# Parquet too); a block index (.blocks.json) is read by store/blocks.py, never by DuckDB.
_QUOTED_PATH = re.compile(r"""['"]([^'"]+\.(?:parquet|ndjson|red))['"]""")
_QUOTED_PARQUET = re.compile(r"""['"]([^'"]+\.(?:parquet|red))['"]""")


@dataclass(frozen=True)
class QueryCounters:
    """The engine's counters (docs/metrics.md), each labelled with its worker."""

    queries: Any
    seconds: Any
    damaged_files: Any
    damaged_rows: Any
    live_bytes: Any

    @classmethod
    def make(cls, metrics: Metrics | None, worker: str) -> QueryCounters:
        """In ``metrics`` (the server's; a registry of their own if None)."""
        m = metrics or Metrics()

        def counter(name: str, help_text: str) -> Any:
            return m.counter(name, help_text, ["worker"]).labels(worker)

        return cls(
            queries=counter("logmesh_queries_total", "DuckDB queries run for the API."),
            seconds=counter("logmesh_query_seconds_total", "Time spent in DuckDB queries."),
            damaged_files=counter("logmesh_damaged_parquet_files_total",
                                  "Parquet files a query found unreadable, moved to quarantine/."),
            damaged_rows=counter("logmesh_damaged_parquet_events_total",
                                 "Events of those files (lost to search; the bytes are kept)."),
            live_bytes=counter("logmesh_live_bytes_loaded_total",
                               "NDJSON bytes loaded into the live table (segments not compacted yet)."))

    def read(self) -> dict[str, int | float]:
        """The counts, read from the metrics."""
        return {"queries": number(prom.value(self.queries)), "query_seconds": prom.value(self.seconds),
                "live_bytes_loaded": number(prom.value(self.live_bytes)),
                "damaged_files": number(prom.value(self.damaged_files)),
                "damaged_rows": number(prom.value(self.damaged_rows))}


def event_dict(names: list[str], row: Iterable[Any]) -> dict:
    """A result row as the API's event: no nulls, params and labels as objects."""
    ev: dict[str, Any] = {}
    for name, value in zip(names, row, strict=False):
        if value is None:
            continue
        if name in JSON_COLUMNS and isinstance(value, str):
            value = _json_value(value)
        ev[name] = value
    return ev


# What the event view shows of the events around the open one (its context and trace): a row
# each, of these fields, each text cut to BRIEF_CHARS. Those events came in full, so ten huge
# neighbours made the view fetch 1.9 MB to show ten lines (found from outside); opening one
# reads it in full.
BRIEF_FIELDS = ("seq", "@timestamp", "service.name", "http.request.method", "url.path",
                "log.level", "trace.id", "message")
BRIEF_CHARS = 300


def brief_event(ev: dict) -> dict:
    """``ev`` with only :data:`BRIEF_FIELDS`, each text cut to :data:`BRIEF_CHARS`; ``cut``
    names each text cut and its whole length in characters."""
    out: dict[str, Any] = {}
    for name in BRIEF_FIELDS:
        value = ev.get(name)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > BRIEF_CHARS:
            out.setdefault("cut", {})[name] = len(value)
            value = value[:BRIEF_CHARS]
        out[name] = value
    return out


# The search list's rows (GET /api/v1/search?brief=1): every field, as a row may show any of
# them as a column, but no text past BRIEF_CHARS: one 10 MB message among the newest 100 made
# a 10 MB answer to show one line of it (found from outside). The row opens the event whole.
_CUT_MEMBERS = ("params", "labels")  # objects whose members are columns (labels.KEY) apart


def cut_event(ev: dict) -> dict:
    """``ev`` as the search list's row shows it: each text past :data:`BRIEF_CHARS` cut to it,
    as is a member of ``params`` or ``labels`` (a nested one by its JSON text); ``cut`` names
    each by its field name (``labels.k``) with its whole length in characters, and
    ``cut_lines`` the lines of each of several (the row's "(+N lines)")."""
    out: dict[str, Any] = {}
    cut: dict[str, int] = {}
    lines: dict[str, int] = {}
    for name, value in ev.items():
        if name in _CUT_MEMBERS and isinstance(value, dict):
            out[name] = {key: _cut_value(f"{name}.{key}", v, cut, lines) for key, v in value.items()}
        else:
            out[name] = _cut_value(name, value, cut, lines)
    if cut:
        out["cut"] = cut
    if lines:
        out["cut_lines"] = lines
    return out


def _cut_value(name: str, value: Any, cut: dict[str, int], lines: dict[str, int]) -> Any:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list)) and value:
        text = orjson.dumps(value).decode()
    else:
        return value
    if len(text) <= BRIEF_CHARS:
        return value
    cut[name] = len(text)
    n = text_lines(text)
    if n > 1:
        lines[name] = n
    return text[:BRIEF_CHARS]


def text_lines(text: str) -> int:
    """How many lines the web UI's ``textLines`` (web/static/columns.js) reads in ``text``: real
    line breaks, else a trace's literal ``\\n``; a last empty line is not counted."""
    sep = "\n" if "\n" in text else "\\n" if "\\n" in text else None
    if sep is None:
        return 1
    n = text.count(sep) + 1
    return n - 1 if text.endswith(sep) else n


# orjson reads JSON nested 1024 levels deep but writes at most 254: a value read from an
# event's text and then put in an answer (a search page nests it 3 levels further) must be
# one it can write, or the answer fails (every search whose page held it answered 500).
_BRACKETS_SAFE = 200  # fewer opening brackets than this cannot nest too deep


def _json_value(text: str) -> Any:
    """``text`` parsed, or ``text`` itself when it is not JSON or nests too deep to be
    written back into an answer (then the stored text is what the event shows). An integer
    past 64 bits (a book packet's params are stored as sent) answers as its digits, a string,
    as ingest stores it (protocol.loads_exact), never as the float orjson makes of it."""
    try:
        value = loads_exact(text)
    except orjson.JSONDecodeError:
        return text
    if text.count("[") + text.count("{") >= _BRACKETS_SAFE:
        try:
            orjson.dumps([[[[value]]]])  # the answer's own levels around it, and one spare
        except orjson.JSONEncodeError:
            return text
    return value


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (Linux: nice is per thread; elsewhere
    setpriority would renice the whole process, so nothing is done). Never fails."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError:
        pass


def connect_at_nice(config: dict[str, Any], nice: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose worker threads, started by ``connect``, inherit ``nice``:
    connected from a short-lived thread at that level."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return duckdb.connect(":memory:", config=config)
    out: list[Any] = []

    def connect() -> None:
        lower_priority(nice)
        try:
            out.append(duckdb.connect(":memory:", config=config))
        except BaseException as exc:  # re-raised in the caller's thread
            out.append(exc)

    t = threading.Thread(target=connect, name="duckdb-connect")
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


class DuckDB:
    """The engine's in-memory database (its live table lives there too) and how its
    queries run; ``counters``: the engine's."""

    def __init__(self, data_dir: Path, config: dict[str, Any], nice: int,
                 counters: QueryCounters) -> None:
        self.data_dir = Path(data_dir)
        self.parquet_dir = self.data_dir / layout.PARQUET_DIR
        self.counters = counters
        self.nice = nice  # DuckDB's worker threads', and rare.py's reading threads'
        self.con = connect_at_nice(config, nice)
        self.con.execute("SET parquet_metadata_cache = true")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []  # every thread's, for close
        self._cursors_lock = threading.Lock()

    def close(self) -> None:
        """Interrupt the queries still running (a health check's, a search's) and close.
        DuckDB refuses to close a connection busy with a query; that refusal used to end the
        server's stop half way, before its sinks and metrics were closed."""
        with self._cursors_lock:
            cursors = list(self._cursors)
        for cur in cursors:
            cur.interrupt()
        end = time.monotonic() + CLOSE_WAIT_SECONDS
        while True:
            try:
                for cur in cursors:
                    cur.close()
                self.con.close()
                return
            except duckdb.ResourceInUseException:
                if time.monotonic() >= end:
                    log.warning("a query did not stop within %.0f s of being interrupted; the "
                                "database is left to the process's exit", CLOSE_WAIT_SECONDS)
                    return
                time.sleep(0.02)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self.con.cursor()
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    @contextmanager
    def deadline(self, deadline: float | None) -> Iterator[None]:
        """This thread's queries are interrupted at ``deadline`` (``time.monotonic()``) inside."""
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def run(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple]]:
        """(column names, rows); QueryTimeout past this thread's deadline, QueryError for SQL
        these events cannot answer, FileGone or DamagedFile for a file of the store."""
        t0 = time.perf_counter()
        cur = self.cursor()
        deadline = getattr(self._local, "deadline", None)
        timer = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QueryTimeout("the query ran out of time")
            timer = threading.Timer(left, cur.interrupt)
            timer.daemon = True
            timer.start()
        try:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout("the query ran out of time") from None
        except (duckdb.InvalidInputException, duckdb.ConversionException,
                duckdb.OutOfRangeException, duckdb.IOException) as exc:
            if self.gone_file(exc):
                raise FileGone(str(exc)) from None
            damaged = self.damaged(exc, sql)
            if damaged is not None:
                raise DamagedFile(damaged) from None
            raise QueryError(f"the query cannot be run on these events: {exc}") from None
        except duckdb.Error as exc:  # e.g. a damaged footer: "TProtocolException: Invalid data"
            damaged = self.damaged(exc, sql)
            if damaged is not None:
                raise DamagedFile(damaged) from None
            raise
        except UnicodeDecodeError as exc:
            # DuckDB's message quoted bytes of a file that are not UTF-8 (a damaged column name
            # in a Parquet footer: "Candidate bindings: ..."), and its binding could not decode
            # it: an error about the files this query read, never a bare 500.
            text = exc.object.decode("utf-8", "replace") if isinstance(exc.object, bytes) else str(exc)
            damaged = self.damaged(text, sql)
            if damaged is not None:
                raise DamagedFile(damaged) from None
            raise QueryError(f"the query cannot be run on these events: {text}") from None
        finally:
            if timer is not None:
                timer.cancel()
            self.counters.queries.inc()
            self.counters.seconds.inc(time.perf_counter() - t0)
        return names, rows

    def run_on(self, name: str, table: Any, sql: str, params: list[Any]) -> tuple[list[str], list[tuple]]:
        """:meth:`run` with an Arrow ``table`` readable as ``name`` (on this thread's cursor only)."""
        cur = self.cursor()
        cur.register(name, table)
        try:
            return self.run(sql, params)
        finally:
            cur.unregister(name)

    def gone_file(self, exc: duckdb.Error) -> bool:
        """Did the query name a file of ours that compaction or retention removed meanwhile?"""
        text = str(exc)
        if "No files found" not in text and "No such file" not in text:
            return False
        return any(self.data_dir in Path(n).parents and not Path(n).exists()
                   for n in _QUOTED_PATH.findall(text))

    def damaged(self, exc: duckdb.Error | str, sql: str = "") -> Path | None:
        """The Parquet file (or RED summary) of ours that ``exc`` (an error or its text) says DuckDB could not
        read, if it really cannot.

        Errors in a page usually name the file. A damaged footer ("TProtocolException:
        Invalid data") or page header ("don't know what type: ") may not, nor a column name
        damaged in a footer (a binder error, which may name none or only some of the files):
        then every file's footer is read, and every file ``sql`` read is read whole, each
        column of ours by its name (the error path only; the file found is quarantined, so it
        costs this once).
        """
        con = duckdb.connect()
        named = [Path(n) for n in _QUOTED_PARQUET.findall(str(exc))]
        found = next((p for p in named if self.unreadable(p, con)), None)
        if found is not None:
            return found
        for path in (f.path for f in catalogue.parquet_files(self.data_dir)):
            try:
                con.execute(f"SELECT count(*) FROM parquet_metadata({sql_str(str(path))})").fetchall()
            except (duckdb.Error, UnicodeDecodeError):
                return path
        read = dict.fromkeys(Path(n) for n in _QUOTED_PARQUET.findall(sql) if Path(n) not in named)
        return next((p for p in read if self.unreadable(p, con)), None)

    def unreadable(self, path: Path, con: duckdb.DuckDBPyConnection | None = None) -> bool:
        """Does any page of this file of ours fail to decompress or decode, or does its footer
        lack a column of ours (a damaged name)?"""
        if path.parent != self.parquet_dir or not path.exists():
            return False  # not ours, or removed by retention meanwhile: nothing damaged
        con = con or duckdb.connect()
        # a RED summary has columns of its own (store/red_summary.py): every one of them is read
        columns = "*" if path.name.endswith(layout.RED_SUFFIX) else SELECT_LIST
        try:  # every column of ours of every row group decompressed, not only the footer read
            con.execute("SELECT sum(length(CAST(COLUMNS(*) AS VARCHAR))) FROM "
                        f"(SELECT {columns} FROM read_parquet({sql_str(str(path))}))").fetchall()
        except (duckdb.Error, UnicodeDecodeError):
            return True
        return False
