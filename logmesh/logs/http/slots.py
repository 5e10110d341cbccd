"""Query admission: which query runs next on the query threads, and which is refused.

The query limits (docs/security.md, "Query limits"), against one client starving the
others (issue 15 #7: 8 heavy queries took normal searches from 81 ms to 19 s):

* a query's deadline (``--query-timeout``) runs from its arrival, so waiting for
  one of the QUERY_THREADS threads (http/query_api.py) counts; a query still waiting
  at its deadline answers 503 with Retry-After, and one running is interrupted
  (DuckDB ``interrupt()``), which frees its thread;
* a query whose cost (kql.cost) is past MAX_QUERY_TERMS or MAX_SCAN_TERMS is
  refused up front (400, saying which and why: http/params.py);
* a client (its read token when the service has tokens, else its address) runs
  at most CLIENT_THREADS queries at once; the rest wait their turn, and past
  CLIENT_QUERIES running or waiting it is answered 429 with Retry-After;
* heavy queries (more than HEAVY_SCAN_TERMS scan terms) hold at most all threads
  but one, so a normal query never waits for heavy ones to end; they run in their
  own threads at a lower CPU priority (HEAVY_NICE, http/query_api.py), after a
  refresh of the live segments done for them at the normal priority.

:class:`QuerySlots` keeps the count (on the event loop); http/query_api.py takes a
slot before it hands a query to a thread, and gives it back when the thread is free.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ... import metrics as prom
from ...metrics import Exposition, Metrics, number

# The two per-client numbers, QueryAPI's client_threads and client_queries by default.
CLIENT_THREADS = 2  # queries of one client running at once; the web UI sends 3-4 together
CLIENT_QUERIES = 8  # queries of one client running or waiting; past it 429


class Busy(Exception):
    """No thread for this query: 429 (its client is at its limit) or 503 (its deadline passed
    while it waited)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(eq=False)
class _Waiter:
    client: str
    heavy: bool
    future: asyncio.Future


@dataclass
class QuerySlots:
    """Which query runs next on the ``threads`` query threads (event-loop side only).

    First come, first served, except that a waiter is passed over while its client
    already runs ``per_client`` queries, or while it is heavy and heavy queries hold
    ``threads - 1`` threads. A slot is taken before a query is handed to the pool, so
    the pool never queues: all waiting happens here, where the deadline can end it.
    """

    threads: int
    per_client: int
    max_per_client: int  # running + waiting
    free: int = 0
    heavy_running: int = 0
    running: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    queue: list[_Waiter] = field(default_factory=list)
    metrics: Metrics | None = None  # where its counters live (a registry of its own if None)
    worker: str = "0"

    def __post_init__(self) -> None:
        self.free = self.threads
        self.heavy_max = max(1, self.threads - 1)
        m = self.metrics or Metrics()
        refused = m.counter("logmesh_query_refused_total",
                            "Queries refused with 429 or 503 before they ran, by reason.",
                            ["worker", "reason"])
        self.refused_client = refused.labels(self.worker, "client")
        self.refused_waiting = refused.labels(self.worker, "waiting")
        self.wait_seconds = m.counter("logmesh_query_wait_seconds_total",
                                      "Time queries waited for a query thread.",
                                      ["worker"]).labels(self.worker)

    @property
    def counters(self) -> dict[str, float]:
        """The counts, read from the metrics."""
        return {"refused_client": number(prom.value(self.refused_client)),
                "refused_waiting": number(prom.value(self.refused_waiting)),
                "wait_seconds": prom.value(self.wait_seconds)}

    def add_metrics(self, ex: Exposition, labels: dict[str, str]) -> None:
        """The gauges of now (published, not counted)."""
        ex.add("logmesh_queries_running", "gauge", "Queries on a query thread now.",
               self.threads - self.free, labels)
        ex.add("logmesh_queries_waiting", "gauge", "Queries waiting for a query thread.",
               len(self.queue), labels)

    def _may_run(self, client: str, heavy: bool) -> bool:
        return (self.free > 0 and self.running.get(client, 0) < self.per_client
                and (not heavy or self.heavy_running < self.heavy_max))

    def _take(self, client: str, heavy: bool) -> None:
        self.free -= 1
        self.running[client] = self.running.get(client, 0) + 1
        self.heavy_running += heavy

    def release(self, client: str, heavy: bool) -> None:
        self.free += 1
        self.heavy_running -= heavy
        n = self.running[client] - 1
        if n:
            self.running[client] = n
        else:
            del self.running[client]
        self._grant()

    def _grant(self) -> None:
        for w in list(self.queue):
            if self.free <= 0:
                break
            if w.future.done():  # gave up (deadline, cancelled)
                self.queue.remove(w)
            elif self._may_run(w.client, w.heavy):
                self.queue.remove(w)
                self._take(w.client, w.heavy)
                w.future.set_result(None)

    def enter(self, client: str) -> None:
        """Count a query of ``client`` in flight, or refuse it (429) past its limit."""
        n = self.in_flight.get(client, 0)
        if n >= self.max_per_client:
            self.refused_client.inc()
            raise Busy(f"this client already has {n} queries running or waiting, the most one "
                       "client may have: wait for their answers, then send more", 429)
        self.in_flight[client] = n + 1

    def leave(self, client: str) -> None:
        n = self.in_flight[client] - 1
        if n:
            self.in_flight[client] = n
        else:
            del self.in_flight[client]

    async def acquire(self, client: str, heavy: bool, deadline: float | None) -> None:
        """Wait for a thread until ``deadline`` (then Busy 503); the caller must ``release``."""
        w = _Waiter(client, heavy, asyncio.get_running_loop().create_future())
        self.queue.append(w)
        self._grant()  # first come, first served among those that may run now
        if w.future.done():
            return
        t0 = time.monotonic()
        try:
            if deadline is None:
                await asyncio.shield(w.future)
            else:
                await asyncio.wait_for(asyncio.shield(w.future), max(0.0, deadline - t0))
        except (TimeoutError, asyncio.CancelledError) as exc:
            if w.future.done() and not w.future.cancelled():  # granted just now: give it back
                self.release(client, heavy)
            else:
                w.future.cancel()
                if w in self.queue:
                    self.queue.remove(w)
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.refused_waiting.inc()
            raise Busy(f"every query thread stayed busy for {time.monotonic() - t0:.1f}s, this "
                       "query's whole time limit (--query-timeout): retry in a moment, or narrow "
                       "the query or the time range", 503) from None
        finally:
            self.wait_seconds.inc(time.monotonic() - t0)
