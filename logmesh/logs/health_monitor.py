"""Health per instance, kept current: the loop that feeds logs/health.py and stores its changes.

Once a second it gives the tracker the distributor's list, what the loss ledger heard from
every shipping instance and the gateway's unanswered timeouts per address, and turns each
change of state into an event stored through the store's writer (``labels.event.kind:
state``; docs/api.md). It never waits on ingest: the events are appended to the writer's
buffer like HTTP ingest's, and never awaited.

With ``--workers N`` each worker writes what its ledger heard to ``health/wNN.json`` in the
data directory every second (a shipper's connection lands on one worker) and reads its
siblings' files, so every worker judges every instance; only worker 0 asks the store for the
gateway's timeouts (shared in its file) and stores state changes, so each is stored once.

With one worker the gateway's answers come from counts kept as the store takes the events
(logs/gateway_counts.py), not from a DuckDB query: that query loaded every new event into
DuckDB's live table, 30-40% of the service's CPU per request in a mesh (issue 22). DuckDB still
answers what the counts cannot know: the store's last hour from before this process started,
and every question with ``--workers N`` (each worker's writer sees only its own events).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from ..guard import RateLimitedLog
from .event import Event
from .gateway_counts import GatewayCounts
from .health import (
    DOWN,
    NORM_WINDOW_MS,
    SILENT,
    SLOW,
    SLOW_WINDOW_MS,
    UP,
    Change,
    HealthTracker,
    Seen,
    latency_outliers,
    merge,
)
from .query import red
from .store import catalogue

log = logging.getLogger("logmesh.logs.health")

BASELINE_MS = 10_000  # rows found up this soon after the first tick are not stored as news

TICK_SECONDS = 1.0
TIMEOUTS_EVERY_SECONDS = 5.0  # how often worker 0 asks the store for the gateway's timeouts
TIMEOUTS_DEADLINE_SECONDS = 5.0
# No segment written for this long: no answer of the gateway in its last SLOW_WINDOW_MS either
# (the window, and 60 s for clocks ahead of ours), so the store is not asked (written_since)
QUIET_AFTER_SECONDS = SLOW_WINDOW_MS / 1000 + 60.0
NORMS_EVERY_SECONDS = 60.0  # how often worker 0 asks for the routes' latency norms (an hour's)
SHARED_STALE_MS = 10_000  # a sibling's file older than this is a dead worker's: not read
STATE_LOGGER = "logmesh.health"
_LEVELS = {DOWN: "warning", SILENT: "warning", SLOW: "warning"}  # else info; never an error:
# /mesh counts errors of requests, and a state change is none


def _ask(engine: Any, deadline_s: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with its queries interrupted after ``deadline_s``, counted once
    DuckDB is open: the first question of a worker opens it, over 5 s at load ~18, and a
    deadline that timed the open too left the monitor without an answer that round (its
    timeouts kept from before: a service that hung meanwhile was not flagged)."""
    engine.open()
    return engine.with_deadline(time.monotonic() + deadline_s, fn, *args, **kwargs)


def gateway_answers(engine: Any, now: int, window_ms: int = SLOW_WINDOW_MS,
                    deadline_s: float = TIMEOUTS_DEADLINE_SECONDS) -> list[red.AddressRoute]:
    """The gateway's answers of the last ``window_ms`` per upstream address and route, in one
    pass, for both rules below. Runs DuckDB: call it in a thread."""
    return _ask(engine, deadline_s, red.by_address, engine, now - window_ms, now)


def written_since(data_dir: Path, wall: float) -> bool:
    """Was any segment or Parquet file written at or after ``wall`` (``time.time()``)? When
    none was, no event arrived since (a Parquet file is written after its segment's events
    arrived), and the store is not read: an idle worker 0 then never opens DuckDB (~40 MB;
    issue 18). Events whose @timestamp lies ahead of their arrival by more than the slack of
    QUIET_AFTER_SECONDS (a gateway's clock far ahead of ours) are missed."""
    for f in catalogue.segment_files(data_dir) + catalogue.parquet_files(data_dir):
        try:
            if f.path.stat().st_mtime >= wall:
                return True
        except FileNotFoundError:  # a segment compacted meanwhile: its Parquet file, listed
            continue  # after it, is newer; a file removed by retention held old events
    return False


