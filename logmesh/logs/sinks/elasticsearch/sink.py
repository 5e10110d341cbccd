"""The Elasticsearch sink, top to bottom: store -> batch -> _bulk -> classify -> commit.

One sink runs in each logs worker process and forwards only that worker's
segments (``wNN-*.ndjson``), so no two workers ever send the same event::

    read      the next whole lines after the cursor, up to what is on disk (durable_seq)
    encode    each line -> a ``create`` action with _id = seq              (encode.py)
    send      the client library's async bulk helper                       (client.py)
    classify  every item: Done / Retry / DeadLetter; a failed request:
              Retry / Split                                             (retry.py)
    retry     only the Retry items, with exponential backoff and jitter, forever
    commit    dead letters (fsynced), then the cursor (atomic)    (sinks/cursor.py)

Ingest never waits for any of this: the sink reads the files the writer
has already written, on its own task. With the cluster down the backlog is
simply the store; the sink catches up when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from ....metrics import Exposition, Metrics, number, value
from ...store import catalogue, layout
from ...store.reader import read_complete
from ..cursor import SinkState
from . import encode
from .client import (
    Backend,
    ElasticsearchBackend,
    NotElasticsearch,
    OpenSearchBackend,
    RequestFailed,
    check_installed,
    is_opensearch,
)
from .config import ElasticsearchConfig
from .retry import DeadLetter, Done, Split, backoff, classify, classify_response
from .template import index_template, template_name

log = logging.getLogger("logmesh.sinks.elasticsearch")

RETRY_LOG_EVERY = 30.0  # seconds between repeated warnings about the same failure
PEEK_BYTES = 64 * 1024  # /metrics reads this much to date the oldest unsent event (0 if it is longer)


class _Stopping(Exception):
    """close() was called while waiting: leave without committing."""


@dataclass
class Pending:
    """One event of a batch on its way."""

    seq: int
    line: bytes  # as stored: what a dead letter records
    action: tuple[dict[str, Any], bytes]  # (bulk header, document): what the bulk helper sends

    @property
    def id(self) -> str:
        return self.action[0]["create"]["_id"]


@dataclass
class Batch:
    segment: str
    end: int  # offset just after the last line taken
    last_seq: int
    events: list[Pending] = field(default_factory=list)
    unreadable: list[tuple[bytes, str]] = field(default_factory=list)  # corrupt stored lines
    oldest_ms: int | None = None  # received_at of the first event: for lag_seconds


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
        self._backend: Backend | None = None
        self._ready = False
        self._setup_attempts = 0
        self._read: tuple[str | None, int] = (None, 0)  # where the next batch starts
        self._oldest_ms: int | None = None
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._closing = False
        self._last_warning: tuple[str, float] = ("", 0.0)

    # -- lifecycle --------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """The sink's task ended by itself (it runs until close): /healthz reports it."""
        return self._task is not None and self._task.done()

    def start(self) -> None:
        try:
            position = self.state.open()
        except (OSError, RuntimeError) as exc:  # a damaged cursor must not stop ingest
            self.status = f"stopped: {exc}"
            log.error("%s: not forwarding: %s", self.name, exc)
            return
        self._read = (position.segment, position.offset)
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sink-{self.name}")
        log.info("%s: forwarding to %s, from %s", self.name, self.config.redacted(),
                 f"{position.segment}@{position.offset}" if position.segment else "the start")

    def notify(self) -> None:
        """New events are on disk (the writer's on_flush hook)."""
        if self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        # 1. take no new batch; 2. let the bulk in flight finish and commit, up to
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
        if self._backend is not None:
            await self._backend.close()
            self._backend = None
        log.info("%s stopped at %s@%d; %d sent, %d dead-lettered this run", self.name,
                 self.state.position.segment, self.state.position.offset, value(self.sent),
                 value(self.deadlettered))

    # -- the pipeline ------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        batch: Batch | None = None
        while not self._closing:
            try:
                if batch is None:
                    batch = await self._next_batch()
                if not self._ready:  # at start, and after losing the cluster: set up first
                    await self._ensure_ready(once=True)
                    continue
                if batch is None:
                    await self._wait_for_events()
                    continue
                deadletters = await self._deliver(batch)
                await self._commit(batch, deadletters)
                batch = None
                attempt = 0
            except _Stopping:
                return
            except Exception as exc:  # a bug or a disk error: say so, start over from the cursor
                log.exception("%s: %s; restarting from the cursor", self.name, exc)
                self.errors.inc()
                batch = None
                self._read = (self.state.position.segment, self.state.position.offset)
                self._oldest_ms = None
                try:
                    await self._sleep(backoff(attempt, self.config.retry_initial,
                                              self.config.retry_max, self.rand))
                except _Stopping:
                    return
                attempt += 1

    async def _next_batch(self) -> Batch | None:
        """The next events after the cursor (read in a thread), or None."""
        limit = self.durable_seq() if self.durable_seq is not None else None
        batch, self._read = await asyncio.to_thread(self._read_batch, self._read, limit)
        if batch is not None:
            self._oldest_ms = batch.oldest_ms
        return batch

    async def _wait_for_events(self) -> None:
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
        except TimeoutError:
            pass
        self._wake.clear()

    def _segments(self) -> list[tuple[int, str]]:
        """This worker's segment names as (first_seq, name), oldest first."""
        return [(f.first_seq, f.path.name) for f in catalogue.segment_files(self.data_dir, self.worker)]

    def _read_batch(self, read: tuple[str | None, int], limit: int | None,
                    max_events: int | None = None,
                    max_bytes: int | None = None) -> tuple[Batch | None, tuple[str | None, int]]:
        """Blocking (runs in a thread): a batch from ``read`` and the position after it."""
        seg_dir = self.data_dir / layout.SEGMENTS_DIR
        segment, offset = read
        while True:
            if segment is None or not (seg_dir / segment).exists():
                later = [(s, n) for s, n in self._segments()
                         if segment is None or s > int(layout.SEGMENT_RE.match(segment).group(2))]  # type: ignore[union-attr]
                if not later:
                    return None, (segment, offset)
                if segment is not None:
                    if (self.data_dir / layout.PARQUET_DIR / layout.parquet_name(segment)).exists():
                        # compaction deletes a segment only once every sink has sent it
                        log.info("%s: %s was compacted; going on with %s", self.name, segment,
                                 later[0][1])
                    else:
                        log.warning("%s: segment %s was deleted (retention?) before it was all "
                                    "sent; going on with %s", self.name, segment, later[0][1])
                segment, offset = later[0][1], 0
            path = seg_dir / segment
            size = path.stat().st_size if path.exists() else 0
            if offset > size:  # the file was cut back (recovery of a torn write)
                log.warning("%s: %s is shorter (%d) than the cursor (%d); going on from its end",
                            self.name, segment, size, offset)
                offset = size
            data, _ = read_complete(path, offset, max_bytes or max(
                self.config.batch_bytes, layout.MAX_EVENT_BYTES + 4096))  # at least one whole event
            if data:
                batch = self._decode(segment, offset, data, limit, max_events)
                if batch is None:  # nothing durable yet
                    return None, (segment, offset)
                return batch, (segment, batch.end)
            sealed = path.with_name(layout.index_name(segment)).exists()
            if not sealed or offset < path.stat().st_size:
                return None, (segment, offset)  # the active segment: wait for more
            first = int(layout.SEGMENT_RE.match(segment).group(2))  # type: ignore[union-attr]
            later = [(s, n) for s, n in self._segments() if s > first]
            if not later:
                return None, (segment, offset)
            segment, offset = later[0][1], 0

    def _decode(self, segment: str, offset: int, data: bytes, limit: int | None,
                max_events: int | None = None) -> Batch | None:
        cfg = self.config
        max_events = max_events or cfg.batch_events
        batch = Batch(segment, offset, -1)
        pos = offset
        taken = 0
        for line in data.splitlines(keepends=True):
            if batch.events or batch.unreadable:
                if taken >= max_events or pos - offset + len(line) > cfg.batch_bytes:
                    break
            raw = line.rstrip(b"\n")
            try:
                enc = encode.encode_line(raw, cfg.target)
            except encode.BadLine as exc:
                batch.unreadable.append((raw, str(exc)))
            else:
                if limit is not None and enc.seq > limit:
                    break  # written but not yet fsynced: wait
                if not batch.events:
                    batch.oldest_ms = enc.received_ms
                batch.events.append(Pending(enc.seq, raw, (enc.header, enc.body)))
                batch.last_seq = enc.seq
            taken += 1
            pos += len(line)
        if pos == offset:
            return None
        batch.end = pos
        if batch.last_seq < 0:
            batch.last_seq = self.state.position.last_seq
        return batch

    async def _deliver(self, batch: Batch) -> list[bytes]:
        """Send until every event is Done or DeadLetter; returns the dead-letter lines."""
        deadletters = [self._deadletter_line(raw, 0, f"unreadable stored line: {why}")
                       for raw, why in batch.unreadable]
        if deadletters:
            self.deadlettered.inc(len(deadletters))
        groups = [batch.events] if batch.events else []
        attempt = 0
        while groups:
            group = groups.pop(0)
            while group:
                await self._ensure_ready()
                assert self._backend is not None
                self.requests += 1
                try:
                    results = await self._backend.bulk([p.action for p in group])
                except (RequestFailed, NotElasticsearch) as exc:
                    if isinstance(exc, NotElasticsearch):
                        self._ready = False
                        action: Any = classify_response(0, "the server stopped answering as Elasticsearch")
                    else:
                        action = classify_response(exc.status, exc.body)
                    self.errors.inc()
                    if isinstance(action, Split):
                        if len(group) == 1:
                            deadletters.append(self._deadletter_line(
                                group[0].line, exc.status if isinstance(exc, RequestFailed) else 0,
                                action.reason))
                            self.deadlettered.inc()
                        else:
                            mid = len(group) // 2
                            groups[:0] = [group[:mid], group[mid:]]
                        group = []
                        continue
                    if isinstance(exc, RequestFailed) and exc.status == 404:
                        self._ready = False  # the data stream may be gone: set it up again
                    self.retries.inc(len(group))
                    await self._sleep(self._retry_delay(attempt, action.reason, len(group)))
                    attempt += 1
                    continue
                by_id = {item.get("_id"): item for item in results}
                again: list[Pending] = []
                reason = ""
                progress = False
                sent = refused = 0  # counted once per answer, not per event
                for p in group:
                    item = by_id.get(p.id) or {"error": "no result for this document in the answer"}
                    status = item.get("status")
                    status = status if isinstance(status, int) else 0  # 0: retried
                    verdict = classify(status, item)
                    if isinstance(verdict, Done):
                        sent += 1
                        progress = True
                    elif isinstance(verdict, DeadLetter):
                        deadletters.append(self._deadletter_line(p.line, status, verdict.reason,
                                                                 item.get("error")))
                        refused += 1
                        progress = True
                    else:
                        if status == 404:
                            self._ready = False
                        again.append(p)
                        reason = verdict.reason
                if sent:
                    self.sent.inc(sent)
                if refused:
                    self.deadlettered.inc(refused)
                if again:
                    # Some items refused with 429 while the rest went in is ordinary
                    # backpressure: retry them quietly; warn only when nothing got in.
                    self.retries.inc(len(again))
                    attempt = 0 if progress else attempt + 1
                    await self._sleep(self._retry_delay(attempt, reason, len(again), quiet=progress))
                elif self.status != "delivering":
                    self._recovered()
                group = again
        return deadletters

    async def _commit(self, batch: Batch, deadletters: list[bytes]) -> None:
        pos = self.state.position
        refused = len(deadletters) - len(batch.unreadable)  # dead letters among batch.events
        new = replace(pos, segment=batch.segment, offset=batch.end, last_seq=batch.last_seq,
                      sent=pos.sent + len(batch.events) - refused,
                      deadlettered=pos.deadlettered + len(deadletters))
        await asyncio.to_thread(self.state.commit, new, deadletters)
        self._oldest_ms = None

    # -- connecting --------------------------------------------------------------
    async def _ensure_ready(self, once: bool = False) -> None:
        """Connect, check the product, install the template, create the target; retried.

        ``once``: one attempt (and its backoff), so the caller can read the
        next batch meanwhile (lag_seconds stays true while the cluster is down).
        """
        cfg = self.config
        while not self._ready:
            try:
                if self._backend is None:
                    self._backend = ElasticsearchBackend(cfg)
                try:
                    info = await self._backend.info()
                except NotElasticsearch as exc:
                    if not is_opensearch(exc.body):
                        raise
                    log.info("%s: the server is OpenSearch; using opensearch-py", self.name)
                    await self._backend.close()
                    self._backend = None
                    self._backend = OpenSearchBackend(cfg)
                    info = await self._backend.info()
                flavor = self._backend.flavor
                if cfg.install_template:
                    await self._backend.put_template(template_name(cfg), index_template(cfg, flavor))
                await self._backend.create_target(cfg.target, cfg.is_data_stream)
                version = info.get("version", {}).get("number", "?") if isinstance(info, dict) else "?"
                log.info("%s: connected to %s %s; documents go to %s %s", self.name, flavor,
                         version, "data stream" if cfg.is_data_stream else "index", cfg.target)
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
            log.warning("%s: %s; %sretrying in %.1fs (events are kept in the store)", self.name,
                        reason, f"{n} event(s), " if n else "", delay)
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
        try:
            event: Any = orjson.Fragment(raw) if raw[:1] == b"{" else raw.decode("utf-8", "replace")
            entry = {"at": int(self.clock() * 1000), "sink": self.name, "status": status,
                     "reason": reason, "error": error, "event": event}
            return orjson.dumps(entry)
        except (orjson.JSONEncodeError, TypeError):
            entry["event"] = raw.decode("utf-8", "replace")
            return orjson.dumps(entry)

    # -- numbers -----------------------------------------------------------------
    def lag(self) -> tuple[int, float]:
        """(events written but not yet delivered, seconds the oldest of them has waited)."""
        head = self.head_seq() if self.head_seq is not None else -1
        events = max(0, _counter(head) - _counter(self.state.position.last_seq))
        if not events:
            return 0, 0.0
        if self._oldest_ms is None:  # no batch in hand (e.g. backing off): look at the next event
            pos = self.state.position
            batch, _ = self._read_batch((pos.segment, pos.offset), None, max_events=1,
                                        max_bytes=PEEK_BYTES)
            self._oldest_ms = batch.oldest_ms if batch is not None else None
            if self._oldest_ms is None:
                return events, 0.0
        return events, max(0.0, self.clock() - self._oldest_ms / 1000)

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
