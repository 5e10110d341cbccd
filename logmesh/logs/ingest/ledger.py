"""The loss ledger: loss accounting and de-duplication per shipping instance, from ``event.id``.

Each logmesh shipper numbers its events 1, 2, 3, ... per boot; the instance
id changes on every boot. From the numbers alone the logs service knows, per
instance, what it received, what is missing and what was resent: a user can
see that nothing was lost instead of trusting it.

It also keeps what the health of an instance is judged by (logs/health.py): when the
logs service last heard from it (a batch, or the empty batch a shipper sends as its
heartbeat when it has nothing to ship), the node it serves, its open connections and
when the last one closed, and how many of its events were errors.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

DEDUPE_WINDOW_MS = 3600 * 1000  # resends are recognised this long after the first copy
MAX_HEARTBEAT_SECONDS = 3600.0  # a batch's heartbeat interval above this is not believed
# What /mesh counts as an error (store/columns.py's ERROR_SQL): these levels, or a status >= 500.
ERROR_LEVELS = frozenset({"error", "critical", "fatal", "alert", "emergency"})
_HAS_EVENT_ID = b'"event.id":"'
# A look reads a segment's new bytes in pieces of this size: each piece's decode holds the
# GIL (msgspec, in C), so in look()'s thread a 64 MB read whole held the event loop ~0.4 s.
READ_PIECE = 1 << 20


class _IdOnly(msgspec.Struct):
    event_id: str | None = msgspec.field(default=None, name="event.id")


_ids = msgspec.json.Decoder(_IdOnly)


def _event_ids(data: bytes) -> list[str]:
    """The top-level ``event.id`` of each stored line (never a key inside params or labels).

    One msgspec call for the whole segment, in C; a file with a damaged line
    is read line by line instead.
    """
    if _HAS_EVENT_ID not in data:
        return []
    whole = memoryview(data)[:data.rfind(b"\n") + 1]  # a torn last line is no event: not copied
    try:
        events = _ids.decode_lines(whole)
    except (msgspec.DecodeError, RecursionError):
        events = []
        for line in data[:len(whole)].splitlines():
            try:
                events.append(_ids.decode(line))
            except (msgspec.DecodeError, RecursionError):
                continue
    return [e.event_id for e in events if e.event_id]


def _piecewise_event_ids(data: bytes, whole: int) -> list[str]:
    """:func:`_event_ids` of ``data[:whole]`` (whole lines), a ``READ_PIECE`` of lines at a time."""
    if whole <= READ_PIECE:
        return _event_ids(data[:whole])
    ids: list[str] = []
    pos = 0
    while pos < whole:
        end = data.rfind(b"\n", pos, pos + READ_PIECE) + 1 if pos + READ_PIECE < whole else whole
        if end <= pos:  # a line longer than a piece: to its end
            end = data.find(b"\n", pos + READ_PIECE, whole) + 1 or whole
        ids += _event_ids(data[pos:end])
        pos = end
    return ids


def is_error(level: str | None, status: int | None) -> bool:
    """An event /mesh counts as an error."""
    return (level is not None and level.lower() in ERROR_LEVELS) or (status is not None and status >= 500)


def count_errors(levels: Iterable[str | None], statuses: Iterable[int | None]) -> int:
    """How many of the events whose levels and statuses these are :func:`is_error` says are
    errors, with one Python call per distinct pair, not per event: a batch of the gateway's access
    logs holds a few of them (docs/benchmarks.md "with shipping on, tenth part")."""
    return sum(n for (level, status), n in Counter(zip(levels, statuses, strict=True)).items()
               if is_error(level, status))


def node_address(value: object) -> tuple[str, int] | None:
    """A batch's ``node``, ``[host, port]``, if it is one (anything else: None)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        host, port = value
        if isinstance(host, str) and len(host) <= 255 and isinstance(port, int) \
                and not isinstance(port, bool) and 0 < port < 65536:
            return host, port
    return None