def counts_from(data_dir: Path, started_ms: int, window_ms: int = SLOW_WINDOW_MS,
                norm_ms: int = NORM_WINDOW_MS) -> int:
    """The oldest time from which counts begun at ``started_ms`` hold every answer: when the
    store was written in the last minute (and a slack), ``started_ms``; when it was quiet for
    that long, the window before it (nothing of it is stored, clocks within the slack); when it
    was quiet for the hour too, that hour as well."""
    wall = started_ms / 1000
    slack = QUIET_AFTER_SECONDS - window_ms / 1000
    if not written_since(data_dir, wall - (window_ms + norm_ms) / 1000 - slack):
        return started_ms - window_ms - norm_ms
    if not written_since(data_dir, wall - window_ms / 1000 - slack):
        return started_ms - window_ms
    return started_ms


def gateway_timeouts(answers: list[red.AddressRoute]) -> dict[str, int]:
    """``"host:port"`` -> the gateway's timeouts (504) charged to that address in the window
    of ``answers``, for each address whose newest answer in it is one of them (one answered
    since: it is not slow any more)."""
    count: dict[str, int] = {}
    newest: dict[str, tuple[int, int | None]] = {}
    for r in answers:
        count[r.address] = count.get(r.address, 0) + r.timeouts
        if r.address not in newest or r.newest_ms > newest[r.address][0]:
            newest[r.address] = (r.newest_ms, r.newest_status)
    return {a: n for a, n in count.items() if n and newest[a][1] == 504}


def gateway_unended(answers: list[red.AddressRoute], timeouts: dict[str, int]) -> dict[str, int]:
    """``"host:port"`` -> how many of its ``timeouts`` (:func:`gateway_timeouts`) were replies
    it began and never ended with ``¶`` (the gateway's UnendedReply): a service that is not
    slow but broken, which the mesh view names."""
    count: dict[str, int] = {}
    for r in answers:
        if r.unended and r.address in timeouts:
            count[r.address] = count.get(r.address, 0) + r.unended
    return count


def route_norms(engine: Any, now: int, window_ms: int = SLOW_WINDOW_MS,
                norm_ms: int = NORM_WINDOW_MS,
                deadline_s: float = TIMEOUTS_DEADLINE_SECONDS) -> dict[str, tuple[int, float | None]]:
    """Per route, (requests, median ms) over the ``norm_ms`` before the last ``window_ms``,
    every instance: what :func:`gateway_latency` compares with. From the RED summaries where
    they answer (query/red.py); it changes slowly, so the monitor asks once a minute."""
    start = now - window_ms
    base = _ask(engine, deadline_s, red.routes, engine, None, start - norm_ms, start - 1,
                limit=red.MAX_ROUTES, now=now)
    return {r["route"]: (r["requests"], r["p50_ms"]) for r in base["routes"]}


def gateway_latency(answers: list[red.AddressRoute],
                    norm: dict[str, tuple[int, float | None]]) -> dict[str, str]:
    """``"host:port"`` -> why it is slow, for each address of ``answers`` whose median latency
    on a route is far above that route's ``norm`` (:func:`route_norms`; the rule is
    health.latency_outliers)."""
    recent: dict[str, list[tuple[str, int, float | None]]] = {}
    for r in answers:
        recent.setdefault(r.address, []).append((r.route, r.requests, r.p50_ms))
    return latency_outliers(recent, norm) if norm else {}


