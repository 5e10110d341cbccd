"""Book-protocol ingest: ``¶``-framed log packets over TCP.

Two kinds of packet arrive here:

* the book's ``{"uri":"/logs","method":"POST","key":0,"params":"<raw packet>"}``
  (from Node or Python services) -- stored, and **never answered**: the
  book's Node services drop their log connection on any data received;
* the logmesh extension ``{"uri":"/logs","method":"POST","key":K,"ack":true,
  "params":{"service":..,"instance":..,"events":[[n, ts, raw, extra], ...]}}``
  -- answered ``{"key":K,"errorcode":0,"acked":N,"features":[...]}`` once the events are
  durable. An event's ``raw`` may be the gateway's access log as a row of its values
  (logmesh/access_log.py), which the features say this service reads.

Every acked batch is answered, so a shipper never holds it in flight for
ever: ``acked`` counts the events stored or already stored, and
``"rejected":[[i, "reason"], ...]`` names by their index in the batch the
events no reader could read back (``common.Rejected``), nested too deep for
msgspec, or of the wrong shape; the rest of the batch is stored. A batch over
``max_frame_bytes`` gets ``errorcode`` 413 (the shipper splits it), one that
cannot be decoded at all 400; both are found by the ``key`` and ``ack`` in
the frame's first bytes (:func:`acked_key`).

With a write token, the first packet of a connection must be the hello
``{"uri":"/auth",...,"params":{"token":"..."}}``: checked once, here, before
the hot path ever sees the connection; a wrong or missing token gets one error
packet and the connection is closed. Without a token a hello is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from itertools import repeat
from operator import attrgetter
from typing import Any

import msgspec
import orjson

from ... import access_log
from ...hello import AUTH_URI, FirstPacket, OverLimit, Verdict, judge, refused
from ...protocol import BadFrame, FrameSplitter, encode
from ..store.segment import StoreUnavailable
from .book_block import BookBlock, block_head, encode_block, parse_block
from .common import (
    REPLACED_LABEL,
    Batch,
    BatchEvent,
    Rejected,
    batch_decoder,
    decode,
    envelope_decoder,
    now_ms,
    request_decoder,
    request_event,
    str_decoder,
)
from .connection import IngestConnection
from .context import IngestContext
from .ledger import count_errors, is_error
from .shipped import batch_lines, packet_decoder

log = logging.getLogger("logmesh.logs.ingest")

# Marks an event kept with U+FFFD for bytes that were not UTF-8 (logs/event.py's labels).
REPLACED_BAD_UTF8 = {REPLACED_LABEL: "bad_utf8"}

_N, _TS, _LEVEL, _STATUS = (attrgetter(name) for name in ("n", "ts", "level", "status"))

# The bytes a worker's connections may hold for the ledger's look at once (_hold): each holds
# one read's frames (up to a --max-packet-size frame and a read) and reads no more meanwhile.
# Past this, a batch is judged with the look in the event loop, as before the thread.
HELD_BYTES = 32 * 1024 * 1024


class RawBatch(msgspec.Struct):
    """A batch whose events are left undecoded: the error path decodes them one by one."""

    service: str = ""
    instance: str = ""
    events: list[msgspec.Raw] = []
    node: Any = None
    heartbeat: Any = None


raw_batch_decoder = msgspec.json.Decoder(RawBatch)
event_decoder = msgspec.json.Decoder(BatchEvent)
FEATURES = [access_log.FEATURE]  # what a shipper may send beside the records it always may

# The shipper writes "key" and "ack" before "params"; string contents never match (their quotes
# are escaped), and neither does anything inside params, which is cut off before the search.
_HEAD_KEY = re.compile(rb'"key"\s*:\s*(-?\d+|"[^"\\]*")')
_HEAD_ACK = re.compile(rb'"ack"\s*:\s*true\b')


def acked_key(head: bytes) -> Any:
    """The key of an acked batch from its frame's first bytes, or None if they show none.

    For frames that are never decoded (too large, too deep, not JSON): their
    sender still gets an answer when it waits for one.
    """
    top = head.split(b'"params"', 1)[0]
    m = _HEAD_KEY.search(top)
    if m is None or _HEAD_ACK.search(top) is None:
        return None
    return orjson.loads(m.group(1))


class _MustLook(Exception):
    """A batch (or a book packet's ``event.id``) carries an instance whose first events here
    must be judged against what the sibling workers stored: raised before anything of it is recorded, so it can wait for the
    ledger's look (:meth:`LogIngestProtocol._hold`) and be handled again, whole, after it."""


class _Held:
    """A connection's frames waiting for the ledger's look, from the one that needs it on (read
    at ``received``), and the reads that came after them (in order, handled after them)."""

    __slots__ = ("frames", "received", "later", "nbytes")

    def __init__(self, frames: list, received: int, nbytes: int) -> None:
        self.frames = frames
        self.received = received
        self.later: list[bytes] = []
        self.nbytes = nbytes  # of the frames and the later reads


class LogIngestProtocol(IngestConnection):
    def __init__(self, ctx: IngestContext) -> None:
        super().__init__(ctx)
        self.splitter = FrameSplitter(ctx.max_frame_bytes)
        self.authed = not ctx.guard.requires_auth
        self._hello = FirstPacket()  # the first packet, while a token is awaited
        self.book_service: str | None = None  # see _book_service
        self.shippers: set[str] = set()  # the instances whose batches came over this connection
        self._held: _Held | None = None  # what waits for the ledger's look (_hold)

    @property
    def drains_on_stop(self) -> bool:  # type: ignore[override]
        """The book's packets are never answered (the Node services drop their log connection
        on any data), so at shutdown such a connection is half-closed and read to its end
        (connection.drain): a restart lost what sat unread in its socket (800 of 51,400
        lines from the chapter's Node goods service, tests/integration/
        test_outside_book_restart.py). A shipper's connection is not: it waits for acks,
        which a half-closed socket can no longer carry, and resends what was not acked."""
        return not self.shippers and self._held is None  # a held batch is a shipper's

    def connection_lost(self, exc: Exception | None) -> None:
        self.handle_kept()  # before the ledger hears that its shippers left
        if self.shippers:
            dropped = now_ms()
            for instance in self.shippers:
                self.ctx.ledger.closed(instance, dropped)
        super().connection_lost(exc)

    def received(self, data: bytes) -> None:
        if self._held is not None:  # after the batch that waits for the ledger's look, in order
            self._held.later.append(data)
            self._held.nbytes += len(data)
            self.ctx.held_bytes += len(data)
            self._pause_held()
            return
        ctx = self.ctx
        ctx.bytes.inc(len(data))
        if not self.authed:  # once per connection: the hot path below never checks tokens
            data = self._handshake(data)
            if not data:
                return
        received = now_ms()
        items = self.splitter.feed(data)
        if self.splitter.clean:
            frames = items
        else:
            frames = []
            for item in items:
                if isinstance(item, BadFrame):
                    self._bad(item.reason, item.detail)
                    if item.reason == "too_large":
                        self._refuse_frame(item.head, 413, f"batch of {item.nbytes} bytes over "
                                           f"the limit of {ctx.max_frame_bytes}")
                else:
                    frames.append(item)
        if not ctx.guard.track(self, self.splitter.buffered, bool(items)):
            return  # over the listener's budget for partial packets: aborted
        if not frames:
            return
        # A shipper's connection sends acked batches, which are never book packets: not tried
        # (the join and the failed decode were ~0.1-0.2 µs an event)
        block = None if self.shippers else parse_block(frames, self.splitter.newline)
        if block is not None:  # the common case: plain book packets, stored without parsing them
            n = len(block.messages)
            seqs = ctx.writer.reserve(n)
            service = block.service or self._book_service(block)
            head = block_head(received, self.source, service)
            ctx.writer.append_encoded(encode_block(block.messages, seqs, head), seqs[0], seqs[-1],
                                      n, received, received, received,
                                      services={service: n} if service is not None else {})
            ctx.events.inc(n)
            if ctx.book_lines is not None:
                ctx.book_lines(self.source, block.messages)
        else:
            self._frames(frames, received)
        self.pause_if_behind()

    def _frames(self, frames: list, received: int, covered: bool = False) -> None:
        """Store and answer the packets of ``frames`` (read at ``received``), up to a batch that
        must wait for the ledger's look: it and the frames after it are held (:meth:`_hold`).
        ``covered``: they waited for a look begun after they came (:meth:`_must_wait`)."""
        ctx = self.ctx
        acks: list[tuple[Any, int, list]] = []
        events: list = []
        for i, raw in enumerate(frames):
            try:
                self._packet(raw, received, events, acks, covered=covered)
            except _MustLook:
                if self._hold(frames[i:], received):
                    break
                ctx.ledger.learn_now()  # over HELD_BYTES: the look in the loop, the batch judged now
                self._packet(raw, received, events, acks, covered=True)
        # With no new events (e.g. a batch of resends only) the first copies may still be
        # buffered or waiting for fsync: the ack waits for everything appended so far.
        last = ctx.writer.append_events(events) if events else ctx.writer.appended_seq
        if events:
            ctx.events.inc(len(events))
        within = ctx.group_window(self) if acks else 0.0
        for key, count, rejected in acks:
            asyncio.ensure_future(self._ack(key, count, last, rejected, within))
        if ctx.book_lines is not None and events:
            ctx.book_lines(self.source, [ev.message for ev in events])

    def _hold(self, frames: list, received: int) -> bool:
        """Keep a batch that needs the ledger's look (and the frames after it) until a look
        begun now is done (ShipperLedger.look: the read and decode in a thread), and stop
        reading meanwhile: what waits is this read's frames, a connection's at most. A shipper
        whose batch a sibling worker stored but never acked (it was killed) resends it over a
        new connection: judged against the siblings' store, it is stored once. The look ran
        in the event loop, and its first after a quiet spell read a sibling's whole active
        segment: 64 MB held every connection and /healthz ~0.45 s of CPU (1.3-1.6 s wall).
        False, nothing held, when the worker's connections hold HELD_BYTES already."""
        ctx = self.ctx
        nbytes = sum(map(len, frames))
        if ctx.held_bytes + nbytes > HELD_BYTES:
            return False
        ctx.held_bytes += nbytes
        self._held = _Held(frames, received, nbytes)
        ctx.paused.discard(self)  # the store's resume must not read on: pause_if_behind
        self._pause_held()  # pauses again, if still behind, once the batch is handled
        ctx.ledger.look().add_done_callback(self._looked)
        return True

    def _pause_held(self) -> None:
        self.paused = True  # the guard's timers wait too: the wait is not the sender's
        if self.transport is not None:
            self.transport.pause_reading()

    def _looked(self, look: asyncio.Future) -> None:
        """The look is done: handle what was held, as it came, then read on. A connection gone
        or closing meanwhile (a SIGTERM stops the service: held batches are not drained) has
        nothing acked of it: dropped, its shipper sends it again (to the next process)."""
        held, self._held = self._held, None
        assert held is not None
        self.ctx.held_bytes -= held.nbytes
        transport = self.transport
        if look.cancelled() or transport is None or transport.is_closing():
            return
        ledger = self.ctx.ledger
        try:
            if look.exception() is not None:
                log.error("ingest %s:%s: the ledger's look at the store failed (%r); looked in "
                          "the event loop", *self.source, look.exception())
                ledger.learn_now()
            # the siblings' writes before these frames are learned
            self._frames(held.frames, held.received, covered=True)
            self.pause_if_behind()
            if held.later:
                self.received(b"".join(held.later))
        except Exception:  # as asyncio does for a data_received that raises
            log.exception("ingest %s:%s: cannot handle a read; closing", *self.source)
            transport.abort()
            return
        if self._held is None and self not in self.ctx.paused and self.turn_data is None \
                and not transport.is_closing():
            self.paused = False
            if self.partial_since:
                self.partial_since = time.monotonic()  # the wait was not the sender's fault
            transport.resume_reading()

    def _handshake(self, data: bytes) -> bytes:
        """Collect the first packet (logmesh/hello.py); on a good hello return what followed
        it, else refuse."""
        try:
            first = self._hello.feed(data)
        except OverLimit:
            self._refuse(refused(None, missing=True))
            return b""
        if first is None:
            return b""
        packet, rest = first
        verdict = judge(packet, self.ctx.guard.check)
        if not verdict.ok:
            self._refuse(verdict)
            return b""
        self.authed = True
        return rest

    def _refuse(self, verdict: Verdict) -> None:
        self.ctx.guard.auth_failed(self, verdict.missing)
        if self.answerable():
            self.transport.write(verdict.reply)  # type: ignore[union-attr]
        if self.transport is not None:
            self.transport.close()

    def _book_service(self, block: BookBlock) -> str | None:
        """The service a book connection logs for: the route of a request it logged.

        The book's packets name no service, and a log connection belongs to one
        service process (its ``writeLog`` client), so one packet decoded per
        connection -- not one per event -- names every event it sends. Until the
        distributor's routes name it, each read tries again with its first packet.
        """
        if self.book_service is None:
            try:
                req = request_decoder.decode(str_decoder.decode(block.messages[0]))
            except (msgspec.DecodeError, UnicodeError, RecursionError):  # the block is stored all
                return None  # the same, with no service name
            self.book_service = self.ctx.routes.service_for(req.method, req.uri)
        return self.book_service

    def _packet(self, raw: bytes, received: int, events: list, acks: list,
                replaced: bool = False, covered: bool = False) -> None:
        """One packet on its own: any shape, any error, counted and survived.

        ``replaced``: ``raw`` is a frame whose bytes were not all UTF-8, with U+FFFD
        for them (:meth:`_replace_bad_utf8`). ``covered``: see :meth:`_must_wait`.
        """
        if not replaced and self._shipped(raw, received, events, acks, covered):
            return
        try:
            env = decode(envelope_decoder, raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # Replaced, its bytes are UTF-8: what is left is the fault it is dropped for (bad_json,
            # too_deep); bad_utf8 alone would have been stored (the reason was once "bad_utf8")
            reason = _decode_error_reason(raw, exc)
            if reason == "bad_utf8" and not replaced:
                self._replace_bad_utf8(raw, received, events, acks, covered)
                return
            self._bad(reason, str(exc))
            self._refuse_frame(raw[:FrameSplitter.HEAD_BYTES], 400, f"bad batch ({reason}): {exc}")
            return
        first = memoryview(env.params)[:1].tobytes()
        try:
            if env.ack and replaced:  # told, by a 400, rather than stored with its text changed
                self._bad("bad_utf8", "an acked batch whose envelope is not UTF-8")
                self._refuse_frame(raw[:FrameSplitter.HEAD_BYTES], 400, "bad batch (bad_utf8)")
            elif first == b"{" and env.ack and self.ctx.writer.failure is not None:
                # Told at once, nothing stored: the shipper keeps the batch and sends it again.
                self._reply(env.key, 507, f"not stored, retry later: {self.ctx.writer.failure}")
            elif first == b"{" and env.ack:
                answer = self._batch(env, received, events, covered=covered)
                if answer is not None:
                    acks.append((env.key, *answer))
            elif env.uri == AUTH_URI and first != b'"':
                pass  # a hello to a service without a token: no log (it holds a token), no answer
            else:
                self._book_packet(env, raw, received, events, replaced, acks, covered)
        except _MustLook:
            raise
        except Exception as exc:  # a packet we did not foresee must not end the connection
            log.exception("ingest %s:%s: cannot store packet", *self.source)
            self._bad("internal", repr(exc))
            if first == b"{" and env.ack:  # none of it was stored: _batch adds its events last
                self._reply(env.key, 500, f"internal error: {exc!r}")

    def _shipped(self, raw: bytes, received: int, events: list, acks: list,
                 covered: bool) -> bool:
        """The mesh's usual acked batch (ingest/shipped.py) in one decode of its frame, its
        lines built with few calls; True if it was taken here (stored, or answered 500), False
        for every other packet, which :meth:`_packet` reads as it may come."""
        try:
            packet = packet_decoder.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return False
        batch = packet.params
        if batch is None or not packet.ack or self.ctx.writer.failure is not None:
            return False
        try:
            self._must_wait(batch.instance, batch.events[:1], covered)  # one instance: its first
            made = batch_lines(batch, received, self.source, self.ctx.routes)
            if made is None:
                return False
            acks.append((packet.key, *self._batch(packet, received, events, (batch, made), covered)))
        except _MustLook:
            raise
        except Exception as exc:  # as in _packet: none of it was stored, _batch adds its events last
            log.exception("ingest %s:%s: cannot store packet", *self.source)
            self._bad("internal", repr(exc))
            self._reply(packet.key, 500, f"internal error: {exc!r}")
        return True

    def _bad(self, reason: str, detail: str) -> None:
        self.ctx.count_bad(reason)
        self.ctx.warn.warning("ingest %s:%s: dropped bad frame (%s) %s", *self.source, reason,
                              detail[:160])

    def _refuse_frame(self, head: bytes, code: int, message: str) -> None:
        """Answer a frame we could not decode if it is an acked batch (a book packet never is)."""
        key = acked_key(head)
        if key is not None:
            self._reply(key, code, message)

    def _reply(self, key: Any, code: int, message: str) -> None:
        if self.answerable():
            self.transport.write(encode({"key": key, "errorcode": code,  # type: ignore[union-attr]
                                         "errormessage": message}))

    def _book_packet(self, env: Any, frame: bytes, received: int, lines: list,
                     replaced: bool, acks: list, covered: bool) -> None:
        """Store a fire-and-forget packet, as the book's service stores every packet.

        Its ``params`` is, as the chapter sends it, the logged request's text: that
        text is the event's ``message``. Anything else -- an object, as the book's
        gate forwards an HTTP ``POST /logs``, a number, nothing -- makes the packet
        itself the logged request: ``message`` is the packet's text, verbatim, and its
        ``uri``, ``method``, ``params`` and ``key`` are the event's fields, read as
        from any logged request (and as DuckDB derives them again from ``message``).
        """
        try:
            if memoryview(env.params)[:1] == b'"':
                raw = decode(str_decoder, env.params)
            else:
                raw = frame.decode()  # Raw params are not checked: they may hold bad UTF-8
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            reason = _decode_error_reason(env.params, exc)
            if reason == "bad_utf8" and not replaced:
                self._replace_bad_utf8(frame, received, lines, acks, covered)
                return
            self._bad(reason, str(exc))
            return
        event_id = env.event_id if isinstance(env.event_id, str) else None
        if event_id is not None and self.ctx.ledger.must_learn_event_id(event_id, covered):
            raise _MustLook  # an unknown instance's event: judged after the look, off the loop
        ts = env.timestamp if isinstance(env.timestamp, int) else received
        service = env.service if isinstance(env.service, str) else None
        try:
            ev = request_event(raw, ts=ts, received_at=received, service=service, instance=None,
                               event_id=event_id, source=self.source, routes=self.ctx.routes,
                               extra=REPLACED_BAD_UTF8 if replaced else None)
        except (Rejected, RecursionError) as exc:  # counted, never answered: a book packet
            self._bad(*_rejection(exc))
            return
        # After request_event: a rejected event is not in the ledger, so its resend is no duplicate.
        if event_id is not None and not self.ctx.ledger.add_event_id(event_id, env.service or "",
                                                                  covered=covered):
            self.ctx.duplicates.inc()
            return
        lines.append(ev)
        if replaced:
            self.ctx.count_replaced("bad_utf8")

    def _replace_bad_utf8(self, frame: bytes, received: int, lines: list, acks: list,
                          covered: bool) -> None:
        """The error path of a frame that is not all UTF-8: keep it, as the fixed Node logs
        service does (``Buffer.toString``: U+FFFD for each maximal invalid sequence, the same
        rule as Python's ``"replace"``), labelled ``logmesh.replaced: "bad_utf8"``. An acked
        batch is refused instead: its sender is told, and its text is never changed."""
        self._packet(frame.decode("utf-8", "replace").encode(), received, lines, acks, replaced=True,
                     covered=covered)

    def _batch(self, env: Any, received: int, lines: list,
               fast: tuple[Any, list] | None = None, covered: bool = False) -> tuple[int, list] | None:
        """Store a batch's good events; ``(acked, rejected)`` for its reply, None if refused.

        ``fast``: the batch and its lines, built by :meth:`_shipped`; else each event is built
        from ``env.params`` by :meth:`_build`."""
        rejected: list[list] = []  # [index in the batch, reason]
        ctx = self.ctx
        ledger = ctx.ledger
        if fast is not None:  # the mesh's usual batch: its lines built with few calls
            batch, made = fast
            instance = batch.instance
            evs = batch.events
            if ledger.add_run(instance, list(map(_N, evs)), batch.service, max(map(_TS, evs))):
                ctx.batches += 1
                lines += made  # all new, in a row: the ledger's one call, as _add_run's
                # request packets are stored "info" with no status: none is an error
                errors = 0 if evs[0].extra is None else \
                    count_errors(map(_LEVEL, made), map(_STATUS, made))
                return self._heard(env, batch, received, errors, len(made), 0, rejected)
            ctx.batches += 1
            built = list(zip(repeat(instance), evs, made))
        else:
            batch, built = self._build(env, received, rejected, covered)
            if batch is None:
                return None
            instance = batch.instance
            ctx.batches += 1
        # The ledger last: what it records as received is stored, so the resend of a rejected
        # event (or of a batch that failed half-way, answered 500) is no duplicate.
        before = len(lines)
        errors = 0
        if instance and self._add_run(instance, built, batch.service):  # all new, in a row
            for _, _, line in built:
                lines.append(line)
                if is_error(line.level, line.status):
                    errors += 1
        else:
            add = ctx.ledger.add
            for inst, ev, line in built:
                if not inst or add(inst, ev.n, batch.service, ev.ts, covered):
                    lines.append(line)
                    if inst == instance and is_error(line.level, line.status):
                        errors += 1
        return self._heard(env, batch, received, errors, len(built),
                           len(built) - (len(lines) - before), rejected)

    def _must_wait(self, instance: str, events: list, covered: bool) -> None:
        """Raise _MustLook, before anything of the batch is built or counted (its events'
        folded labels are), when the ledger must look at what the sibling workers stored first:
        ``instance``'s first batch on this connection (ShipperLedger.joined: it may have
        shipped to a sibling before), or an instance unknown to the ledger whose first event
        here is not its first (ShipperLedger.must_learn) -- unless the batch already waited for
        a look begun after it came (``covered``: an argument, handed down from
        :meth:`_looked`, so one connection's cover never lends itself to another's batch, even
        if an ``await`` came between). An event that is refused later and so never
        reaches the ledger may leave add() a look to do: it does it in the loop, as before."""
        ledger = self.ctx.ledger
        if ledger.data_dir is None or covered:
            return
        if instance and instance not in self.shippers:
            raise _MustLook
        firsts: set[str] = set()  # add() looks at an instance's first event only
        for ev in events:
            inst = ev.instance or instance
            if inst and ev.n >= 1 and inst not in firsts:
                firsts.add(inst)
                if ledger.must_learn(inst, ev.n, covered):
                    raise _MustLook

    def _heard(self, env: Any, batch: Any, received: int, errors: int, taken: int,
               duplicates: int, rejected: list) -> tuple[int, list]:
        """A batch's bookkeeping once its lines are in: the ledger hears its shipper, the
        duplicates and rejections are counted; ``(acked, rejected)`` for its reply."""
        ctx = self.ctx
        instance = batch.instance
        if instance:  # heard, even with no events (a heartbeat): logs/health.py
            opened = instance not in self.shippers
            if opened:
                self.shippers.add(instance)
            ctx.ledger.heard(instance, batch.service, batch.node, batch.heartbeat, self.source[0],
                             received, errors=errors, opened=opened)
        if duplicates:  # counted once per batch, not per event
            ctx.duplicates.inc(duplicates)
        if rejected:
            rejected.sort()
            for _, reason, detail in rejected:
                ctx.count_rejected(reason)
                ctx.warn.warning("ingest %s:%s: rejected an event of batch %r (%s) %s",
                                 *self.source, env.key, reason, detail[:160])
        return taken, [r[:2] for r in rejected]

    def _build(self, env: Any, received: int, rejected: list,
               covered: bool) -> tuple[Batch | None, list]:
        """The per-event path: the batch decoded as it may come, each event built by
        ``request_event`` (which refuses, into ``rejected``, what no reader could read back);
        ``(batch, [(instance, event, line), ...])``, or None when it is refused whole."""
        where = None  # the error path's index of each decoded event in the batch
        try:
            batch = decode(batch_decoder, env.params)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            batch, where = self._batch_by_event(env, rejected)
            if batch is None:
                return None, []
        self._must_wait(batch.instance, batch.events, covered)
        ctx = self.ctx
        service = batch.service or None
        instance = batch.instance
        routes = ctx.routes
        built = []
        for i, ev in enumerate(batch.events):
            inst = ev.instance or instance
            if inst and ev.n < 1:  # the ledger counts from 1: n <= 0 would be acked as a resend
                rejected.append([i if where is None else where[i], "bad_event",  # and never stored
                                 f"event number {ev.n}: numbers start at 1"])
                continue
            raw, extra = ev.raw, ev.extra
            if raw.__class__ is list:  # the gateway's access log as a row
                try:
                    if extra is not None:
                        raise ValueError("an access row takes no extra")
                    raw, extra = access_log.record(raw)
                except ValueError as exc:
                    rejected.append([i if where is None else where[i], "bad_event", str(exc)])
                    continue
            try:
                line = request_event(
                    raw, ts=ev.ts, received_at=received, service=service, instance=inst or None,
                    event_id=f"{inst}:{ev.n}" if inst else None, source=self.source,
                    routes=routes, extra=extra)
            except (Rejected, RecursionError) as exc:
                rejected.append([i if where is None else where[i], *_rejection(exc)])
                continue
            built.append((inst, ev, line))
        return batch, built

    def _add_run(self, instance: str, built: list, service: str) -> bool:
        """The ledger's one-call path (``ShipperLedger.add_run``) for a batch whose events are
        all ``instance``'s; False, nothing recorded, when it does not apply."""
        ns = []
        ts = 0
        for inst, ev, _ in built:
            if inst != instance:
                return False
            ns.append(ev.n)
            if ev.ts > ts:
                ts = ev.ts
        return self.ctx.ledger.add_run(instance, ns, service, ts)

    def _batch_by_event(self, env: Any, rejected: list) -> tuple[Batch | None, list[int]]:
        """The error path: decode event by event, so one bad event does not cost the batch.

        Returns the batch of the events that decoded and their indexes in the
        batch, the others added to ``rejected``; None and a 400 reply when
        not even the list of events can be read.
        """
        try:
            raw = decode(raw_batch_decoder, env.params)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            reason = _decode_error_reason(env.params, exc)
            self._bad("bad_batch" if reason == "bad_json" else reason, str(exc))
            self._reply(env.key, 400, f"bad batch: {exc}")
            return None, []
        events, where = [], []
        for i, data in enumerate(raw.events):
            try:
                events.append(decode(event_decoder, data))
                where.append(i)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
                reason = _decode_error_reason(data, exc)
                rejected.append([i, "bad_event" if reason == "bad_json" else reason, str(exc)])
        return Batch(raw.service, raw.instance, events, raw.node, raw.heartbeat), where

    async def _ack(self, key: Any, count: int, seq: int, rejected: list, within: float) -> None:
        """Reply once ``seq`` is durable; ``within``: IngestContext.group_window's (asking at
        once would start a group, and an fsync, for this batch alone)."""
        if seq >= 0:
            writer = self.ctx.writer
            try:
                await (writer.durable(seq, on_failure="raise", within=within) if within
                       else writer.durable(seq, on_failure="raise"))
            except StoreUnavailable as exc:  # said at once; the events are written when it can,
                self._reply(key, 507, f"not stored yet, resend: {exc}")  # the resend dropped
                return
        if self.answerable():
            reply = {"key": key, "errorcode": 0, "acked": count, "features": FEATURES}
            if rejected:
                reply["rejected"] = rejected
            self.transport.write(encode(reply))


def _rejection(exc: Exception) -> tuple[str, str]:
    """(reason, detail) of an event refused by ``request_event``."""
    if isinstance(exc, Rejected):
        return exc.reason, exc.detail
    return "too_deep", "nested too deep to decode"


def _decode_error_reason(raw: bytes | memoryview, exc: Exception) -> str:
    """``bad_utf8``, ``too_deep`` or ``bad_json``; only on the error path, so checking the bytes
    is cheap enough."""
    if isinstance(exc, RecursionError):
        return "too_deep"
    if isinstance(exc, UnicodeDecodeError):
        return "bad_utf8"
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return "bad_utf8"
    return "bad_json"