def _parquet_event_ids(paths: list[str]) -> list[str]:
    """The ``event.id`` of every event of these Parquet files, in one query; file by file
    when one cannot be read (gone since it was listed: retention), skipping that one."""
    import duckdb

    sql = 'SELECT "event.id" FROM read_parquet(?) WHERE "event.id" IS NOT NULL'
    db = duckdb.connect()
    try:
        return [event_id for (event_id,) in db.execute(sql, [paths]).fetchall()]
    except duckdb.Error:
        if len(paths) == 1:
            return []
    return [event_id for path in paths for event_id in _parquet_event_ids([path])]


def _mtime(path: Path) -> float:
    """When ``path`` was written; 0 for a file gone since it was listed (retention, a
    sibling's compaction): nothing to read in it."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@dataclass
class InstanceLedger:
    service: str = ""
    received: int = 0
    duplicates: int = 0
    watermark: int = 0  # every n <= watermark has been received
    above: set[int] = field(default_factory=set)  # received numbers > watermark
    last_seen_ms: int = 0  # its newest event's time, or when it was last heard, the later
    # Its health (logs/health.py), from batches and heartbeats this process received; an
    # instance only re-read from the store at start has heard_ms 0.
    errors: int = 0  # stored events that were errors (is_error)
    node: tuple[str, int] | None = None  # the node it serves, as its batches say
    source: str = ""  # the host its connection comes from
    first_seen_ms: int = 0  # when this process first heard from it
    heard_ms: int = 0  # when this process last heard from it (a batch or a heartbeat)
    heartbeat_s: float = 0.0  # its promise: a heartbeat after this many quiet seconds (0: none)
    connections: int = 0  # open connections it ships over
    dropped_ms: int = 0  # when the last of them closed

    @property
    def highest(self) -> int:
        return max(self.above) if self.above else self.watermark

    @property
    def missing(self) -> int:
        return self.highest - self.watermark - len(self.above)

    def add(self, n: int) -> bool:
        """Record number ``n``; False when it was already received (a resend)."""
        if n <= self.watermark or n in self.above:
            self.duplicates += 1
            return False
        self.received += 1
        if n == self.watermark + 1:
            self.watermark = n
            above = self.above
            while self.watermark + 1 in above:
                self.watermark += 1
                above.discard(self.watermark)
        else:
            self.above.add(n)
        return True


@dataclass
class _Scan:
    """What one look at the store found (:meth:`ShipperLedger._scan`, which may run in a
    thread): the event numbers per instance (sorted, each once), how far each segment was
    read, the files read whole, and the names of all the files listed."""

    numbers: dict[str, list[int]]
    read_to: dict[str, int]
    done: set[str]
    names: set[str]
    ids: int


def _numbers(event_ids: list[str]) -> dict[str, list[int]]:
    """``event.id`` values (``instance:n``) as each instance's numbers, sorted, each once."""
    numbers: dict[str, set[int]] = {}
    for event_id in event_ids:
        instance, _, n = event_id.rpartition(":")
        if n.isdigit():
            got = numbers.get(instance)
            if got is None:
                got = numbers[instance] = set()
            got.add(int(n))
    return {instance: sorted(ns) for instance, ns in numbers.items()}


