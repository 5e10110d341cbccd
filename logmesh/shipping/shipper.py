"""Ship every request a service receives to the ``logs`` service.

The request path only appends ``(n, ts, raw)`` to a deque (well under a
microsecond, bench/shipper.py); everything else -- encoding, batching,
sending, waiting for acknowledgements, reconnecting, spooling -- happens in
a task off that path.

Three modes:

* ``auto`` (default): what ``ack`` does when the logs node answers, what
  ``book`` does when it does not. Each new connection first sends a probe, an
  empty acked batch: a logmesh logs service answers it once its store is
  durable; the book's Node logs service answers nothing, ever (it stores the
  probe as one line of its log.txt). No answer within ``probe_timeout``, the
  connection still open: that connection speaks ``book`` packets, said once
  in the log; an answer that comes later turns acked batches back on. The
  probe goes first because a batch is never sent into silence: its
  ``ack_timeout`` would drop the connection and resend it, for ever.
* ``ack``: batches of events ``[n, ts, raw]`` in the logmesh
  extension packet; a batch stays in flight until the logs service says it is
  durable, and is resent after a reconnect (the store drops resends by
  ``event.id``). Every batch must be answered: one over ``batch_bytes`` is
  sent in halves (the logs service skips a packet over its
  ``--max-packet-size``), a 413 from the service splits it again, and a batch
  not answered within ``ack_timeout`` costs the connection, so it is resent
  on a new one. An event that can never be stored -- not encodable, alone
  over ``batch_bytes``, or named in a reply's ``rejected`` -- is counted as
  ``rejected`` and logged, never retried.
* heartbeats: a shipper that speaks ``ack`` and has written nothing for
  ``HEARTBEAT_SECONDS`` sends the probe's packet again, an empty acked batch, so the
  logs service tells a quiet service from a dead or frozen one (logs/health.py).
  Every batch names the node the shipper serves (``node: [host, port]``, the
  service it is attached to) and its heartbeat interval; older logs services
  ignore both.
* ``book``: the chapter's packets ``{"uri":"/logs","method":"POST","key":0,
  "params":"<raw>"}`` and nothing else (the book's service writes each packet
  whole to its log.txt), fire and forget; printed when no logs service is
  known. Spooled events are sent the same way.

Past 500 lines on purpose: the queue, the batches in flight, the spool and the
probe are one state machine over one connection (a reconnect requeues the
batches in flight, a probe's answer switches the mode the pump sends in, an
ack settles the spool); split, each part would reach into the others' state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from .. import access_log
from ..guard import RateLimitedLog
from ..mesh.client import ReconnectingClient
from ..protocol import Node, encode, escape_frame
from ..terminal import shown

log = logging.getLogger("logmesh.shipper")

DEFAULT_MAX_QUEUE = 100_000  # events held in memory; past this the oldest are spooled or dropped
DEFAULT_BATCH_EVENTS = 2000  # events per batch packet
DEFAULT_BATCH_BYTES = 512 * 1024  # bytes per batch packet: half the logs service's --max-packet-size
DEFAULT_ACK_TIMEOUT = 30.0  # seconds a batch waits for its answer before it is resent elsewhere
DEFAULT_MAX_INFLIGHT = 8  # unacknowledged batches per connection
DEFAULT_PROBE_TIMEOUT = 2.0  # seconds a new connection waits for its probe's answer (auto mode)
# Seconds a batch waits to fill: one write per 50 ms, not one per request. 50 and not 10: the
# logs service pays per batch (decode, group commit, ack), and at 2-3k requests/s 50 ms took
# 15-35% off its CPU per request (bench/notes/mesh.md) for 40 ms more before an event is
# searchable. Events waiting here are not acknowledged yet; close() still sends or spools them.
DEFAULT_LINGER = 0.05
# A linger ends early once this many events wait: the logs service handles a batch in one run
# of its loop (~2.8 µs an event), and on 2 cores the request path waits behind that run. At
# ~33k requests/s a 50 ms linger was ~850 events a shipper: runs of 4-6 ms, and the mesh's
# p99 4.2 ms against 0.65 without shipping. 256 keeps a run under ~1 ms (GET 16's p99 1.5 ms)
# for ~2 µs more of the logs service's CPU a request (150 µs a batch); below ~5k events/s a
# shipper never reaches it and keeps the wall-clock tick (docs/benchmarks.md, "flush22").
FLUSH_EVENTS = 256
BOOK_BUFFER_BYTES = 4 * 1024 * 1024  # book packets written but not yet taken by the socket
BOOK_RETRY_SECONDS = 0.05  # then the pump looks again this much later
HEARTBEAT_SECONDS = 5.0  # quiet this long (nothing written), an acked shipper sends a heartbeat
STORE_RETRY_SECONDS = 2.0  # pause after the logs service answered 503/507 (its disk is full)
WARN_EVERY = 10.0  # seconds between "dropping" warnings
MODES = ("auto", "ack", "book")


class Shipper:
    def __init__(self, service: str, *, mode: str = "auto", max_queue: int = DEFAULT_MAX_QUEUE,
                 batch_events: int = DEFAULT_BATCH_EVENTS, max_inflight: int = DEFAULT_MAX_INFLIGHT,
                 spool: Any = None, logs_addr: tuple[str, int] | None = None,
                 linger: float = DEFAULT_LINGER, token: str | None = None,
                 ssl: Any = None, batch_bytes: int = DEFAULT_BATCH_BYTES,
                 ack_timeout: float = DEFAULT_ACK_TIMEOUT,
                 probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
                 node: tuple[str, int] | Callable[[], tuple[str, int] | None] | None = None,
                 heartbeat: float = HEARTBEAT_SECONDS) -> None:
        """``token``: the logs service's write token (sent once per connection, in the hello);
        ``ssl``: an ``SSLContext`` that verifies the logs service (or True: the system's CAs);
        ``batch_bytes``: the most bytes of a batch packet, below the service's
        ``--max-packet-size``; ``ack_timeout``: seconds before an unanswered batch is resent;
        ``probe_timeout``: seconds of silence after which ``auto`` sends book packets;
        ``node``: the ``(host, port)`` of the mesh node this shipper serves, or a callable giving
        it at start (``attach`` sets it to the service's); ``heartbeat``: seconds of quiet
        before an empty batch says the shipper is alive."""
        if mode not in MODES:
            raise ValueError(f"unknown shipping mode {mode!r}; use {', '.join(MODES)}")
        if batch_bytes < 1024 or ack_timeout <= 0 or probe_timeout <= 0 or heartbeat <= 0:
            raise ValueError("batch_bytes must be at least 1024, ack_timeout, probe_timeout and "
                             "heartbeat positive")
        self.service = service
        self.mode = mode
        # How the current connection ships: "ack", "book", or None while auto probes it.
        self.speaks: str | None = None if mode == "auto" else mode
        self.probe_timeout = probe_timeout
        self._probe_key: int | None = None  # the probe of this connection, until answered
        self._probe_timer: asyncio.TimerHandle | None = None
        self._told: set[tuple[str, int]] = set()  # logs nodes whose silence was logged
        # Logs nodes that answered a probe: logmesh's, whose later silence is a busy node, not
        # the book's, so auto waits for them (queue, then spool) and never fires and forgets.
        self._answered: set[tuple[str, int]] = set()
        self.instance = f"{service}-{uuid.uuid4().hex[:12]}"  # new per boot: numbers restart at 1
        self.max_queue = max_queue
        self.batch_events = batch_events
        self.batch_bytes = batch_bytes
        self.ack_timeout = ack_timeout
        self.max_inflight = max_inflight
        self.spool = spool
        self.linger = linger
        self.token = token
        self.ssl = ssl
        # (n, ts_ms, raw bytes or text, extra?) or (n, ts_ms, access row): a tuple, encoded as
        # it is into its batch (a row as its record to a node that has not said it reads rows)
        self.queue: deque[tuple | list] = deque()
        self._rows = False  # this connection's logs node said it reads access rows
        self._n = itertools.count(1)
        self.inflight: dict[int, list[list]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}  # key -> its ack timeout
        # [key, spool position after it (None: not the last batch of a take), answered]
        self._spool_inflight: deque[list] = deque()
        self._keys = itertools.count(1)
        self.client: ReconnectingClient | None = None
        self.logs_nodes: list[tuple[str, int]] = []
        self._fixed_addr = logs_addr
        self._wake: asyncio.Event | None = None
        # The request path's wake-up set since the sending task last cleared it: ship and
        # ship_record then skip asyncio.Event.set, a Python call, for every event of a linger.
        self._woken = False
        self._lingering: asyncio.Future | None = None  # the sending task's linger
        self._flush_events = min(FLUSH_EVENTS, batch_events)  # waiting, they end the linger
        self._task: asyncio.Task | None = None
        self._last_warn = 0.0
        self._warn_rejected = RateLimitedLog(log)
        self._hold_until = 0.0  # no batches before this (monotonic): the logs service said 507
        self._node_of = node  # resolved at start: a service knows its port once it listens
        self.heartbeat = heartbeat
        self.heartbeats = 0  # heartbeats sent
        self._last_write = 0.0  # monotonic time of the last packet written to the logs node
        self._beat: asyncio.Task | None = None
        # Every batch's params but its events; the node is added at start.
        self._head: dict[str, Any] = {"service": service, "instance": self.instance,
                                      "heartbeat": heartbeat}
        self.stats = {"shipped": 0, "sent": 0, "acked": 0, "dropped": 0, "resent": 0,
                      "printed": 0, "spooled": 0, "rejected": 0}

    # -- the request path --------------------------------------------------------
    def ship(self, raw: bytes | tuple, packet: Any = None, conn: Any = None) -> None:
        """Hand one received request packet to the shipper (the service's hook), or, as
        ``ship_row``, the gateway's access log as a row of its values (access_log.py says why:
        the logs node builds its record, or the pump does for a node that does not say it can)."""
        self.queue.append((next(self._n), time.time_ns() // 1_000_000, raw))
        self.stats["shipped"] += 1
        if len(self.queue) > self.max_queue:
            self._overflow()
        if not self._woken:
            self._wake_request_path()
        elif len(self.queue) == self._flush_events:
            self._flush_now()

    ship_row = ship  # a row takes a packet's place in the queue: (n, ts_ms, row)

    def ship_record(self, message: str, extra: dict) -> None:
        """A log record (not a request packet): message plus ECS fields."""
        self.queue.append((next(self._n), time.time_ns() // 1_000_000, message, extra))
        self.stats["shipped"] += 1
        if len(self.queue) > self.max_queue:
            self._overflow()
        if not self._woken:
            self._wake_request_path()
        elif len(self.queue) == self._flush_events:
            self._flush_now()

    def _overflow(self) -> None:
        excess = len(self.queue) - self.max_queue
        if self.spool is not None and self._spill(excess):
            return
        for _ in range(excess):
            self.queue.popleft()
        self.stats["dropped"] += excess
        now = time.monotonic()
        if now - self._last_warn > WARN_EVERY:
            self._last_warn = now
            log.warning("%s: log queue full (%d); dropped %d event(s) so far",
                        self.service, self.max_queue, self.stats["dropped"])

    def collect_metrics(self, ex: Any) -> None:
        """The shipper's numbers, for a /metrics page (a logmesh.metrics.Exposition).

        Read from ``stats`` when the page is asked for, not counted in prometheus-client
        counters: ``ship`` runs on every request of the service (a dict increment, not a
        counter's lock), and a shipper is in one process, so nothing needs merging."""
        labels = {"service": self.service}
        ex.add("logmesh_shipper_queued_events", "gauge", "Events waiting in memory.",
               len(self.queue), labels)
        ex.add("logmesh_shipper_inflight_batches", "gauge", "Batches sent, not yet acknowledged.",
               len(self.inflight), labels)
        now = self.speaks or "unknown"
        ex.add_many("logmesh_shipper_mode", "gauge",
                    "1 for how the shipper speaks to its logs node now: ack (acknowledged batches), "
                    "book (the chapter's packets, fire and forget), unknown (not connected, or "
                    "probing).", (({**labels, "mode": m}, int(m == now))
                                  for m in ("ack", "book", "unknown")))
        for key, help_text in (("shipped", "Events handed to the shipper."),
                               ("sent", "Events written to the logs service (resends included)."),
                               ("acked", "Events the logs service acknowledged as durable."),
                               ("spooled", "Events written to the disk spool."),
                               ("resent", "Events sent again after a lost connection."),
                               ("dropped", "Events lost: queue full with no spool, or refused."),
                               ("rejected", "Events never stored: not encodable, alone over "
                                            "batch_bytes, or rejected by the logs service."),
                               ("printed", "Events printed for want of a logs service (book mode).")):
            ex.add(f"logmesh_shipper_{key}_events_total", "counter", help_text, self.stats[key], labels)
        if self.spool is not None:
            ex.add("logmesh_shipper_spool_dropped_events_total", "counter",
                   "Spooled events dropped, oldest first, when the spool was full.",
                   self.spool.dropped, labels)
            ex.add("logmesh_shipper_spool_pending_bytes", "gauge", "Spooled bytes not yet sent.",
                   self.spool.pending_bytes(), labels)

    # -- wiring ------------------------------------------------------------------
    def attach(self, service: Any) -> None:
        """Install on a mesh Service: its requests are shipped, its node list followed."""
        service.on_request = self.ship
        service.node_listeners.append(self.on_nodes)
        service.shipper = self  # started and flushed with the service
        if self._node_of is None:
            self._node_of = lambda: (service.host, service.port)

    def on_nodes(self, nodes: list[Node]) -> None:
        """Follow the distributor: use a ``logs`` node, move when it goes away."""
        self.logs_nodes = list(dict.fromkeys(n.addr for n in nodes if n.name == "logs"))
        current = (self.client.host, self.client.port) if self.client else None
        if current is not None and current in self.logs_nodes:
            return
        if self.logs_nodes:
            self._connect(self.logs_nodes[0])

    def _connect(self, addr: tuple[str, int]) -> None:
        if self.client is not None:
            self.client.abort()
            self._requeue_inflight()
            self._forget_probe()
        log.info("%s: shipping logs to %s:%d", self.service, *addr)
        self.client = ReconnectingClient(*addr, name=f"{self.service}->logs",
                                         on_packet=self._on_reply, on_connect=self._on_connect,
                                         on_disconnect=self._on_disconnect, max_queue_bytes=0,
                                         token=self.token, ssl=self.ssl)
        self.client.start()

    def start(self) -> None:
        node = self._node_of() if callable(self._node_of) else self._node_of
        if node is not None:
            self._head["node"] = [str(node[0]), int(node[1])]
        self._wake, self._woken = asyncio.Event(), False
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="shipper")
        self._beat = loop.create_task(self._heartbeats(), name="shipper-heartbeat")
        if self._fixed_addr is not None:
            self._connect(self._fixed_addr)

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (waiting up to ``timeout`` for acks), then stop."""
        deadline = time.monotonic() + timeout
        while (self.queue or self.inflight) and self.client is not None \
                and self.client.is_connected and time.monotonic() < deadline:
            if self._wake is not None:
                self._wake.set()
            await asyncio.sleep(0.02)
        for task in (self._task, self._beat):
            if task is not None:
                task.cancel()
        self._cancel_timers()
        if self.client is not None:
            await self.client.close()
        if self.spool is not None:
            self._requeue_inflight()
            # spool records carry their instance: the resend keeps its event.id
            if not self._spill():  # the disk is full: what is still queued ends with us
                self.stats["dropped"] += len(self.queue)
                log.error("%s: %d event(s) could not be spooled at exit (the disk is full): lost",
                          self.service, len(self.queue))
                self.queue.clear()
            self.spool.close()

    # -- the sending task -----------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._woken = False
            if len(self.queue) < self._flush_events:
                # Let more requests arrive (fewer, bigger writes), until the next multiple of
                # the linger on the wall clock: every shipper of a host sends at the same
                # instants, so their batches reach the logs service together (one wake-up,
                # often one group commit) instead of scattered over the linger; or until
                # FLUSH_EVENTS wait (_flush_now).
                linger = self.linger
                await self._linger_wait(linger - time.time() % linger if linger > 0 else 0)
            try:
                self._pump()
            except Exception:
                log.exception("%s: shipper error", self.service)

    def _spill(self, count: int | None = None) -> bool:
        """Move the oldest ``count`` (default: all) queued events to the disk spool; False when
        the disk refused them (full): they stay queued, in front, as they were."""
        n = len(self.queue) if count is None else min(count, len(self.queue))
        if n and self.spool is not None:
            inst = self.instance
            taken = [self.queue.popleft() for _ in range(n)]
            records = [[inst, e[0], e[1], _text(e[2]), e[3] if len(e) > 3 else None]
                       for e in map(_as_record, taken)]
            try:
                try:
                    self.stats["spooled"] += self.spool.put(records)
                except orjson.JSONEncodeError:  # the error path: spool all but what cannot be encoded
                    self.stats["spooled"] += self.spool.put([r for r in records if self._encodable(r)])
            except OSError as exc:
                # Found from outside: on a full disk these events left the queue, were neither
                # spooled nor counted dropped, and a traceback was logged at every pump.
                self.queue.extendleft(reversed(taken))
                self._warn_rejected.warning("%s: cannot spool %d event(s) (%s); they wait in "
                                            "memory", self.service, n, exc)
                return False
        return True

    def _pump(self) -> None:
        client = self.client
        connected = client is not None and client.is_connected
        if not connected:
            if self.mode == "book" and client is None and self.queue:
                self._print_queue()
            elif self.spool is not None and self.queue:
                self._spill()  # unreachable: the disk keeps them across our own restarts
            return
        if self.speaks is None:
            return  # auto: the probe of this connection is not answered yet; events wait
        wait = self._hold_until - time.monotonic()
        if wait > 0:  # the logs service cannot store now (its disk is full): hold, then retry
            asyncio.get_running_loop().call_later(wait, self._wake_up)
            return
        if self.speaks == "book":
            self._send_book(client)
            return
        spool = self.spool
        if spool is not None and (spool.has_pending or self._spool_inflight):
            self._spill()  # keep order: older spooled events go first, so new ones queue behind
            while spool.has_pending and len(self.inflight) < self.max_inflight:
                records, pos = spool.take(self.batch_events)
                if not records:
                    break
                keys = self._send(client, [[r[1], r[2], r[3], r[4], r[0]] for r in records])
                # The spool may forget a take once all its batches are answered: the last has pos.
                self._spool_inflight.extend([k, None, False] for k in keys[:-1])
                self._spool_inflight.append([keys[-1] if keys else None, pos, not keys])
            self._commit_spool()  # a take whose events were all rejected here
            return
        while self.queue and len(self.inflight) < self.max_inflight:
            if len(self.queue) <= self.batch_events:  # the usual linger's worth: one C call
                batch = list(self.queue)
                self.queue.clear()
            else:
                batch = [self.queue.popleft() for _ in range(self.batch_events)]
            self._send(client, batch)
        if self.queue and spool is not None and len(self.queue) > self.batch_events * self.max_inflight:
            self._spill()  # slower than the traffic: let the disk hold the backlog

    def _send(self, client: ReconnectingClient, batch: list[list]) -> list[int]:
        """Send ``batch`` as one packet or, while a packet is over ``batch_bytes``, in halves.

        One encode per packet, as the common case needs; only a batch over the
        limit pays for more. An event that cannot be encoded, or alone is over
        the limit, is rejected here: the logs service would skip or refuse it.
        """
        keys: list[int] = []
        todo = [batch]
        while todo:
            part = todo.pop()
            key = next(self._keys)
            try:
                data = _encode_batch({"uri": "/logs", "method": "POST", "key": key, "ack": True,
                                      "params": {**self._head, "events": part if self._rows
                                                 else list(map(_as_record, part))}})
            except orjson.JSONEncodeError as exc:
                data, why = None, f"cannot be encoded ({exc})"
            else:
                why = f"{len(data)} bytes, over the batch limit of {self.batch_bytes}"
            if data is not None and len(data) <= self.batch_bytes:
                client.write(data)
                self._last_write = time.monotonic()
                self.inflight[key] = part
                self._timers[key] = asyncio.get_running_loop().call_later(
                    self.ack_timeout, self._ack_overdue, key)
                self.stats["sent"] += len(part)
                keys.append(key)
            elif len(part) > 1:
                half = len(part) // 2
                todo += [part[half:], part[:half]]  # the first half goes first
            else:
                self._reject(1, f"event {part[0][0]}: {why}")
        return keys

    def _encodable(self, record: list) -> bool:
        try:
            orjson.dumps(record)
        except orjson.JSONEncodeError as exc:
            self._reject(1, f"event {record[1]}: cannot be encoded ({exc})")
            return False
        return True

    def _reject(self, count: int, why: str) -> None:
        """Events that can never be stored: counted and logged (rate-limited), never retried."""
        self.stats["rejected"] += count
        self._warn_rejected.warning("%s: %d log event(s) rejected, not stored (%d so far): %s",
                                    self.service, count, self.stats["rejected"], why)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _linger_wait(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)`` that :meth:`_flush_now` ends early."""
        loop = asyncio.get_running_loop()
        self._lingering = done = loop.create_future()
        timer = loop.call_later(seconds, _resolve, done)
        try:
            await done
        finally:
            timer.cancel()
            self._lingering = None

    def _flush_now(self) -> None:
        done = self._lingering
        if done is not None:
            _resolve(done)

    def _wake_request_path(self) -> None:
        if self._wake is not None:
            self._wake.set()
            self._woken = True

    def _ack_overdue(self, key: int) -> None:
        """No answer in ``ack_timeout``: drop the connection, so every batch in flight is resent
        on a new one (the store drops what it already has by ``event.id``)."""
        self._timers.pop(key, None)
        conn = self.client.conn if self.client is not None else None
        if key in self.inflight and conn is not None and conn.transport is not None:
            log.warning("%s: no answer to a batch of %d event(s) in %gs; reconnecting to resend it",
                        self.service, len(self.inflight[key]), self.ack_timeout)
            conn.transport.abort()

    def _cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None

    # -- auto: probing a new connection ----------------------------------------------
    def _probe(self, client: ReconnectingClient) -> None:
        """Ask the new connection whether it acknowledges: an empty batch, answered at once by
        a logmesh logs service; the book's service stores it as one line and says nothing."""
        self.speaks = None
        self._probe_key = self._write_empty_batch(client)
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        self._probe_timer = asyncio.get_running_loop().call_later(
            self.probe_timeout, self._probe_unanswered, client, client.conn)

    def _write_empty_batch(self, client: ReconnectingClient) -> int:
        """The probe, and the heartbeat: an empty acked batch; returns its key."""
        key = next(self._keys)
        client.write(encode({"uri": "/logs", "method": "POST", "key": key, "ack": True,
                             "params": {**self._head, "events": []}}))
        self._last_write = time.monotonic()
        return key

    async def _heartbeats(self) -> None:
        """After ``heartbeat`` seconds with nothing written, an empty batch (speaking ``ack``
        only: the book's logs service would store each one). Its answer is ignored."""
        while True:
            wait = self._last_write + self.heartbeat - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            client = self.client
            if client is not None and client.is_connected and self.speaks == "ack":
                self._write_empty_batch(client)
                self.heartbeats += 1
            else:
                self._last_write = time.monotonic()  # look again a heartbeat later

    def _forget_probe(self) -> None:
        """The connection is gone: auto knows nothing of the next one (its timer is cancelled
        with the batches' timers)."""
        if self.mode == "auto":
            self.speaks = None
            self._probe_key = None

    def _probe_unanswered(self, client: ReconnectingClient, conn: Any) -> None:
        self._probe_timer = None
        if client is not self.client or client.conn is not conn or not client.is_connected:
            return  # that connection is gone: the next one is probed again
        addr = (client.host, client.port)
        if addr in self._answered:
            log.warning("%s: logs node at %s:%d has not answered the probe in %.1f s; it "
                        "acknowledged before, so events wait for its answer", self.service,
                        *addr, self.probe_timeout)
            return
        self.speaks = "book"
        if addr not in self._told:
            self._told.add(addr)
            log.warning("%s: logs node at %s:%d does not acknowledge (the book's logs service?); "
                        "shipping book packets, fire and forget", self.service, *addr)
        if self._wake is not None:
            self._wake.set()

    def _probe_answered(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None
        self._probe_key = None
        if self.client is not None:
            self._answered.add((self.client.host, self.client.port))
        if self.speaks == "book" and self.client is not None:
            log.warning("%s: logs node at %s:%d answered after all; shipping acknowledged "
                        "batches again", self.service, self.client.host, self.client.port)
        self.speaks = "ack"
        if self._wake is not None:
            self._wake.set()

    # -- book packets ------------------------------------------------------------------
    def _send_book(self, client: ReconnectingClient) -> None:
        """The queue, and first what waits in the spool, as the chapter's packets: nothing is
        answered, so the spool forgets what is written at once. Nothing is answered either
        to slow us down: past ``BOOK_BUFFER_BYTES`` unsent, events wait (then spill to the
        spool) and the pump looks again shortly."""
        transport = client.conn.transport if client.conn is not None else None

        def full() -> bool:
            return transport is not None and transport.get_write_buffer_size() > BOOK_BUFFER_BYTES

        spool = self.spool
        if spool is not None and spool.has_pending:
            self._spill()  # keep order: older spooled events go first
            while spool.has_pending and not full():
                records, pos = spool.take(self.batch_events)
                self._write_book(client, [r[3] for r in records])
                spool.commit(pos)
        while self.queue and not full() and not (spool is not None and spool.has_pending):
            batch = [self.queue.popleft() for _ in range(min(self.batch_events, len(self.queue)))]
            self._write_book(client, [_text(e[2]) for e in batch])
        if full() and self._wake is not None:
            asyncio.get_running_loop().call_later(BOOK_RETRY_SECONDS, self._wake.set)

    def _write_book(self, client: ReconnectingClient, texts: list[str]) -> None:
        parts = []
        for text in texts:
            try:
                parts.append(orjson.dumps({"uri": "/logs", "method": "POST", "key": 0,
                                           "params": text}))
            except orjson.JSONEncodeError as exc:  # a lone surrogate in a record's message
                self._reject(1, f"cannot be encoded ({exc})")
        if parts:
            client.write(b"".join(map(escape_frame, parts)))
            self._last_write = time.monotonic()
            self.stats["sent"] += len(parts)

    def _print_queue(self) -> None:
        while self.queue:
            # the book: no logs service known; shown: a request cannot forge the terminal
            print(shown(_text(self.queue.popleft()[2])), flush=True)
            self.stats["printed"] += 1

    def _on_reply(self, packet: dict) -> None:
        key = packet.get("key")
        features = packet.get("features")  # in a logmesh node's acks (the probe's too)
        if features is not None:
            self._rows = isinstance(features, list) and access_log.FEATURE in features
        if key == self._probe_key and key is not None:
            self._probe_answered()
            return
        batch = self.inflight.pop(key, None)  # type: ignore[arg-type]
        if batch is None:
            return
        timer = self._timers.pop(key, None)  # type: ignore[arg-type]
        if timer is not None:
            timer.cancel()
        code = packet.get("errorcode")
        halves: list[int] = []
        if code == 0:
            rejected = [r for r in packet.get("rejected") or ()
                        if isinstance(r, list) and r and isinstance(r[0], int) and 0 <= r[0] < len(batch)]
            self.stats["acked"] += len(batch) - len(rejected)
            if rejected:
                self._reject(len(rejected), "the logs service rejected " + ", ".join(
                    f"event {batch[r[0]][0]} ({r[1] if len(r) > 1 else '?'})" for r in rejected[:10]))
        elif code == 413 and len(batch) > 1 and self.client is not None:
            # Over the service's packet limit (lower than our batch_bytes): try it in halves.
            half = len(batch) // 2
            halves = self._send(self.client, batch[:half]) + self._send(self.client, batch[half:])
        elif code == 413:
            self._reject(1, f"event {batch[0][0]}: {packet.get('errormessage')}")
        elif code in (503, 507):
            # Not stored, and said so at once: keep the batch in flight and drop the connection,
            # so it is resent with everything else in flight (the store drops what it has by
            # event.id), after a pause; meanwhile events wait in memory, then in the spool.
            self.inflight[key] = batch
            self._hold_until = time.monotonic() + STORE_RETRY_SECONDS
            self._warn_rejected.warning("%s: the logs service cannot store now (%s); retrying in %gs",
                                        self.service, packet.get("errormessage"), STORE_RETRY_SECONDS)
            conn = self.client.conn if self.client is not None else None
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            return
        else:
            log.error("%s: logs service refused a batch: %s", self.service, packet.get("errormessage"))
            self.stats["dropped"] += len(batch)
        if self._spool_inflight:
            self._settle_spool(key, halves)  # type: ignore[arg-type]
        if self._wake is not None:
            self._wake.set()

    def _settle_spool(self, key: int, halves: list[int]) -> None:
        """Mark a spool batch answered, or replaced by the batches it was split into."""
        for i, entry in enumerate(self._spool_inflight):
            if entry[0] == key:
                if halves:
                    del self._spool_inflight[i]
                    for j, k in enumerate(halves):
                        last = j == len(halves) - 1
                        self._spool_inflight.insert(i + j, [k, entry[1] if last else None, False])
                else:
                    entry[2] = True
                break
        self._commit_spool()

    def _commit_spool(self) -> None:
        """Answered in order: the spool may forget everything up to the last answered take."""
        pos = None
        while self._spool_inflight and self._spool_inflight[0][2]:
            pos = self._spool_inflight.popleft()[1] or pos
        if pos is not None and self.spool is not None:
            self.spool.commit(pos)

    def _on_connect(self, client: ReconnectingClient) -> None:
        self._rows = False  # until this node's first answer says so
        if self.mode == "auto":
            self._probe(client)
        if self._wake is not None:
            self._wake.set()

    def _on_disconnect(self, client: ReconnectingClient) -> None:
        self._requeue_inflight()
        self._forget_probe()
        if len(self.logs_nodes) > 1:  # fail over to the next logs node
            i = self.logs_nodes.index((client.host, client.port)) if (
                client.host, client.port) in self.logs_nodes else -1
            nxt = self.logs_nodes[(i + 1) % len(self.logs_nodes)]
            asyncio.get_running_loop().call_soon(self._connect, nxt)

    def _requeue_inflight(self) -> None:
        """Unacknowledged batches go back to the front of the queue (or spool), in order."""
        self._cancel_timers()
        if self._spool_inflight:
            for key, _, _ in self._spool_inflight:
                self.inflight.pop(key, None)
            self._spool_inflight.clear()
            if self.spool is not None:
                self.spool.rewind()
        if not self.inflight:
            return
        batches = [self.inflight[k] for k in sorted(self.inflight)]
        self.inflight.clear()
        for batch in reversed(batches):
            self.queue.extendleft(reversed(batch))
            self.stats["resent"] += len(batch)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _encode_batch(packet: dict) -> bytes:
    """``protocol.encode`` for a batch whose events are queued as they came: a request
    packet's bytes become its text in the encoder's own pass (``default``), not in a list
    built per event first."""
    return escape_frame(orjson.dumps(packet, default=_bytes_text))


def _bytes_text(obj: Any) -> str:
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _text(raw: bytes | str | tuple) -> str:
    """An event's text: a request packet's, a record's message, an access row's message."""
    if isinstance(raw, tuple):
        return access_log.record(raw)[0]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _as_record(event: tuple | list) -> tuple | list:
    """A queued event as a node that reads no access rows takes it: a row as its record."""
    raw = event[2]
    return (event[0], event[1], *access_log.record(raw)) if raw.__class__ is tuple else event