def state_event(change: Change, now: int) -> Event:
    """The stored event of one change: ``labels`` carry ``event.kind: state``, the state, the
    one before, why, and the node's address."""
    row = change.row
    state = row["state"]
    where = f" {row['address']}" if row["address"] else ""
    if change.previous is None:
        what = f"{row['name']}{where} is {state}"
    elif change.restarted and change.previous == state:
        what = f"{row['name']}{where} restarted (instance {row['instance']}), {state}"
    else:
        what = f"{row['name']}{where} is {state} (was {change.previous})"
    if row["reason"]:
        what += f": {row['reason']}"
    labels: dict[str, Any] = {"event.kind": "state", "state": state,
                              "state.previous": change.previous, "state.reason": row["reason"],
                              "restarts": row["restarts"]}
    if row["address"]:
        labels["node.address"] = row["address"]
    if change.restarted:
        labels["restarted"] = True
    return Event(timestamp=now, received_at=now, message=what, level=_LEVELS.get(state, "info"),
                 logger=STATE_LOGGER, service_name=row["name"], service_instance=row["instance"],
                 labels=labels)


class _Shared(msgspec.Struct):
    """A sibling worker's health file (HealthMonitor._share), typed: a damaged file, or one
    of another version, is refused whole instead of failing every tick."""

    written_ms: int = 0
    instances: list[Seen] = []  # health.Seen: the instances as the sibling heard them
    timeouts: dict[str, int] | None = None
    latency: dict[str, str] | None = None
    unended: dict[str, int] | None = None


_shared_decoder = msgspec.json.Decoder(_Shared)


