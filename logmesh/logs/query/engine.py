"""The query engine: the API's questions, answered with DuckDB over the store.

The engine is put together from the read path's modules, one job each:

    view.py        what it has read of the data directory: the Parquet files it knows,
                   the live table of segments not compacted yet (store/ lists the files)
    plan.py        which files and blocks a question reads, and the SQL over them;
                   which blocks are answered from their index instead
    execution.py   DuckDB: the connection, a cursor per thread, deadlines, file errors
    fields.py      field names -> SQL (shared with the KQL compiler, kql.py)
    cursors.py     page cursors
    errors.py      what a query fails with

This module keeps the questions (search, count, histogram, top, fields, event,
tail, service counts, stats), how a snapshot is shared between threads
(:meth:`Engine.refresh`), and what a query does about a damaged or vanished
file (:meth:`Engine.with_deadline`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...metrics import Metrics
from ..event import FIELD_TYPES
from ..store import catalogue, layout, live_counts, red_summary
from ..store.blocks import ParquetFile
from ..store.catalogue import SegmentInfo
from ..store.columns import MESH_SELECT, SELECT_LIST, TS, ident, read_ndjson_lenient_sql, sql_str
from ..store.compact import MINUTE_MS, SUMMARY_FIELDS
from ..store.live_counts import Counts
from ..store.long_lines import object_bytes
from ..store.scratch import Scratch
from . import kql, plan, rare, token_need
from .cursors import decode_cursor, encode_cursor
from .errors import DamagedFile, FileGone, QueryError, QueryTimeout
from .execution import DuckDB, QueryCounters, brief_event, event_dict, lower_priority
from .fields import field_expr
from .page_bytes import PAGE_BYTES, ROW_BYTES_SQL, event_bytes, fitting
from .plan import Snapshot
from .view import StoreView

# What other modules import from here (http/query_api.py, service.py, bench/, tests).
__all__ = ["BY_VALUES", "MAX_BUCKETS", "NONE", "OTHER", "Engine", "QueryError", "QueryTimeout",
           "lower_priority"]

log = logging.getLogger("logmesh.logs.query")

REFRESH_WAIT_SECONDS = 0.5  # a query waits this long for another thread's refresh, then goes on
MAX_DAMAGED_PER_QUERY = 3  # files found gone under a query before it gives up (damaged ones: each set aside)
MAX_BUCKETS = 10_000  # histogram buckets per answer; a smaller interval is refused
BY_VALUES = 10  # histogram `by`: the most frequent values; the rest are summed under OTHER
OTHER = "(other)"
NONE = "(none)"
FIELD_NAMES = 1000  # /api/v1/fields: labels and params keys listed, each (the first by name)
FIELD_KEYS_READ = 200_000  # /api/v1/fields: keys read of each, at most


class Engine:
    def __init__(self, data_dir: Path, *, threads: int | None = None,
                 memory_limit: str | None = None, clock: Callable[[], float] = time.time,
                 worker_nice: int = 0, metrics: Metrics | None = None, worker: str = "0") -> None:
        """``worker_nice``: DuckDB's own worker threads run at this nice level (Linux), so the
        CPU they take from ingest goes back to it first (see :func:`lower_priority`).
        ``metrics``: the registry its counters go to (the server's; one of its own if None),
        labelled ``worker``."""
        self.data_dir = Path(data_dir)
        self.clock = clock
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.query_counters = QueryCounters.make(metrics, worker)
        self._config, self._nice = config, worker_nice
        self._db: DuckDB | None = None  # opened by the first question: an idle worker holds none
        self._view: StoreView | None = None
        self._scratch: Scratch | None = None
        self._opening = threading.Lock()
        self._lock = threading.Lock()  # one refresh at a time; held while a file is set aside
        self._local = threading.local()
        self._refreshed = 0.0
        self.page_bytes = PAGE_BYTES  # a search page's events' bytes, at most (page_bytes.py)

    @property
    def db(self) -> DuckDB:
        """The in-memory DuckDB, opened on first use: ~24 MB a worker that is never asked
        anything does not hold (issue 18)."""
        if self._db is None:
            self._open()
        return self._db  # type: ignore[return-value]

    @property
    def view(self) -> StoreView:
        if self._db is None:
            self._open()
        return self._view  # type: ignore[return-value]

    def open(self) -> None:
        """Open DuckDB now, if the first question has not (~0.3 s of CPU, ~1 s quiet and over
        5 s at load ~18): for a caller whose deadline must time its question, not this."""
        if self._db is None:
            self._open()

    def _open(self) -> None:
        with self._opening:
            if self._db is None:
                # its temporary files, the live table's chunks and DuckDB's spill, in one
                # directory a restart removes if this process is killed (store/scratch.py)
                self._scratch = Scratch.open(self.data_dir, "query")
                config = {**self._config, "temp_directory": str(self._scratch.path)}
                db = DuckDB(self.data_dir, config, self._nice, self.query_counters)
                self._view = StoreView(self.data_dir, db, self.query_counters, self._scratch.path)
                self._db = db  # last: a thread that sees it sees the view too

    def close(self) -> None:
        if self._db is None:
            return
        try:
            self._db.close()
        finally:
            self._scratch.close()  # type: ignore[union-attr]

    @property
    def counters(self) -> dict[str, int | float]:
        """Queries, their seconds, live bytes loaded, damaged files and their events: read
        from the metrics (the stats API shows the damaged ones)."""
        return self.query_counters.read()

    @property
    def snapshot(self) -> Snapshot:
        """The last refresh's view (no refresh, and nothing opened: for metrics)."""
        return self._view.snapshot if self._view is not None else Snapshot((), (), 0)

    # -- sharing one view between threads -----------------------------------------------------------
    def refresh(self, max_age: float = 0.0) -> Snapshot:
        """Load what was appended since the last refresh; ``max_age``: reuse a recent one.

        With ``max_age`` (queries), a refresh already under way in another thread is
        waited for at most REFRESH_WAIT_SECONDS (a page's queries arrive together, and one
        that skipped the wait missed the event just acknowledged); then the last finished
        refresh's snapshot is used. That thread may be a heavy query's,
        at a low CPU priority (http/query_api.py), and under fast ingest a refresh loads megabytes:
        waiting for it made every normal query as slow as the heavy one (issue 15 #7).
        """
        if max_age and time.monotonic() - self._refreshed < max_age:
            return self.view.snapshot
        if max_age and self._refreshed:
            if getattr(self._local, "no_load", False):  # with_deadline(load_new=False)
                return self.view.snapshot
            if not self._lock.acquire(timeout=REFRESH_WAIT_SECONDS):
                return self.view.snapshot
            self._lock.release()
        with self._lock:
            if max_age and time.monotonic() - self._refreshed < max_age:
                return self.view.snapshot
            snap = self.view.refresh()
            self._refreshed = time.monotonic()
            unopened, self.view.unopened = self.view.unopened, []
        for path in unopened:
            if self.db.unreadable(path):
                self._quarantine(path)
        return snap

    def with_deadline(self, deadline: float | None, fn: Callable[..., Any], *args: Any,
                      load_new: bool = True, **kwargs: Any) -> Any:
        """Run ``fn`` (in this thread) with its DuckDB queries interrupted at ``deadline``.

        ``deadline`` is a ``time.monotonic()`` instant, not a duration: the API sets it when
        the request arrives, so the time a query waited for this thread counts against it
        too (issue 15 #7: a 10 s timeout answered after 20.5 s). None: no deadline.
        ``load_new=False``: ``fn`` reads the last snapshot and never loads new lines itself
        (a heavy query's low-priority thread must not hold the refresh: the API refreshes
        for it first, at normal priority), except before the very first refresh.
        """
        if deadline is not None and deadline <= time.monotonic():
            raise QueryTimeout("the query ran out of time before it started")
        self._local.no_load = not load_new
        try:
            with self.db.deadline(deadline):
                set_aside: set[Path] = set()
                gone = 0
                while True:
                    try:
                        return fn(*args, **kwargs)
                    except DamagedFile as exc:  # set it aside, then ask again without it
                        if exc.path in set_aside:  # every damaged file once: the loop ends
                            raise QueryError(f"{exc.path.name} cannot be read and could not be "
                                             "set aside") from None
                        set_aside.add(exc.path)
                        self._quarantine(exc.path)
                    except FileGone:  # compacted or deleted by retention under the query
                        gone += 1
                        if gone > MAX_DAMAGED_PER_QUERY:
                            raise
                        with self._lock:
                            self._refreshed = 0.0
                        self.refresh()
        finally:
            self._local.no_load = False

    def _quarantine(self, path: Path) -> None:
        """Move an unreadable Parquet file (and its block index) to ``quarantine/``, said and counted.

        A bad disk or a stray write can damage a compacted file as well as a
        segment; without this one file would fail every query of its time
        range. Its events are lost to search (the bytes are kept for a human).
        """
        if path.name.endswith(layout.RED_SUFFIX):
            self._set_aside_summary(path)
            return
        with self._lock:
            pf = self.view.forget(path.name)
            rows = pf.rows if pf is not None else 0
            for p in (path, path.with_name(layout.blocks_name(path.name)), red_summary.red_path(path)):
                try:
                    catalogue.set_aside(p)
                except FileNotFoundError:
                    pass
            self._refreshed = 0.0
        self.query_counters.damaged_files.inc()
        self.query_counters.damaged_rows.inc(rows)
        log.error("%s cannot be read (damaged); moved to %s/ with its %d event(s)", path.name,
                  layout.QUARANTINE_DIR, rows)

    def _set_aside_summary(self, path: Path) -> None:
        """A RED summary (``.red``) that cannot be read goes to ``quarantine/`` alone: its
        Parquet file's events are all there, and RED questions read them instead."""
        parquet = path.name[: -len(layout.RED_SUFFIX)] + layout.PARQUET_SUFFIX
        with self._lock:
            pf = next((p for p in self.view.snapshot.parquet if p.path.name == parquet), None)
            if pf is not None:
                pf.index.pop("red", None)
            try:
                catalogue.set_aside(path)
            except FileNotFoundError:
                pass
        self.query_counters.damaged_files.inc()
        log.error("%s cannot be read (damaged); moved to %s/, no event lost: RED questions read "
                  "the events of %s instead", path.name, layout.QUARANTINE_DIR, parquet)

    # -- the API's questions ---------------------------------------------------------------------------
    def search(self, node: kql.Node | None, start: int, end: int, *, limit: int = 100,
               order: str = "desc", cursor: str | None = None, now: int | None = None,
               extra: tuple[str, list[Any]] | None = None,
               slice_rows: int = plan.FIRST_SLICE_ROWS) -> tuple[list[dict], str | None]:
        """The first ``limit`` events by (@timestamp, seq) in ``order``, after ``cursor``;
        fewer when their bytes pass ``page_bytes`` (query/page_bytes.py), with a cursor then too.

        ``slice_rows``: the stored rows of the first time slice read (plan.slices); an
        export's page asks for fewer, as each page's query reads its whole first slice."""
        now = now if now is not None else int(self.clock() * 1000)
        where, params = plan.where(node, now)
        if extra is not None:
            where, params = f"({where}) AND ({extra[0]})", params + extra[1]
        need = token_need.need(node) if node is not None else None
        desc = order == "desc"
        after = decode_cursor(cursor, order) if cursor else None
        if after is not None:
            if desc:
                end = min(end, after[0])
            else:
                start = max(start, after[0])
            op = "<" if desc else ">"
            where = f"({where}) AND ({TS} {op} ? OR ({TS} = ? AND seq {op} ?))"
            params = params + [after[0], after[0], after[1]]
        snap = self.refresh(max_age=0.05)
        events: list[dict] = []
        check = token_need.word_check(node) if node is not None and extra is None else None
        try:
            picked = rare.search(self.db, snap.parquet, need, where, params, start, end, desc, limit,
                                 check, after) if need is not None else None
        except rare.UsualPath:
            picked = None
        if picked is not None:  # a rare word's row groups, read by pyarrow (query/rare.py)
            events, rest = picked
            snap = dataclasses.replace(snap, parquet=tuple(rest))
        found = len(events)
        direction = "DESC" if desc else "ASC"
        order_by = f"ORDER BY {TS} {direction}, seq {direction}"
        used = 0  # bytes of the usual path's events (page_bytes.py)
        cut: tuple[int, int] | None = None  # its last key read, when the budget ended it there
        last_key: tuple[int, int] | None = None
        for lo, hi in plan.slices(plan.units(snap, start, end, need), start, end, desc, slice_rows):
            src = plan.source(snap, lo, hi, need)
            if src is None:
                continue
            want = limit - (len(events) - found)
            # keys and sizes first, no text: the rows read whole are those the budget takes
            _, keys = self.db.run(f"SELECT {TS}, seq, {ROW_BYTES_SQL} FROM ({src.sql}) WHERE {where} "
                                  f"{order_by} LIMIT {want}", params)
            n = fitting((k[2] for k in keys), used, self.page_bytes)
            if n:
                (a_ts, a_seq), (b_ts, b_seq) = sorted((keys[0][:2], keys[n - 1][:2]))
                used += sum(k[2] for k in keys[:n])
                names, rows = self.db.run(
                    f"SELECT * FROM ({src.sql}) WHERE ({where}) AND {TS} BETWEEN ? AND ? "
                    f"AND ({TS} > ? OR seq >= ?) AND ({TS} < ? OR seq <= ?) {order_by} LIMIT {n}",
                    params + [a_ts, b_ts, a_ts, a_seq, b_ts, b_seq])
                events.extend(event_dict(names, r) for r in rows)
                last_key = keys[n - 1][:2]
            if n < len(keys):
                cut = last_key  # set: a page takes at least one event, so n == 0 comes after one
                break
            if len(events) - found >= limit:
                break
        more = cut is not None
        if found:  # the rare path's events (query/rare.py), read before the budget could cut them
            if len(events) > found:  # both paths answered: merged in order
                events.sort(key=lambda e: (e["@timestamp"], e["seq"]), reverse=desc)
                if cut is not None:  # the usual path read nothing past its cut: neither may the page
                    keep = cut
                    events = [e for e in events if ((e["@timestamp"], e["seq"]) >= keep if desc
                                                    else (e["@timestamp"], e["seq"]) <= keep)]
                del events[limit:]
            n = fitting(map(event_bytes, events), 0, self.page_bytes)
            if n < len(events):
                del events[n:]
                more = True
        nxt = None
        if events and (more or len(events) >= limit):
            last = events[-1]
            nxt = encode_cursor(last["@timestamp"], last["seq"], order)
        return events, nxt

    def count(self, node: kql.Node | None, start: int, end: int, now: int | None = None) -> int:
        now = now if now is not None else int(self.clock() * 1000)
        snap = self.refresh(max_age=0.05)
        need = token_need.need(node) if node is not None else None
        every = node is None or isinstance(node, kql.MatchAll)
        term = plan.summary_term(node)

        def inside(pf: ParquetFile, i: int) -> bool:
            lo, hi = pf.blocks[i][:2]
            return start <= lo and hi <= end and (every or pf.summary(term[0], i) is not None)  # type: ignore[index]

        src = plan.source(snap, start, end, need, from_index=inside if every or term else None)
        if src is None:
            return 0
        total = 0
        for pf, i in src.counted:
            total += pf.blocks[i][2] if every else pf.summary(term[0], i).get(term[1], 0)  # type: ignore[union-attr,index]
        if src.sql is not None:
            where, params = plan.where(node, now)
            _, rows = self.db.run(f"SELECT count(*) FROM ({src.sql}) WHERE {where}", params)
            total += rows[0][0]
        return total

    def histogram(self, node: kql.Node | None, start: int, end: int, *, interval: int | None = None,
                  by: str | None = None, now: int | None = None) -> dict:
        now = now if now is not None else int(self.clock() * 1000)
        expr, eparams, _ = field_expr(by) if by else ("", [], "")
        interval, first, nb = plan.buckets(start, end, interval, MAX_BUCKETS)
        counts = [0] * nb
        stacks: list[dict[str, int]] | None = [{} for _ in range(nb)] if by else None
        snap = self.refresh(max_age=0.05)
        need = token_need.need(node) if node is not None else None
        every = node is None or isinstance(node, kql.MatchAll)
        by_minute = interval % MINUTE_MS == 0  # then each minute falls in one bucket

        def from_index(pf: ParquetFile, i: int) -> bool:
            # Every event counts: a block inside the range is counted from its index when it
            # lies in one bucket (or its per-minute counts can be split); by a field, when it
            # lies in one bucket and its value counts are known. The rest is read.
            lo, hi = pf.blocks[i][:2]
            if not (start <= lo and hi <= end):
                return False
            one = (lo - first) // interval == (hi - first) // interval
            if by:
                return one and pf.summary(by, i) is not None
            return one or (by_minute and pf.minutes(i) is not None)

        src = plan.source(snap, start, end, need, from_index=from_index if every and (
            not by or by in SUMMARY_FIELDS) else None)
        rows: list[tuple[int, str | None, int]] = []
        for pf, i in src.counted if src is not None else ():
            lo, hi, n = pf.blocks[i][:3]
            k = (lo - first) // interval
            if by:
                summary = pf.summary(by, i) or {}
                rows.extend((k, v, c) for v, c in summary.items())
                if n > sum(summary.values()):
                    rows.append((k, None, n - sum(summary.values())))
            elif k == (hi - first) // interval:
                counts[k] += n
            else:
                m0, *per_minute = pf.minutes(i)  # type: ignore[misc]
                for j, c in enumerate(per_minute):
                    counts[((m0 + j) * MINUTE_MS - first) // interval] += c
        if src is not None and (src.sql is not None or rows):
            where, params = plan.where(node, now)
            if by:
                if src.sql is not None:
                    _, got = self.db.run(
                        f"SELECT ({TS} - ?) // ? AS k, CAST({expr} AS VARCHAR) AS v, count(*) FROM ({src.sql}) "
                        f"WHERE {where} GROUP BY ALL", [first, interval] + eparams + params)
                    rows.extend(got)
                totals: dict[str, int] = {}
                for _, v, n in rows:
                    key = NONE if v is None else v
                    totals[key] = totals.get(key, 0) + n
                keep = set(sorted(totals, key=lambda k: (-totals[k], k))[:BY_VALUES])
                for k, v, n in rows:
                    key = NONE if v is None else v
                    key = key if key in keep else OTHER
                    counts[k] += n
                    stack = stacks[k]  # type: ignore[index]
                    stack[key] = stack.get(key, 0) + n
            elif src.sql is not None:
                _, got = self.db.run(
                    f"SELECT ({TS} - ?) // ? AS k, count(*) FROM ({src.sql}) "
                    f"WHERE {where} GROUP BY ALL", [first, interval] + params)
                for k, n in got:
                    counts[k] += n
        buckets = []
        for i in range(nb):
            b: dict[str, Any] = {"t": first + i * interval, "count": counts[i]}
            if stacks is not None:
                b["by"] = stacks[i]
            buckets.append(b)
        return {"interval_ms": interval, "from": start, "to": end, "total": sum(counts),
                "buckets": buckets}

    def top(self, node: kql.Node | None, start: int, end: int, field_name: str, *, limit: int = 10,
            now: int | None = None) -> dict:
        now = now if now is not None else int(self.clock() * 1000)
        expr, eparams, kind = field_expr(field_name)
        snap = self.refresh(max_age=0.05)
        need = token_need.need(node) if node is not None else None
        every = node is None or isinstance(node, kql.MatchAll)

        def from_index(pf: ParquetFile, i: int) -> bool:
            lo, hi = pf.blocks[i][:2]
            return start <= lo and hi <= end and pf.summary(field_name, i) is not None

        src = plan.source(snap, start, end, need,
                          from_index=from_index if every and field_name in SUMMARY_FIELDS else None)
        counts: dict[Any, int] = {}
        total = 0
        for pf, i in src.counted if src is not None else ():
            total += pf.blocks[i][2]
            for v, c in (pf.summary(field_name, i) or {}).items():
                key = int(v) if kind == "long" else v
                counts[key] = counts.get(key, 0) + c
        if src is not None and src.sql is not None:
            where, params = plan.where(node, now)
            if counts:  # merged with the index's counts: every value is needed
                _, rows = self.db.run(f"SELECT {expr} AS v, count(*) AS n FROM ({src.sql}) WHERE {where} "
                                    "GROUP BY ALL", eparams + params)
                for v, n in rows:
                    total += n
                    if v is not None:
                        counts[v] = counts.get(v, 0) + n
            else:
                _, rows = self.db.run(
                    f"SELECT v, n, sum(n) OVER () AS total FROM (SELECT {expr} AS v, count(*) AS n "
                    f"FROM ({src.sql}) WHERE {where} GROUP BY ALL) "
                    f"ORDER BY v IS NULL, n DESC, v LIMIT {limit + 1}", eparams + params)
                total += int(rows[0][2]) if rows else 0
                for v, n, _ in rows:
                    if v is not None:
                        counts[v] = counts.get(v, 0) + n
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
        values = [{"value": v, "count": n} for v, n in ranked]
        return {"field": field_name, "type": kind, "total": total, "values": values}

    def fields(self, start: int, end: int, node: kql.Node | None = None,
               now: int | None = None) -> list[dict]:
        """The columns, and the labels/params keys of (up to 20,000 of) the events ``node``
        matches in the range: a key only some service logs shows when the query names it."""
        out = [{"name": n, "type": t} for n, t in FIELD_TYPES.items()]
        now = now if now is not None else int(self.clock() * 1000)
        where, params = plan.where(node, now)
        snap = self.refresh(max_age=0.05)
        src = plan.source(snap, start, end, token_need.need(node) if node is not None else None)
        if src is None or src.sql is None:
            return out
        sample = (f"SELECT labels, params FROM ({src.sql}) "
                  f"WHERE ({where}) AND (labels IS NOT NULL OR params IS NOT NULL) LIMIT 20000")
        # Bounded whatever was stored (an event of 200,000 labels, from before ingest folded
        # them: field_limits.py): each column's keys read at most FIELD_KEYS_READ, and at most
        # FIELD_NAMES of them listed, the first by name.
        def keys(c: str) -> str:
            return (f"(SELECT '{c}', k FROM (SELECT DISTINCT k FROM (SELECT unnest(json_keys({c})) AS k "
                    f"FROM ({sample}) WHERE json_type({c}) = 'OBJECT' LIMIT {FIELD_KEYS_READ}) "
                    f"ORDER BY k LIMIT {FIELD_NAMES}))")
        _, rows = self.db.run(f"{keys('labels')} UNION ALL {keys('params')}", params + params)
        known = set(FIELD_TYPES)
        for column, key in sorted(rows, key=lambda r: (r[0], r[1])):
            name = f"{column}.{key}"
            if name not in known:
                known.add(name)
                out.append({"name": name, "type": "keyword"})
        return out

    def event(self, seq: int, context: int = 10, trace_window_ms: int = 86_400_000,
              brief: bool = False) -> dict | None:
        """One event by seq, with ``context`` events of its service before/after and its trace
        (``brief``: those as the event view shows them, execution.brief_event)."""
        snap = self.refresh(max_age=0.05)
        worker = seq & (layout.MAX_WORKERS - 1)
        lo, hi = -(2**62), 2**62
        src = plan.source(snap, lo, hi, workers={worker}, seq=seq)
        if src is None:
            return None
        names, rows = self.db.run(f"SELECT * FROM ({src.sql}) WHERE seq = ? LIMIT 1", [seq])
        if not rows:
            return None
        ev = event_dict(names, rows[0])
        ts = ev["@timestamp"]
        svc = ev.get("service.name")
        same = (f"{ident('service.name')} IS NOT DISTINCT FROM ?", [svc])
        before: list[dict] = []
        after: list[dict] = []
        if context > 0:
            before, _ = self.search(None, lo, hi, limit=context, order="desc",
                                    cursor=encode_cursor(ts, seq, "desc"), extra=same)
            after, _ = self.search(None, lo, hi, limit=context, order="asc",
                                   cursor=encode_cursor(ts, seq, "asc"), extra=same)
        trace: list[dict] = []
        tid = ev.get("trace.id")
        if tid is not None:
            trace, _ = self.search(None, ts - trace_window_ms, ts + trace_window_ms, limit=1000,
                                   order="asc", extra=(f"{ident('trace.id')} = ?", [tid]))
        if brief:
            before, after, trace = ([brief_event(e) for e in x] for x in (before, after, trace))
        return {"event": ev, "before": before[::-1], "after": after, "trace": trace}

    def tail(self, node: kql.Node | None, since_gen: int, now: int | None = None,
             limit: int = 10_000) -> tuple[list[dict], int]:
        """Events loaded after generation ``since_gen`` that match, in time order; and the
        generation they reach, where the next call goes on.

        About ``limit`` events and :data:`page_bytes` bytes at most: whole generations (one
        load of a segment's chunk, never cut, view.LIVE_CHUNK_BYTES) while they fit, at least
        one. Cutting at ``limit`` and answering the newest generation lost the rest to every
        tail (12,000 events between two polls, 10,000 shown); a poll of any count of events
        held them all (page_bytes.py).
        """
        snap = self.refresh(max_age=0.1)
        if snap.gen <= since_gen:
            return [], snap.gen
        ids = [s.id for s in snap.live]
        if not ids:
            return [], snap.gen
        now = now if now is not None else int(self.clock() * 1000)
        where, params = plan.where(node, now)
        match = f"_seg IN ({', '.join(map(str, ids))}) AND ({where})"
        _, gens = self.db.run(f"SELECT _gen, count(*), sum({ROW_BYTES_SQL}) FROM live WHERE _gen > ? "
                              f"AND _gen <= ? AND {match} GROUP BY _gen ORDER BY _gen",
                              [since_gen, snap.gen] + params)
        upto, count, size = snap.gen, 0, 0
        for gen, n, nbytes in gens:
            if count and (count + n > limit or size + nbytes > self.page_bytes):
                upto = gen - 1  # the generation past the bounds: next time
                break
            count, size = count + n, size + nbytes
        names, rows = self.db.run(
            f"SELECT {SELECT_LIST} FROM live WHERE _gen > ? AND _gen <= ? AND {match} "
            f"ORDER BY {TS}, seq", [since_gen, upto] + params)
        return [event_dict(names, r) for r in rows], upto

    def service_counts(self, start: int, end: int) -> dict[str, dict[str, int]]:
        """Per service over [start, end]: requests and errors (docs/api.md, /mesh)."""
        snap = self.refresh(max_age=0.05)

        def from_index(pf: ParquetFile, i: int) -> bool:
            lo, hi = pf.blocks[i][:2]
            return start <= lo and hi <= end and pf.summary("mesh", i) is not None

        src = plan.source(snap, start, end, from_index=from_index)
        if src is None:
            return {}
        out: dict[str, dict[str, int]] = {}
        rows: list[tuple] = []
        for pf, i in src.counted:
            rows.extend((svc, *c) for svc, c in (pf.summary("mesh", i) or {}).items())
        if src.sql is not None:
            _, got = self.db.run(f"SELECT {MESH_SELECT} FROM ({src.sql}) GROUP BY ALL", [])
            rows.extend(got)
        for svc, r, e, n in rows:
            if svc is None:
                continue
            c = out.setdefault(str(svc), {"requests": 0, "errors": 0, "events": 0})
            c["requests"] += r
            c["errors"] += e
            c["events"] += n
        return out

    def stats(self) -> dict:
        """What the store holds, from counts, never from the lines: Parquet files' footers and
        indexes, sealed segments' indexes, and the active segments' writer counts with the
        few lines written past them (store/live_counts.py). Refreshing the live table first
        loaded every byte appended since the last call (~11 ms of CPU a MB): 9-11 s a call
        under a 64-connection flood (docs/benchmarks.md, api12 and stats13)."""
        for attempt in range(MAX_DAMAGED_PER_QUERY + 1):
            try:
                return self._stats()
            except FileNotFoundError:  # compacted or deleted between the listing and the read
                if attempt == MAX_DAMAGED_PER_QUERY:
                    raise
        raise AssertionError("unreachable")

    def _stats(self) -> dict:
        segments = catalogue.list_segments(self.data_dir)  # first, then Parquet: store/compact.py
        wall = time.time()
        with self._lock:
            parquet = self.view.refresh_parquet()
            unopened, self.view.unopened = self.view.unopened, []
            compacted = {pf.path.name for pf in parquet}
            segments = [s for s in segments if layout.parquet_name(s.path.name) not in compacted]
            cold_names = {s.path.name for s in segments if s.sealed and self.view.is_cold(s, wall)}
        for path in unopened:
            if self.db.unreadable(path):
                self._quarantine(path)
        pq, live, cold = Counts(), Counts(), Counts()
        unknown: list[ParquetFile] = []  # compacted before block indexes counted services
        for pf in parquet:
            services = pf.index.get("services")
            if services is None:
                unknown.append(pf)
            if pf.rows:
                pq.add(Counts(pf.rows, pf.min_ts, pf.max_ts, services or {}))
        n_live = n_cold = 0
        uncounted: list[SegmentInfo] = []  # sealed before indexes counted services
        for seg in segments:
            if seg.sealed:
                got = Counts.of_index(seg.index)  # type: ignore[arg-type]
                if got is None:
                    uncounted.append(seg)
                    got = Counts.totals(seg.index)  # type: ignore[arg-type]
                    if got is None:
                        continue
            else:
                got = live_counts.active(seg.path)
            if seg.path.name in cold_names:
                cold.add(got)
                n_cold += 1
            else:
                live.add(got)
                n_live += 1
        total = Counts()
        for part in (pq, live, cold):
            total.add(part)
        services = total.services
        if unknown:
            _, rows = self.db.run(
                f"SELECT {ident('service.name')}, count(*) FROM read_parquet([{', '.join(sql_str(str(p.path)) for p in unknown)}]) "
                f"WHERE {ident('service.name')} IS NOT NULL GROUP BY ALL", [])
            for s, n in rows:
                services[s] = services.get(s, 0) + n
        if uncounted:
            src = " UNION ALL ".join(f"SELECT {ident('service.name')} FROM "
                                     f"{read_ndjson_lenient_sql(str(seg.path), object_bytes((seg.index or {}).get('longest')))}"
                                     for seg in uncounted)
            _, rows = self.db.run(f"SELECT {ident('service.name')}, count(*) FROM ({src}) "
                                  f"WHERE {ident('service.name')} IS NOT NULL GROUP BY ALL", [])
            for name, n in rows:
                services[name] = services.get(name, 0) + n
        disk = catalogue.usage(self.data_dir)
        return {"events": total.events, "bytes": disk.bytes,
                "segments": disk.files, "from": total.min_ts, "to": total.max_ts,
                "services": dict(sorted(services.items(), key=lambda kv: -kv[1])),
                "parquet_files": len(parquet), "parquet_events": pq.events,
                "live_segments": n_live, "live_events": live.events,
                "cold_segments": n_cold, "cold_events": cold.events}
