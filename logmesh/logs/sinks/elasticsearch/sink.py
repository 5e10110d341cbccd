"""The Elasticsearch sink, top to bottom: store -> batch -> _bulk -> classify -> commit.

One sink runs in each logs worker process and forwards only that worker's
segments (``wNN-*.ndjson``), so no two workers ever send the same event::

    read      the next whole lines after the last batch (in a thread), up to what is
              on disk (durable_seq), and their _bulk body, with _id = seq, encoded on
              the loop in ~1 ms steps                                 (reader.py, encode.py)
    send      the body, gzipped (on the loop, in steps) when the cluster takes it,
              through the client library's bulk API; up to max_in_flight bulks at
              once                                                      (client.py)
    classify  every item: Done / Retry / DeadLetter; a failed request:
              Retry / Split                                             (retry.py)
    retry     only the Retry items, with exponential backoff and jitter, forever;
              a 429 halves the bulks in flight, each success adds one back
    commit    in store order, over the batches whose every event is Done or
              dead-lettered: dead letters (fsynced), then the cursor (atomic)
              (sinks/cursor.py). A batch that finished before an earlier one
              waits for it, so the cursor never passes an event still in flight.

Ingest never waits for any of this: the sink reads the files the writer
has already written, on its own task. With the cluster down the backlog is
simply the store; the sink catches up when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ....metrics import Exposition, Metrics, number, value
from ...store import layout
from ..cursor import SinkState
from .client import (
    Backend,
    BulkAnswer,
    ElasticsearchBackend,
    NotElasticsearch,
    RequestFailed,
    check_installed,
)
from .config import ElasticsearchConfig
from .encode import Block, encode_stepwise, gzip_stepwise
from .reader import Batch, SegmentReader
from .retry import DeadLetter, Done, Split, backoff, classify, classify_response, deadletter_line
from .setup import identify, install

log = logging.getLogger("logmesh.sinks.elasticsearch")

RETRY_LOG_EVERY = 30.0  # seconds between repeated warnings about the same failure
GZIP_MIN_BYTES = 1024  # smaller bodies go as they are
GZIP_REFUSED = (400, 415)  # what a cluster (or a proxy) that cannot read a gzipped body answers


class _Stopping(Exception):
    """close() was called while waiting: leave without committing."""


@dataclass
class InFlight:
    batch: Batch
    task: asyncio.Task  # -> the dead-letter lines once every event is Done or DeadLetter


def _counter(seq: int) -> int:
    return layout.split_seq(seq)[0] if seq >= 0 else 0


class ElasticsearchSink:
    kind = "elasticsearch"

    def __init__(self, config: ElasticsearchConfig, data_dir: Path, worker: int = 0, *,
                 head_seq: Callable[[], int] | None = None,
                 durable_seq: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.time,
                 rand: Callable[[float, float], float] = random.uniform,
                 metrics: Metrics | None = None) -> None:
        """``metrics``: the registry its counters go to (the logs server's)."""
        check_installed()  # fail at startup, with the pip command, not at the first event
        self.config = config
        self.data_dir = Path(data_dir)
        self.worker = worker
        self.name = f"{self.kind}-w{worker:02d}"
        self.head_seq = head_seq  # the writer's last written seq: lag in events
        self.durable_seq = durable_seq  # never send what a power cut could still take back
        self.clock, self.rand = clock, rand
        self.state = SinkState(self.data_dir, self.name)
        self.reader = SegmentReader(self.data_dir, worker, self.name, config.batch_bytes)
        # Counted in metrics (docs/metrics.md) once per request or batch; ``stats`` reads them.
        m = metrics or Metrics()
        w = (str(worker), self.kind)
        self.sent = m.counter("logmesh_sink_sent_events_total",
                              "Events the destination accepted (or already had).",
                              ["worker", "sink"]).labels(*w)
        self.retries = m.counter("logmesh_sink_retries_total",
                                 "Events sent again after a retryable failure.",
                                 ["worker", "sink"]).labels(*w)
        self.deadlettered = m.counter("logmesh_sink_deadlettered_total",
                                      "Events refused for their content, written to the "
                                      "dead-letter file.", ["worker", "sink"]).labels(*w)
        self.errors = m.counter("logmesh_sink_errors_total", "Failed requests, by stage.",
                                ["worker", "sink", "stage"]).labels(*w, "sending")
        self.requests = 0
        self.status = "starting"
        self.gzip = config.compress  # off for good once the cluster refuses a gzipped body
        self.window = config.max_in_flight  # bulks in flight now: halved by a 429, +1 per success
        self._backend: Backend | None = None
        self._ready = False
        self._setup = asyncio.Lock()
        self._setup_attempts = 0
        self._read: tuple[str | None, int] = (None, 0)  # where the next batch starts
        self._inflight: deque[InFlight] = deque()  # in store order
        self._committing: asyncio.Task | None = None  # the last commit started
        self._peek: Batch | None = None  # read while the cluster is unready: for lag_seconds
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._closing = False
        self._last_warning: tuple[str, float] = ("", 0.0)
        self._unstarted = False  # start() found the cursor damaged: nothing is forwarded

    # -- lifecycle --------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """The sink's task ended by itself (it runs until close), or never started (its cursor
        is damaged): /healthz reports it. The second was missed: /healthz said ok."""
        return self._unstarted or (self._task is not None and self._task.done())

    def start(self) -> None:
        try:
            position = self.state.open()
        except (OSError, RuntimeError) as exc:  # a damaged cursor must not stop ingest
            self.status = f"stopped: {exc}"
            self._unstarted = True
            log.error("%s: not forwarding: %s", self.name, exc)
            return
        self._read = (position.segment, position.offset)
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sink-{self.name}")
        log.info("%s: forwarding to %s, from %s", self.name, self.config.redacted(),
                 f"{position.segment}@{position.offset}" if position.segment else "the start")

    def notify(self) -> None:
        """New events are on disk (the writer's on_flush hook), or a bulk finished."""
        if self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        # 1. take no new batch; 2. let the bulks in flight finish and commit, up to
        # shutdown_timeout; 3. cancel what is left (it is sent again next start);
        # 4. close the client's connections.
        self._closing = True
        if self._stop is not None and self._wake is not None:
            self._stop.set()
            self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=self.config.shutdown_timeout)
            if not done:
                self._task.cancel()
                try:
                    await self._task
                except (asyncio.CancelledError, Exception):
                    pass
            self._task = None
        self._abandon()
        if self._backend is not None:
            await self._backend.close()
            self._backend = None
        pos = self.state.position
        where = f"{pos.segment}@{pos.offset}" if pos.segment is not None else "the start (nothing sent yet)"
        log.info("%s stopped at %s; %d sent, %d dead-lettered this run", self.name, where,
                 value(self.sent), value(self.deadlettered))

    # -- the pipeline ------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._pump()
                attempt = 0
            except _Stopping:
                break
            except Exception as exc:  # a bug or a disk error: say so, start over from the cursor
                log.exception("%s: %s; restarting from the cursor", self.name, exc)
                self.errors.inc()
                try:
                    await self._committed()  # the cursor as it lands, before reading from it
                except Exception:  # noqa: S110  (that one failed too: the cursor is where it was)
                    pass
                self._abandon()
                try:
                    await self._sleep(backoff(attempt, self.config.retry_initial,
                                              self.config.retry_max, self.rand))
                except _Stopping:
                    return
                attempt += 1
        await self._drain()

    async def _pump(self) -> None:
        """Keep up to ``window`` bulks in flight; commit each finished prefix."""
        assert self._wake is not None
        while not self._closing:
            self._wake.clear()  # anything after this (new events, a finished bulk) wakes the wait
            self._check_commits()
            await self._commit_done()
            if not self._ready and not self._inflight:
                if self._peek is None:  # read on while the cluster is away: lag stays true
                    self._peek = await self._next_batch()
                await self._ensure_ready(once=True)  # at start, and after losing the cluster
                continue
            if self._ready and len(self._inflight) < self.window:
                batch, self._peek = self._peek or await self._next_batch(), None
                if batch is not None:
                    task = asyncio.get_running_loop().create_task(self._deliver(batch))
                    task.add_done_callback(lambda _: self.notify())
                    self._inflight.append(InFlight(batch, task))
                    continue
            await self._wait_for_events()

    async def _next_batch(self) -> Batch | None:
        """The next events after the last batch taken (read in a thread, encoded stepwise
        on the loop: encode_stepwise says why), or None."""
        limit = self.durable_seq() if self.durable_seq is not None else None
        segment, offset, data = await asyncio.to_thread(self.reader.take, self._read,
                                                        self.config.batch_events)
        block = await encode_stepwise(data, limit, self.config.batch_events) if data else None
        if block is None or segment is None:  # nothing (durable) yet
            self._read = (segment, offset)
            return None
        batch = self.reader.batch(segment, offset, block)
        self._read = (segment, batch.end)
        return batch

    async def _wait_for_events(self) -> None:
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
        except TimeoutError:
            pass

    async def _commit_done(self) -> None:
        """Commit the batches at the front that are all Done or dead-lettered, in one go."""
        done: list[InFlight] = []
        for f in self._inflight:
            if not f.task.done():
                break
            if f.task.cancelled() or isinstance(f.task.exception(), _Stopping):
                break
            if f.task.exception() is not None:
                raise f.task.exception()  # type: ignore[misc]  # a bug: start over from the cursor
            done.append(f)
        if not done:
            return
        for _ in done:
            self._inflight.popleft()
        # In its own task, after the one before: the next bulks go out while this one fsyncs.
        self._committing = asyncio.get_running_loop().create_task(self._commit_after(
            self._committing, [f.batch for f in done], [line for f in done for line in f.task.result()]))
        self._committing.add_done_callback(lambda _: self.notify())

    async def _commit_after(self, before: asyncio.Task | None, batches: list[Batch],
                            deadletters: list[bytes]) -> None:
        if before is not None:
            await before  # its failure is this one's: the run starts over from the cursor
        await self._commit(batches, deadletters)

    def _check_commits(self) -> None:
        """A commit that failed (a disk error) stops the pipeline: it starts over from the cursor."""
        c = self._committing
        if c is not None and c.done() and not c.cancelled() and c.exception() is not None:
            self._committing = None
            raise c.exception()  # type: ignore[misc]

    async def _committed(self) -> None:
        """Wait for the commits under way."""
        if self._committing is not None:
            await asyncio.wait({self._committing})
            self._check_commits()

    async def _drain(self) -> None:
        """Stopping: let the bulks in flight end (close() bounds the wait), commit what they did."""
        try:
            if self._inflight:
                await asyncio.wait([f.task for f in self._inflight])
                await self._commit_done()
            await self._committed()
        except Exception:  # noqa: S110  (sent again next start)
            pass
        self._abandon()

    def _abandon(self) -> None:
        """Forget the batches in flight: they are read again from the cursor."""
        for f in self._inflight:
            f.task.cancel()
        self._inflight.clear()
        self._peek = None
        self._read = (self.state.position.segment, self.state.position.offset)

    async def _deliver(self, batch: Batch) -> list[bytes]:
        """Send until every event is Done or DeadLetter; returns the dead-letter lines."""
        block = batch.block
        deadletters = [self._deadletter_line(raw, 0, f"unreadable stored line: {why}")
                       for raw, why in block.unreadable]
        if deadletters:
            self.deadlettered.inc(len(deadletters))
        groups = [list(range(len(block.seqs)))] if block.seqs else []
        attempt = 0
        while groups:
            group = groups.pop(0)
            while group:
                await self._ensure_ready()
                assert self._backend is not None
                body = block.body if len(group) == len(block.seqs) else block.subset_body(group)
                gz = self.gzip and len(body) >= GZIP_MIN_BYTES
                if gz:
                    body = await gzip_stepwise(body)
                self.requests += 1
                try:
                    answer = await self._backend.bulk(self.config.target, body, gz)
                except (RequestFailed, NotElasticsearch) as exc:
                    status = exc.status if isinstance(exc, RequestFailed) else 0
                    if gz and status in GZIP_REFUSED and self.gzip:
                        self.gzip = False
                        log.warning("%s: the cluster refused a gzipped body (%s); sending "
                                    "uncompressed from now on", self.name, str(exc)[:200])
                        continue
                    if isinstance(exc, NotElasticsearch):
                        self._ready = False
                        action: Any = classify_response(0, "the server stopped answering as Elasticsearch")
                    else:
                        action = classify_response(exc.status, exc.body)
                    self.errors.inc()
                    if isinstance(action, Split):
                        if len(group) == 1:
                            deadletters.append(self._deadletter_line(
                                block.lines[group[0]], status, action.reason))
                            self.deadlettered.inc()
                        else:
                            mid = len(group) // 2
                            groups[:0] = [group[:mid], group[mid:]]
                        group = []
                        continue
                    if status == 404:
                        self._ready = False  # the data stream may be gone: set it up again
                    elif status == 429:
                        self._narrow()
                    self.retries.inc(len(group))
                    await self._sleep(self._retry_delay(attempt, action.reason, len(group)))
                    attempt += 1
                    continue
                group, progress, reason = self._sort_items(block, group, answer, deadletters)
                if group:
                    # Some items refused with 429 while the rest went in is ordinary
                    # backpressure: retry them quietly; warn only when nothing got in.
                    self.retries.inc(len(group))
                    attempt = 0 if progress else attempt + 1
                    await self._sleep(self._retry_delay(attempt, reason, len(group), quiet=progress))
                else:
                    self.window = min(self.config.max_in_flight, self.window + 1)
                    if self.status != "delivering":
                        self._recovered()
        return deadletters

    def _sort_items(self, block: Block, group: list[int], answer: BulkAnswer,
                    deadletters: list[bytes]) -> tuple[list[int], bool, str]:
        """Count what went in, dead-letter what was refused; returns (to retry, progress, why)."""
        seqs = block.seqs
        if answer.accepted(len(group), str(seqs[group[0]]), str(seqs[group[-1]])):
            self.sent.inc(len(group))  # the common answer: every item in, nothing to look at
            return [], True, ""
        items = answer.items
        if len(items) == len(group) and all(it.get("_id") == str(seqs[i]) for it, i in zip(items, group, strict=True)):
            paired = list(zip(group, items, strict=True))
        else:  # an answer short of items or out of order: by _id; a missing one is sent again
            by_id = {it.get("_id"): it for it in items}
            missing = {"error": "no result for this document in the answer"}
            paired = [(i, by_id.get(str(seqs[i]), missing)) for i in group]
        again: list[int] = []
        reason = ""
        sent = refused = 0  # counted once per answer, not per event
        for i, item in paired:
            status = item.get("status")
            status = status if isinstance(status, int) else 0  # 0: retried
            verdict = classify(status, item)
            if isinstance(verdict, Done):
                sent += 1
            elif isinstance(verdict, DeadLetter):
                deadletters.append(self._deadletter_line(block.lines[i], status, verdict.reason,
                                                         item.get("error")))
                refused += 1
            else:
                if status == 404:
                    self._ready = False
                elif status == 429:
                    self._narrow()
                again.append(i)
                reason = verdict.reason
        if sent:
            self.sent.inc(sent)
        if refused:
            self.deadlettered.inc(refused)
        return again, bool(sent or refused), reason

    def _narrow(self) -> None:
        """A 429: the cluster is overloaded; fewer bulks in flight until it takes them again."""
        if self.window > 1:
            self.window = max(1, self.window // 2)
            log.debug("%s: 429; %d bulk(s) in flight at most", self.name, self.window)

    async def _commit(self, batches: list[Batch], deadletters: list[bytes]) -> None:
        pos = self.state.position
        last = batches[-1]
        events = sum(b.events for b in batches)
        unreadable = sum(len(b.block.unreadable) for b in batches)
        refused = len(deadletters) - unreadable  # dead letters among the events
        last_seq = next((b.block.seqs[-1] for b in reversed(batches) if b.block.seqs), pos.last_seq)
        new = replace(pos, segment=last.segment, offset=last.end, last_seq=last_seq,
                      sent=pos.sent + events - refused,
                      deadlettered=pos.deadlettered + len(deadletters))
        await asyncio.to_thread(self.state.commit, new, deadletters)

    # -- connecting --------------------------------------------------------------
    async def _ensure_ready(self, once: bool = False) -> None:
        """Connect, check the product, install the template, create the target; retried.

        ``once``: one attempt (and its backoff), so the caller can read the
        next batch meanwhile (lag_seconds stays true while the cluster is down).
        """
        cfg = self.config
        if self._ready:
            return
        async with self._setup:  # bulks in flight all need it: one of them sets up
            await self._set_up(cfg, once)

    async def _set_up(self, cfg: ElasticsearchConfig, once: bool) -> None:
        while not self._ready:
            try:
                if self._backend is None:
                    self._backend = ElasticsearchBackend(cfg)
                info = None
                while info is None:  # a second pass when the server turned out to be OpenSearch
                    self._backend, info = await identify(cfg, self._backend, self.name)
                await install(cfg, self._backend, info, self.name)
                self._ready = True
                self._setup_attempts = 0
                self._recovered()
                return
            except NotElasticsearch:
                reason = (f"{cfg.urls[0]} answered, but is neither Elasticsearch nor OpenSearch; "
                          "check the URL (a proxy in between must pass X-Elastic-Product)")
            except RequestFailed as exc:
                reason = "setup: " + classify_response(exc.status, exc.body).reason
            except ValueError as exc:  # e.g. OpenSearch with an API key: config, not weather
                reason = str(exc)
            self.errors.inc()
            await self._sleep(self._retry_delay(self._setup_attempts, reason, 0))
            self._setup_attempts += 1
            if once:
                return

    # -- helpers -----------------------------------------------------------------
    def _retry_delay(self, attempt: int, reason: str, n: int, quiet: bool = False) -> float:
        delay = backoff(attempt, self.config.retry_initial, self.config.retry_max, self.rand)
        if quiet:
            log.debug("%s: %s; %d event(s) again in %.2fs", self.name, reason, n, delay)
            return delay
        self.status = f"retrying: {reason}"
        now = time.monotonic()
        last_reason, last_at = self._last_warning
        if reason != last_reason or now - last_at > RETRY_LOG_EVERY:
            log.warning("%s: %s: %s; %sretrying in %.1fs (events are kept in the store)", self.name,
                        ",".join(self.config.urls), reason, f"{n} event(s), " if n else "", delay)
            self._last_warning = (reason, now)
        return delay

    def _recovered(self) -> None:
        if self.status.startswith("retrying"):
            log.info("%s: delivering again", self.name)
        self.status = "delivering"
        self._last_warning = ("", 0.0)

    async def _sleep(self, seconds: float) -> None:
        assert self._stop is not None
        if self._closing:
            raise _Stopping
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return
        raise _Stopping

    def _deadletter_line(self, raw: bytes, status: int, reason: str, error: Any = None) -> bytes:
        return deadletter_line(self.name, int(self.clock() * 1000), raw, status, reason, error)

    # -- numbers -----------------------------------------------------------------
    def lag(self) -> tuple[int, float]:
        """(events written but not yet delivered, seconds the oldest of them has waited)."""
        head = self.head_seq() if self.head_seq is not None else -1
        events = max(0, _counter(head) - _counter(self.state.position.last_seq))
        if not events:
            return 0, 0.0
        oldest = self._inflight[0].batch if self._inflight else self._peek
        if oldest is None:  # no batch in hand (e.g. waiting to read): look at the next event
            pos = self.state.position
            oldest, _ = self.reader.read((pos.segment, pos.offset), None, 1)
        received = oldest.block.received_ms if oldest is not None else None
        if received is None:
            return events, 0.0
        return events, max(0.0, self.clock() - received / 1000)

    @property
    def stats(self) -> dict[str, int]:
        """The counts, read from the metrics."""
        return {"sent": number(value(self.sent)), "retries": number(value(self.retries)),
                "deadlettered": number(value(self.deadlettered)),
                "errors": number(value(self.errors)), "requests": self.requests}

    def add_metrics(self, ex: Exposition, labels: dict[str, str]) -> None:
        """The lag, as of now (published; the counters are in the registry it was given)."""
        w = {**labels, "sink": self.kind}
        events, seconds = self.lag()
        ex.add("logmesh_sink_lag_events", "gauge", "Events stored but not yet delivered.", events, w)
        ex.add("logmesh_sink_lag_seconds", "gauge",
               "How long the oldest undelivered event has waited.", round(seconds, 3), w)