class HealthMonitor:
    """One worker's loop. ``heard``: its ledger's ``health()``; ``nodes``: the distributor's
    list now; ``writer``: the store's writer (worker 0 only, else None: no events stored);
    ``engine``: the query engine (worker 0 asks it for the gateway's timeouts); ``shared``:
    the directory of the workers' files (``--workers N``), None for one worker; ``counts``:
    the gateway's answers counted as the store took them (one worker), None: DuckDB answers."""

    def __init__(self, *, heard: Callable[[], list[dict]], nodes: Callable[[], list[Any]],
                 left: Callable[[], Iterable[tuple[str, int]]] = tuple, worker: int = 0, writer: Any = None, engine: Any = None,
                 shared: Path | None = None, clock: Callable[[], float] = time.time,
                 counts: GatewayCounts | None = None) -> None:
        self.heard = heard
        self.nodes = nodes
        self.left = left  # the list's goodbyes (mesh/registry.py's RegistryLink.left)
        self.worker = worker
        self.writer = writer
        self.engine = engine
        self.shared = shared
        self.clock = clock
        self.counts = counts
        self._bad_shared = RateLimitedLog(log, per_interval=1, interval=60.0)  # a damaged sibling file
        self.counts_from = (counts_from(engine.data_dir, counts.started_ms)
                            if counts is not None and engine is not None else None)
        self.tracker = HealthTracker()
        self.timeouts: dict[str, int] = {}
        self.unended: dict[str, int] = {}  # address -> of its timeouts, replies never ended
        self.latency: dict[str, str] = {}  # address -> why its latency is far above the norm
        self._norms: dict[str, tuple[int, float | None]] = {}
        self._norms_at = float("-inf")  # time.monotonic() of the last route_norms
        self.stored = 0  # state events appended
        self.started: int | None = None  # the first tick: rows found up until BASELINE_MS are
        # the mesh as it was when this service started, not news (no burst of "up" per start)
        self._tasks: list[asyncio.Task] = []

    def now(self) -> int:
        return int(self.clock() * 1000)

    def instances(self) -> list[dict]:
        """The table as of the last tick (``GET /api/v1/mesh``'s ``instances``)."""
        return self.tracker.table

    # -- one tick ---------------------------------------------------------------------------
    def tick(self, now: int | None = None) -> list[Change]:
        now = self.now() if now is None else now
        if self.started is None:
            self.started = now
        mine = self.heard()
        views: list[Any] = [mine]
        if self.shared is not None:
            self._share(mine, now)
            views += self._siblings(now)
        self.tracker.observe_nodes(self.nodes(), now, self.left())
        changes = self.tracker.update(merge(views), self.timeouts, now, self.latency, self.unended)
        if changes and self.writer is not None:
            self._store(changes, now)
        return changes

    def _store(self, changes: list[Change], now: int) -> None:
        if self.writer.failure is not None:  # the disk refuses writes: said by /healthz already
            return
        baseline = self.started is not None and now - self.started < BASELINE_MS
        events = [state_event(c, now) for c in changes
                  if not (baseline and c.previous is None and c.row["state"] == UP)]
        if not events:
            return
        self.writer.append_events(events)
        self.stored += len(events)
        for ev in events:
            if ev.level == "warning":
                log.warning("%s", ev.message)

    def _share(self, mine: list[dict], now: int) -> None:
        assert self.shared is not None
        body: dict[str, Any] = {"worker": self.worker, "written_ms": now, "instances": mine}
        if self.engine is not None:
            body["timeouts"] = self.timeouts
            body["unended"] = self.unended
            body["latency"] = self.latency
        path = self.shared / f"w{self.worker:02d}.json"
        tmp = path.with_name(path.name + ".tmp")
        try:
            self.shared.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(body))
            os.replace(tmp, path)  # no fsync: it is rewritten every second, and read only live
        except OSError as exc:
            log.debug("cannot share health: %s", exc)

    def _siblings(self, now: int) -> list[list[dict]]:
        assert self.shared is not None
        views = []
        timeouts: dict[str, int] = {}  # worker 0's, when its file is fresh
        latency: dict[str, str] = {}
        unended: dict[str, int] = {}
        try:
            paths = sorted(self.shared.glob("w*.json"))
        except OSError:
            return []
        for path in paths:
            if path.name == f"w{self.worker:02d}.json":
                continue
            try:
                body = _shared_decoder.decode(path.read_bytes())
            except OSError:
                continue
            except msgspec.DecodeError as exc:  # damaged, or written by another version
                self._bad_shared.warning("health: skipped %s: %s", path.name, exc)
                continue
            if now - body.written_ms > SHARED_STALE_MS:
                continue
            views.append(msgspec.to_builtins(body.instances))
            if body.timeouts is not None:
                timeouts = body.timeouts
            if body.latency is not None:
                latency = body.latency
            if body.unended is not None:
                unended = body.unended
        if self.engine is None:
            self.timeouts = timeouts
            self.latency = latency
            self.unended = unended
        return views

    # -- the loops ------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._ticks(), name="health"))
        if self.engine is not None:
            self._tasks.append(loop.create_task(self._ask_timeouts(), name="health-timeouts"))

    async def _ticks(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("health tick failed")
            await asyncio.sleep(TICK_SECONDS)

    async def _ask_timeouts(self) -> None:
        while True:
            await asyncio.sleep(TIMEOUTS_EVERY_SECONDS)
            try:  # a query timing out or a file gone: the next try
                await self.ask_gateway()
            except Exception as exc:
                log.debug("the gateway's answers could not be read: %r", exc)

    async def ask_gateway(self) -> None:
        """Read the gateway's last minute: its timeouts and latencies per address, from the
        counts where they cover it, else from the store. Only a node the distributor listed is
        judged by them (health.rows), so with none known nothing is asked: the store's question
        loads every event stored since the last one into DuckDB's live table, which cost a
        service taking syslog, OTLP or bulk posts without a mesh about as much CPU as its ingest
        (issue 22's profile)."""
        answers: list[red.AddressRoute] = []
        now = self.now()
        counted = self.counts is not None and self.counts_from is not None
        if not self.tracker.nodes:
            pass
        elif counted and self.counts.covers(now - SLOW_WINDOW_MS, self.counts_from):
            answers = self.counts.by_address(now)
        elif written_since(self.engine.data_dir, time.time() - QUIET_AFTER_SECONDS):
            answers = await asyncio.to_thread(gateway_answers, self.engine, now)
        self.timeouts = gateway_timeouts(answers)
        self.unended = gateway_unended(answers, self.timeouts)
        if answers and time.monotonic() - self._norms_at >= NORMS_EVERY_SECONDS:
            if counted and self.counts.covers(now - SLOW_WINDOW_MS - NORM_WINDOW_MS, self.counts_from,
                                                  norms=True):
                self._norms = self.counts.route_norms(now)
            else:
                self._norms = await asyncio.to_thread(route_norms, self.engine, now)
            self._norms_at = time.monotonic()
        self.latency = gateway_latency(answers, self._norms)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