class ShipperLedger:
    """All instances seen by this process (re-read from the store at start)."""

    def __init__(self) -> None:
        self.instances: dict[str, InstanceLedger] = {}
        self.data_dir: Path | None = None  # set by rebuild(): where to look up unknown instances
        self.window_ms = DEDUPE_WINDOW_MS
        self.worker: int | None = None  # this process's stream (rebuild()): its files need no re-read
        # What of the store this ledger has read (_learn_store), so a look at what the sibling
        # workers stored reads only what they wrote since: bytes read of each segment by name,
        # and the names (without suffix) of the files read whole: a sealed segment read to its
        # end, a Parquet file, or a file older than the window.
        self._read_to: dict[str, int] = {}
        self._done: set[str] = set()
        # look(): whether one runs in the thread, and the future of the next (its callers came
        # while one ran, after it had begun reading: they wait for one begun after them).
        self._looking = False
        self._next: asyncio.Future | None = None

    def add(self, instance: str, n: int, service: str = "", ts: int = 0,
            covered: bool = False) -> bool:
        """Record event ``n`` of ``instance``; False for a resend (already received).
        ``covered``: the event waited for a :meth:`look` begun after it came (logs/ingest/tcp.py),
        so what the siblings stored before it is learned and no look is needed here. An
        argument, not state of the ledger: one connection's cover never lends itself to
        another's batch."""
        led = self.instances.get(instance)
        if led is None or not led.received:  # unknown, or only heard (a heartbeat, a probe)
            if self.must_learn(instance, n, covered):
                # An instance whose numbers we never saw, not at its first event: it failed over
                # from another logs process sharing our data directory (what we stored before
                # our start, rebuild() read).
                self._learn_store()
                led = self.instances.get(instance)
            if led is None:
                led = self.instances[instance] = InstanceLedger(service=service)
        if service and not led.service:
            led.service = service
        if ts > led.last_seen_ms:
            led.last_seen_ms = ts
        return led.add(n)

    def add_run(self, instance: str, ns: list[int], service: str = "", ts: int = 0) -> bool:
        """Record ``ns`` at once when they are exactly the numbers after ``instance``'s
        watermark, in order, with none received above it: a shipper's usual batch, all new.
        False (nothing recorded) for any other shape, which :meth:`add` then takes one number
        at a time; the same ledger either way, ~0.4 µs less an event this way. ``ts``: the
        run's newest event time."""
        led = self.instances.get(instance)
        if led is None or not led.received or led.above or not ns:
            return False  # first heard (add() may scan the store), or numbers out of order
        first = led.watermark + 1
        if ns[0] != first or ns != list(range(first, first + len(ns))):
            return False
        led.watermark = ns[-1]
        led.received += len(ns)
        if service and not led.service:
            led.service = service
        if ts > led.last_seen_ms:
            led.last_seen_ms = ts
        return True

    def joined(self, instance: str) -> None:
        """``instance`` opened a connection to this process (called before its first batch on
        it is counted). It may have shipped to a sibling worker before (its connection balanced
        there, or this process restarted), and a batch that sibling stored but never acked (it
        was killed) is resent here: learn what the siblings stored since we last looked, or the
        resend is stored twice -- whether this process knew the instance or not, and from its
        first event on. Reads only what they wrote since then."""
        if self.data_dir is not None:
            self._learn_store()

    def learn_now(self) -> None:
        """The look in the loop, at once (when :meth:`look` failed: a batch is not stored
        unjudged)."""
        if self.data_dir is not None:
            self._learn_store()

    def must_learn(self, instance: str, n: int, covered: bool = False) -> bool:
        """Whether :meth:`add` of number ``n`` would look at the store first: ``instance`` is
        unknown (or only heard) and ``n`` is not its first event (``covered``: see add)."""
        if n <= 1 or self.data_dir is None or covered:
            return False
        led = self.instances.get(instance)
        return led is None or not led.received

    def must_learn_event_id(self, event_id: str, covered: bool = False) -> bool:
        """:meth:`must_learn` for a book packet's ``event.id`` (``instance:n``, as
        :meth:`add_event_id` reads it): False for an id that is no shipper's."""
        instance, _, n = event_id.rpartition(":")
        return bool(instance) and n.isdigit() and self.must_learn(instance, int(n), covered)

    def look(self) -> asyncio.Future:
        """A future done once a look at what the siblings stored, begun after this call, has
        been learned (:meth:`joined`'s look, with the reading and decoding in a thread): the
        first look after a quiet spell may read a sibling's whole active segment (64 MB:
        ~0.45 s of CPU, bench/ledger_look.py), which held the event loop (/healthz, every
        other connection) as long. One look runs at a time; the callers that come while it
        runs share the next, so a flood of new connections costs two looks, not one each.
        logs/ingest/tcp.py holds a shipper's batch that needs the look until this is done."""
        loop = asyncio.get_running_loop()
        if self.data_dir is None:
            done = loop.create_future()
            done.set_result(None)
            return done
        fut = self._next
        if fut is None:
            fut = self._next = loop.create_future()
            if not self._looking:
                self._start_look()
        return fut

    def _start_look(self) -> None:
        fut, self._next = self._next, None
        assert fut is not None
        self._looking = True
        task = asyncio.ensure_future(asyncio.to_thread(self._scan, dict(self._read_to),
                                                       set(self._done), False))
        task.add_done_callback(lambda t: self._looked(t, fut))

    def _looked(self, task: asyncio.Future, fut: asyncio.Future) -> None:
        """The thread's scan is back: learn it (in the loop), tell its callers, start the
        next look if callers came meanwhile."""
        self._looking = False
        if task.cancelled():
            fut.cancel()
        elif task.exception() is not None:
            fut.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            self._apply(task.result())
            fut.set_result(None)
        if self._next is not None:
            self._start_look()

    def heard(self, instance: str, service: str, node: object, heartbeat: object, source: str,
              now_ms: int, *, errors: int = 0, opened: bool = False) -> None:
        """A batch (or a heartbeat: an empty one) from ``instance``, received at ``now_ms``:
        records it as heard without counting events. ``node`` and ``heartbeat`` are the batch's
        fields as sent (kept when well-formed); ``errors``: its stored events that were
        errors; ``opened``: the first batch of a connection."""
        led = self.instances.get(instance)
        if led is None:
            led = self.instances[instance] = InstanceLedger(service=service)
        if service and not led.service:
            led.service = service
        if not led.first_seen_ms:
            led.first_seen_ms = now_ms
        if now_ms > led.heard_ms:
            led.heard_ms = now_ms
        if now_ms > led.last_seen_ms:
            led.last_seen_ms = now_ms
        addr = node_address(node)
        if addr is not None:
            led.node = addr
        if isinstance(heartbeat, (int, float)) and not isinstance(heartbeat, bool) \
                and 0 < heartbeat <= MAX_HEARTBEAT_SECONDS:
            led.heartbeat_s = float(heartbeat)
        led.source = source
        led.errors += errors
        if opened:
            led.connections += 1

    def closed(self, instance: str, now_ms: int) -> None:
        """A connection that carried ``instance``'s batches closed."""
        led = self.instances.get(instance)
        if led is not None and led.connections > 0:
            led.connections -= 1
            if not led.connections:
                led.dropped_ms = now_ms

    def health(self) -> list[dict]:
        """What logs/health.py judges each instance heard by this process by (JSON-ready)."""
        return [{"instance": inst, "service": led.service,
                 "node": list(led.node) if led.node else None, "source": led.source,
                 "first_seen_ms": led.first_seen_ms, "heard_ms": led.heard_ms,
                 "last_seen_ms": led.last_seen_ms, "heartbeat_s": led.heartbeat_s,
                 "connections": led.connections, "dropped_ms": led.dropped_ms,
                 "events": led.received, "errors": led.errors, "missing": led.missing}
                for inst, led in self.instances.items() if led.heard_ms]

    def add_event_id(self, event_id: str, service: str = "", ts: int = 0,
                     covered: bool = False) -> bool:
        instance, _, n = event_id.rpartition(":")
        if not instance or not n.isdigit():
            return True
        return self.add(instance, int(n), service, ts, covered)

    def rebuild(self, data_dir: Path, window_ms: int = DEDUPE_WINDOW_MS,
                worker: int | None = None) -> int:
        """Re-learn the numbers already stored, so resends after our restart are dropped.

        Reads what every worker stored in the last ``window_ms`` (segments and
        Parquet files); a resend older than that is not recognised. ``worker``: this
        process's stream, whose files only it writes from now on (so the ledger knows them).
        """
        self.data_dir = Path(data_dir)
        self.window_ms = window_ms
        self.worker = worker
        self._read_to.clear()
        self._done.clear()
        seen = self._learn_store(own=True)
        for led in self.instances.values():
            led.duplicates = 0  # what we re-read is not a duplicate
        return seen

    def _learn_store(self, own: bool = False) -> int:
        """Learn the event ids of what the store holds that this ledger has not read yet (in
        the loop: :meth:`look` does it in a thread); how many were read."""
        scan = self._scan(dict(self._read_to), set(self._done), own)
        self._apply(scan)
        return scan.ids

    def _scan(self, read_to: dict[str, int], done: set[str], own: bool) -> _Scan:
        """The event numbers of what the store holds beyond ``read_to`` and ``done`` (copies of
        the ledger's, updated here): the bytes appended to each segment since, and the Parquet
        files of segments not read to their end (compaction took them meanwhile). Only the
        siblings' files unless ``own``: what this process stores, :meth:`add` has recorded.
        Files stored before the window (by when they were written, not event time: old events
        arrive late) are skipped. Touches nothing of the ledger's: it may run in a thread."""
        from ..store import catalogue, layout

        assert self.data_dir is not None
        cutoff = time.time() - self.window_ms / 1000
        ids: list[str] = []
        names = set()
        for seg in catalogue.segment_files(self.data_dir):
            stem = seg.path.name[:-len(layout.SEGMENT_SUFFIX)]
            names.add(stem)
            if stem in done or (seg.worker == self.worker and not own):
                continue
            sealed = seg.path.with_name(layout.index_name(seg.path.name)).exists()  # before the read
            try:
                with open(seg.path, "rb") as f:
                    st = os.fstat(f.fileno())
                    start = read_to.get(stem, 0)
                    if start > st.st_size:
                        start = 0  # cut shorter (a torn end recovered): read again, all of it
                    if st.st_mtime < cutoff:
                        data = b""  # stored before the window
                        start = st.st_size
                    else:
                        f.seek(start)
                        data = f.read()
            except FileNotFoundError:
                continue  # compacted meanwhile: its Parquet file is read below
            whole = data.rfind(b"\n") + 1  # a torn last line is no event yet: read it next time
            read_to[stem] = start + whole
            if sealed and whole == len(data):
                done.add(stem)
                read_to.pop(stem, None)
            ids += _piecewise_event_ids(data, whole)
        parquet = []
        for pq in catalogue.parquet_files(self.data_dir):
            stem = pq.path.name[:-len(layout.PARQUET_SUFFIX)]
            names.add(stem)
            if stem in done or (pq.worker == self.worker and not own):
                continue
            done.add(stem)
            read_to.pop(stem, None)
            if _mtime(pq.path) >= cutoff:
                parquet.append(str(pq.path))
        if parquet:
            ids += _parquet_event_ids(parquet)
        return _Scan(_numbers(ids), read_to, done, names, len(ids))

    def _apply(self, scan: _Scan) -> None:
        """Take a :meth:`_scan`'s numbers and how far it read. A look in the loop (an unknown
        instance's, :meth:`add`) may have read further meanwhile: both learned what they read,
        so the further of the two stands, and a file either read whole is done."""
        read_to, done = self._read_to, self._done
        gone = (scan.done | scan.read_to.keys()) - scan.names  # removed: forget their names
        done |= scan.done
        done -= gone
        for stem, end in scan.read_to.items():
            if stem not in done and end > read_to.get(stem, -1):
                read_to[stem] = end
        for stem in gone | (read_to.keys() & done):
            read_to.pop(stem, None)
        self._learn_numbers(scan.numbers)

    def _learn_numbers(self, numbers: dict[str, list[int]]) -> None:
        """Record stored numbers (sorted, each once) per instance, not counted as resends: a
        run that follows its watermark in one step (a sibling's segment holds runs), else
        number by number (the same event seen twice while compaction moved it is no resend)."""
        instances = self.instances
        for instance, ns in numbers.items():
            led = instances.get(instance)
            if led is None:
                led = instances[instance] = InstanceLedger()
            if not led.above and ns[0] <= led.watermark + 1 and ns[-1] - ns[0] + 1 == len(ns):
                if ns[-1] > led.watermark:
                    led.received += ns[-1] - led.watermark
                    led.watermark = ns[-1]
                continue
            for n in ns:
                if not led.add(n):
                    led.duplicates -= 1

    def summary(self) -> list[dict]:
        return [{"instance": inst, "service": led.service, "received": led.received,
                 "highest": led.highest, "missing": led.missing, "duplicates": led.duplicates,
                 "last_seen_ms": led.last_seen_ms}
                for inst, led in sorted(self.instances.items())]
