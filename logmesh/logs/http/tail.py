"""The live tail, /api/v1/tail: a query's new events as server-sent events.

A stream starts with the last ``last`` matches (oldest first), then polls the
engine every TAIL_POLL_SECONDS for events past the generation it has seen; each
poll is a query of its own (a slot, a deadline: http/slots.py). An SSE comment
every TAIL_KEEPALIVE_SECONDS keeps proxies from closing a quiet stream; an error
once the stream is open is said in it (``event: error``), and the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from ... import metrics as prom
from ...metrics import Metrics
from ..query.engine import Engine, QueryError, QueryTimeout
from ..query.execution import cut_event
from ..query.timerange import now_ms
from ..store.duck import duckdb
from .params import DEADLINE, int_param, query_param
from .slots import Busy

log = logging.getLogger("logmesh.logs.api")

MAX_TAIL_LAST = 1_000
TAIL_POLL_SECONDS = 0.2  # a tail looks for new events this often (an event shows within ~0.3 s)
TAIL_KEEPALIVE_SECONDS = 15.0  # an SSE comment this often, so proxies keep the stream open


class LiveTail:
    """The tail streams of one logs process.

    ``call`` runs an engine method as a query of the request (QueryAPI.call: a slot,
    the deadline); ``timeout`` is ``--query-timeout`` (None: none), given to each poll.
    """

    def __init__(self, engine: Engine, call: Callable[..., Awaitable[Any]], *,
                 clock: Callable[[], float], timeout: float | None, metrics: Metrics,
                 worker: str) -> None:
        self.engine = engine
        self.call = call
        self.clock = clock
        self.timeout = timeout
        self.closing = asyncio.Event()
        self.streams = metrics.gauge("logmesh_tail_streams", "Open /api/v1/tail streams.",
                                     ["worker"]).labels(worker)
        self.total = 0  # streams opened

    @property
    def open(self) -> int:
        """Open tail streams."""
        return int(prom.value(self.streams))

    def close(self) -> None:
        """End every stream at its next poll."""
        self.closing.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        node = query_param(request)
        last = int_param(request, "last", 0, 0, MAX_TAIL_LAST)
        timeout = int_param(request, "timeout", 0, 0, 86_400)
        brief = int_param(request, "brief", 0, 0, 1) == 1  # as search's: texts cut, a row opens whole
        snap = await self.call(request, self.engine.refresh)
        gen = snap.gen
        first: list[dict] = []
        if last:
            now = now_ms(self.clock)
            first, _ = await self.call(request, self.engine.search, node, 0, now + 86_400_000, limit=last,
                                       order="desc", now=now)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        self.streams.inc()
        self.total += 1
        deadline = time.monotonic() + timeout if timeout else None
        try:
            await resp.write(b"retry: 1000\n\n")
            await self._send(resp, first[::-1], brief)
            quiet = time.monotonic()
            while not self.closing.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    await asyncio.wait_for(self.closing.wait(), TAIL_POLL_SECONDS)
                    break
                except TimeoutError:
                    pass
                if self.timeout:  # each poll is a query of its own, with its own deadline
                    request[DEADLINE] = time.monotonic() + self.timeout
                try:
                    events, gen = await self.call(request, self.engine.tail, node, gen, now=now_ms(self.clock))
                except Busy:  # no thread for this poll: the next one catches up (by generation)
                    continue
                except (QueryError, QueryTimeout, duckdb.Error) as exc:  # the stream is open: say so in it
                    log.warning("tail stopped: %s", exc)
                    await resp.write(b"event: error\ndata: " + orjson.dumps({"error": str(exc)}) + b"\n\n")
                    break
                if events:
                    await self._send(resp, events, brief)
                    quiet = time.monotonic()
                elif time.monotonic() - quiet > TAIL_KEEPALIVE_SECONDS:
                    await resp.write(b": keepalive\n\n")
                    quiet = time.monotonic()
        except ConnectionError:  # the client went away
            pass
        finally:
            self.streams.dec()
        return resp

    @staticmethod
    async def _send(resp: web.StreamResponse, events: list[dict], brief: bool) -> None:
        if not events:
            return
        out = bytearray()
        for ev in events:
            out += b"id: %d\ndata: " % ev.get("seq", 0)
            out += orjson.dumps(cut_event(ev) if brief else ev)
            out += b"\n\n"
        await resp.write(bytes(out))
