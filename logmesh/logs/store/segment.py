"""Append-only segment files: group commit, fsync, rotation and sealing.

One writer per worker owns the files ``w<worker>-*.ndjson`` (guarded by an
flock, so two processes can share a data directory without sharing files).
Events are appended to an in-memory buffer and written in groups: one
``write`` and at most one ``fsync`` per group, both in the writer's own I/O
thread so the event loop keeps reading sockets meanwhile. ``durable(seq)`` resolves
once the group holding ``seq`` is on disk, which is what acknowledgements
wait for. While the disk fails (full, or an I/O error) the writer keeps what
it could not write, says so (``failure``) and retries. Opening a stream first
recovers what a previous run left (store/recovery.py); the stream's lock and the
high-water mark of its seqs are store/streams.py.

It counts in prometheus-client counters of the server's registry, labelled ``worker``
(``logmesh_stored_*``, ``logmesh_fsync*``, ``logmesh_store_*``, ``logmesh_recovered_*``):
once per group written and per fsync, never per event; ``stats`` reads them back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from ...fsio import fsync_path, write_atomic
from ...metrics import Metrics, number, value
from . import layout, live_counts
from .live_counts import service_counts
from .recovery import recover_stream
from .segment_index import SegmentIndex
from .streams import claim_worker, save_highwater

_encode_lines = msgspec.json.Encoder().encode_lines

log = logging.getLogger("logmesh.store")

RETRY_SECONDS = 1.0  # a failed write or fsync is retried this often
CLOSE_TIMEOUT_SECONDS = 10.0  # close() gives a failing disk this long
ROOM_BYTES = 1024 * 1024  # free space at which a store that failed for want of it tries again
# The active segment's counts (store/live_counts.py) are saved this long after the first group
# they do not cover, not after every group: a save (encode, stat, write, rename: 0.3-0.45 ms
# of CPU) after each group cost socket ingest ~4% (0.52-0.54 against 0.39-0.40 CPU s a million
# in the other threads; docs/benchmarks.md, review14). At most 4 a second: ~23 ms a million
# events at 60k events/s. A reader counts the lines past them in Python (~3 us a line): at
# most this long's writes, ~60 ms of a call for a worker flooded at 80k lines/s.
COUNTS_SAVE_SECONDS = 0.25


class StoreUnavailable(Exception):
    """The store cannot write now (disk full or failing); the reason says which."""


class LineTooLong(ValueError):
    """A block holds lines longer than layout.MAX_LINE_BYTES; nothing of it was appended (and
    its seqs were given back). ``lines``: their indexes in the block, ``sizes``: their bytes."""

    def __init__(self, lines: list[int], sizes: list[int]) -> None:
        super().__init__(f"{len(lines)} event(s) would be stored as lines of up to {max(sizes)} "
                         f"bytes; a stored line may take at most {layout.MAX_LINE_BYTES}")
        self.lines = lines
        self.sizes = sizes


def too_long(blob: bytes) -> tuple[list[int], list[int]]:
    """(indexes, sizes) of the lines of ``blob`` longer than layout.MAX_LINE_BYTES, newline
    included: nothing looked at for a blob no longer than that, as nearly every one is."""
    if len(blob) <= layout.MAX_LINE_BYTES:
        return [], []
    sizes = [len(line) + 1 for line in blob.split(b"\n")[:-1]]
    lines = [i for i, n in enumerate(sizes) if n > layout.MAX_LINE_BYTES]
    return lines, [sizes[i] for i in lines]


class _WriteFailed(Exception):
    def __init__(self, cause: OSError, pending_offset: int) -> None:
        super().__init__(str(cause))
        self.pending_offset = pending_offset  # the first block not written


# The most buffers one writev takes (the kernel's IOV_MAX; 1024 on Linux)
_IOV_MAX = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024)


def _write_all(fd: int, chunks: list) -> None:
    """Write the blocks one after another with ``writev``, none of them copied or joined:
    a bulk body's MBs of lines go to the kernel as they were encoded."""
    i = 0
    while i < len(chunks):
        batch = chunks[i:i + _IOV_MAX]
        n = os.writev(fd, batch)
        for chunk in batch:
            if n < len(chunk):
                break
            n -= len(chunk)
            i += 1
        else:
            continue
        if n:  # a short write ended inside this block: its rest is written next
            chunks = [memoryview(chunks[i])[n:], *chunks[i + 1:]]
            i = 0


class SegmentWriter:
    """The single writer of one worker's segment stream."""

    def __init__(
        self,
        data_dir: Path,
        worker: int = 0,
        *,
        fsync: str = "batch",
        fsync_interval: float = layout.DEFAULT_FSYNC_INTERVAL,
        rotate: str = "hour",
        max_segment_bytes: int = layout.DEFAULT_MAX_SEGMENT_BYTES,
        clock: Callable[[], float] = time.time,
        lock_fd: int | None = None,
        metrics: Metrics | None = None,
        counts_interval: float = COUNTS_SAVE_SECONDS,
    ) -> None:
        """``metrics``: the registry its counters go to (the server's; one of its own if
        None), labelled ``worker``. ``counts_interval``: see COUNTS_SAVE_SECONDS."""
        if fsync not in ("always", "batch", "off"):
            raise ValueError(f"unknown fsync mode {fsync!r}; use always, batch or off")
        if rotate not in layout.ROTATE_SECONDS:
            raise ValueError(f"unknown rotation {rotate!r}; use {' or '.join(layout.ROTATE_SECONDS)}")
        self.dir = Path(data_dir) / layout.SEGMENTS_DIR
        self.worker = worker
        self.fsync_mode = fsync
        self.fsync_interval = fsync_interval
        self.rotate_ms = layout.ROTATE_SECONDS[rotate] * 1000
        self.max_segment_bytes = max_segment_bytes
        self.clock = clock
        # Shown every block of Event structs taken (not pre-encoded ones): the health monitor's
        # counts of the gateway's answers (logs/gateway_counts.py), kept without a query
        self.observer: Callable[[list], None] | None = None
        self._lock_fd: int | None = lock_fd  # from claim_worker, or taken by open()
        self._fd: int | None = None
        self.path: Path | None = None
        self.index: SegmentIndex | None = None
        self._bucket = -1
        self._counter = 0
        # the blocks appended and not yet written, as they were encoded (never copied or
        # joined: the writer thread hands them to writev), and their total size
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._buf_last_seq = -1
        # what each block of _buf holds: (bytes, first_seq, last_seq, count, min_ts, max_ts,
        # first_ts, events per service)
        self._pending_blocks: list[tuple[int, int, int, int, int, int, int, dict[str, int]]] = []
        self.written_seq = -1  # last seq handed to the kernel
        self.durable_seq = -1  # last seq known fsynced (or written, with fsync off)
        # (seq, future, first seq of a block to withdraw, answer on failure): see durable()
        self._waiters: list[tuple[int, asyncio.Future[None], int | None, bool]] = []
        self.failure: str | None = None  # why the store cannot write now (None: it can)
        self._failed_at = 0.0
        self._flush_task: asyncio.Task | None = None
        # One thread does the segment I/O (writes, rotation, fsync), in the order the flusher asks.
        self._io = ThreadPoolExecutor(1, thread_name_prefix="store-io")
        self._wakeup: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None  # the flusher's next tick, while armed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.counts_interval = counts_interval
        # What the counts file should say and does not yet: (segment, bytes covered, the last
        # block written), set by the I/O thread after each group; saved by it on a timer
        self._counts_due: tuple[Path, int, bytes] | None = None
        self._counts_timer: asyncio.TimerHandle | None = None
        self._counts_save: asyncio.Future | None = None  # the save handed to the I/O thread
        m = metrics or Metrics()
        w = str(worker)

        def counter(name: str, help_text: str) -> Any:
            return m.counter(name, help_text, ["worker"]).labels(w)

        self.stored_events = counter("logmesh_stored_events_total", "Events written by this worker.")
        self.stored_bytes = counter("logmesh_stored_bytes_total", "Bytes written by this worker.")
        self.fsyncs = counter("logmesh_fsyncs_total", "fsync calls (one per group).")
        self.fsync_seconds = counter("logmesh_fsync_seconds_total", "Time spent in fsync.")
        # The longest so far: under --workers the largest of the worker's processes' values.
        self.fsync_seconds_max = m.gauge("logmesh_fsync_seconds_max", "Longest fsync so far.",
                                         ["worker"], mode="max").labels(w)
        self.write_errors = counter("logmesh_store_write_errors_total", "Failed segment writes (retried).")
        self.withdrawn_events = counter(
            "logmesh_store_withdrawn_events_total",
            "Events of HTTP requests answered 507 on a failing disk (not stored).")
        self.damaged_lines = counter("logmesh_recovered_damaged_lines_total",
                                     "Damaged lines crash recovery moved to the quarantine directory.")
        self.damaged_bytes = counter("logmesh_recovered_damaged_bytes_total", "Bytes of those lines.")
        self.torn_bytes = counter("logmesh_recovered_torn_bytes_total",
                                  "Bytes of a last write a crash cut short (never acknowledged).")
        self.segments_sealed = 0  # not metrics; in stats
        self.last_sealed: Path | None = None  # the segment sealed last (store/pacing.py)
        self.failures = 0
        self._saved_highwater = -1
        self.on_seal: list[Callable[[Path, SegmentIndex], None]] = []  # e.g. compaction
        self.on_flush: list[Callable[[], None]] = []  # e.g. resume paused connections, wake tails
        # A group handed to the I/O thread: the buffer is empty again (resume paused connections
        # now, not once the group is written: the loop reads on while the writer writes)
        self.on_handover: list[Callable[[], None]] = []

    # -- opening and recovery ------------------------------------------------
    def open(self) -> None:
        """Recover the unsealed segment a previous run left, and find where seqs go on
        (store/recovery.py: from every durable trace of this worker, not its segments alone)."""
        if self._lock_fd is None:
            _, self._lock_fd = claim_worker(self.dir.parent, self.worker)
        found = recover_stream(self.dir.parent, self.worker)
        self.damaged_lines.inc(found.damaged_lines)
        self.damaged_bytes.inc(found.damaged_bytes)
        self.torn_bytes.inc(found.torn_bytes)
        last_seq = found.last_seq
        try:
            self._save_highwater(last_seq)
        except OSError as exc:  # a full disk: found again from the segments; saved at the next seal
            log.error("store: cannot save the high-water mark at start (%s)", exc)
        self._counter = layout.split_seq(last_seq)[0] + 1 if last_seq >= 0 else 1
        self.written_seq = self.durable_seq = last_seq

    def _save_highwater(self, last_seq: int) -> None:
        if last_seq > self._saved_highwater:
            save_highwater(self.dir.parent, self.worker, last_seq)
            self._saved_highwater = last_seq

    @property
    def stats(self) -> dict[str, int | float]:
        """The counts (events and bytes written, not buffered): read from the metrics, with
        the segments sealed and the times the store started failing."""
        return {"events": number(value(self.stored_events)),
                "bytes": number(value(self.stored_bytes)),
                "fsyncs": number(value(self.fsyncs)), "segments_sealed": self.segments_sealed,
                "fsync_seconds_total": value(self.fsync_seconds),
                "fsync_seconds_max": value(self.fsync_seconds_max),
                "write_errors": number(value(self.write_errors)),
                "damaged_lines": number(value(self.damaged_lines)),
                "damaged_bytes": number(value(self.damaged_bytes)),
                "torn_bytes": number(value(self.torn_bytes)), "failures": self.failures,
                "withdrawn_events": number(value(self.withdrawn_events))}

    @property
    def buffered_bytes(self) -> int:
        return self._buf_bytes

    @property
    def appended_seq(self) -> int:
        """The last seq handed out by :meth:`append_events` in this run (-1: none yet)."""
        return self._buf_last_seq

    @property
    def next_seq(self) -> int:
        return layout.make_seq(self._counter, self.worker)

    @property
    def appended_count(self) -> int:
        """Events given seqs so far, from any thread: how busy ingest is (store/pacing.py)."""
        return self._counter

    # -- appending -----------------------------------------------------------
    def reserve(self, n: int) -> range:
        """The next ``n`` sequence numbers; append their events before yielding to the loop."""
        c = self._counter
        self._counter = c + n
        return range(layout.make_seq(c, self.worker), layout.make_seq(c + n, self.worker),
                     1 << layout.WORKER_BITS)

    def append_events(self, events: list) -> int:
        """Give each event its ``seq`` and append them as one block; returns the last seq.

        ``events`` are :class:`logmesh.logs.ingest.common.Event` structs with
        ``@timestamp`` set.
        """
        if not events:
            return self._buf_last_seq
        min_ts = max_ts = events[0].timestamp
        for ev, seq in zip(events, self.reserve(len(events)), strict=True):
            ev.seq = seq
            ts = ev.timestamp
            if ts < min_ts:
                min_ts = ts
            elif ts > max_ts:
                max_ts = ts
        return self.append_block(events, min_ts, max_ts)

    def append_block(self, events: list, min_ts: int, max_ts: int) -> int:
        """Append events that already carry seqs from :meth:`reserve`, in order.

        One ``encode_lines`` call makes the whole block (per-event encode calls
        cost twice as much, bench/ingest_peers.py); the hot path gives each
        event its seq as it builds it, which saves a pass over the events.
        Nothing touches the disk here: the flusher writes blocks as one group.
        """
        last = self.append_encoded(_encode_lines(events), events[0].seq, events[-1].seq,
                                   len(events), min_ts, max_ts, events[0].timestamp,
                                   services=service_counts(events))
        if self.observer is not None:
            self.observer(events)  # after: not the events of a block refused (LineTooLong)
        return last

    def append_fitting(self, events: list) -> tuple[int, list[tuple[int, int]]]:
        """:meth:`append_events` of the events whose stored line fits (layout.MAX_LINE_BYTES);
        returns (the last seq, [(index in ``events``, bytes its line would take)] of the others)."""
        try:
            return self.append_events(events), []
        except LineTooLong as exc:
            refused = list(zip(exc.lines, exc.sizes, strict=True))
            skip = set(exc.lines)
            rest = [ev for i, ev in enumerate(events) if i not in skip]
            return (self.append_events(rest) if rest else self.appended_seq), refused

    def append_encoded(self, blob: bytes, first: int, last: int, count: int, min_ts: int,
                       max_ts: int, first_ts: int, *, services: dict[str, int]) -> int:
        """Append ``count`` stored lines already encoded (seqs ``first``..``last`` from
        :meth:`reserve`, timestamps in [min_ts, max_ts], ``services``: how many have each
        ``service.name``); returns the last seq.

        Raises LineTooLong, appending none of them, when a line is longer than
        layout.MAX_LINE_BYTES: every ingest path refuses such events before acknowledging them."""
        if blob.__class__ is not bytes:
            blob = bytes(blob)  # kept until written: a caller's bytearray could change meanwhile
        lines, sizes = too_long(blob)
        if lines:
            if last == layout.make_seq(self._counter - 1, self.worker):
                self._counter = layout.split_seq(first)[0]  # the seqs go to the next events
            raise LineTooLong(lines, sizes)
        self._buf.append(blob)
        self._buf_bytes += len(blob)
        self._pending_blocks.append((len(blob), first, last, count, min_ts, max_ts, first_ts,
                                     services))
        self._buf_last_seq = last
        self._kick()
        return last

    async def durable(self, seq: int, *, on_failure: str = "wait", first: int | None = None,
                      within: float = 0.0) -> None:
        """Return once ``seq`` is on disk per the fsync mode.

        ``within``: the flush may wait that many seconds (at most) for other appends to join
        its group, where a caller would sleep first: one timer for every waiter of a group,
        where each sleep was a timer and maybe a wake-up of the loop of its own.

        While the store cannot write (a full disk), ``on_failure`` says what
        the caller would rather have than an indefinite wait:

        * ``"wait"``: wait until it is written;
        * ``"raise"``: :class:`StoreUnavailable` now; the events stay buffered
          and are written later (a shipper resends, and the store drops the
          copy by ``event.id``);
        * ``"withdraw"``: the caller appended ``first``..``seq`` as one block; if
          it is still unwritten it is taken back and :class:`StoreUnavailable`
          raised, so a client without event ids (HTTP) may retry it without
          storing it twice.
        """
        if seq <= self.durable_seq:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, fut, first if on_failure == "withdraw" else None,
                              on_failure != "wait"))
        if within > 0:
            self._kick_within(within)
        else:
            self._kick(now=True)
        if self.failure is not None:
            self._answer_failed_waiters()
        await fut

    # -- flushing ------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """The flusher ended by itself: nothing appended is made durable any more (/healthz)."""
        return self._flush_task is not None and self._flush_task.done()

    def start(self) -> None:
        if self._lock_fd is None:
            self.open()
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._flush_task = self._loop.create_task(self._flusher(), name="store-flush")

    def _kick(self, now: bool = False) -> None:
        """An append or a waiter: flush now if asked (or the buffer is large), else within
        ``fsync_interval`` (arms the flusher's tick if it is idle, without waking it)."""
        wakeup = self._wakeup
        if wakeup is None:
            return
        if now or self.fsync_mode == "always" or self._buf_bytes >= 1024 * 1024:
            wakeup.set()
        elif self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(self.fsync_interval, wakeup.set)

    def _kick_within(self, seconds: float) -> None:
        """Flush within ``seconds``: the flusher's tick brought forward (never put off)."""
        wakeup, loop = self._wakeup, self._loop
        if wakeup is None or loop is None or wakeup.is_set():
            return
        when = loop.time() + seconds
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = loop.call_at(when, wakeup.set)

    async def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until a kick or the tick, which is armed only while something is buffered, waited
        for or failing (the disk's room is looked at on the tick): an idle store has no timer.

        A tick of the loop costs 0.3-0.4 ms of CPU on the 2-core VM the benches run on (the
        wake-up's, not the work's), and ``asyncio.wait_for`` a task, a future and a timer more
        than an Event and a timer handle (docs/benchmarks.md, "eleventh part")."""
        wakeup = self._wakeup
        assert wakeup is not None
        if not wakeup.is_set():
            if self._timer is None and (self._buf or self._waiters or self.failure is not None):
                self._timer = loop.call_later(self.fsync_interval, wakeup.set)
            await wakeup.wait()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wakeup.clear()

    async def _flusher(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._tick(loop)
            if not self._buf and not self._waiters:
                if self._closing:
                    return
                if self.failure is not None and self._room_again():
                    log.info("store: the disk has room again; writing resumes")
                    self.failure = None
                continue
            try:
                await self._flush_once(loop)
            except Exception as exc:  # never die silently: say so, stay unhealthy, retry
                log.exception("store flush failed; retrying in %.0fs", RETRY_SECONDS)
                self._fail(f"store flush failed: {exc!r}")
                await asyncio.sleep(RETRY_SECONDS)
            if self._counts_due is not None and self._counts_timer is None and not self._closing:
                self._counts_timer = loop.call_later(self.counts_interval, self._counts_tick)
            for hook in self.on_flush:
                hook()
            if self._closing and not self._buf:
                return

    def _room_again(self) -> bool:
        """With nothing buffered, only this finds out that a full disk has room again.

        Ingest turns writers away while ``failure`` is set (HTTP 507, a 507
        reply to a batch), so no write would come to try the disk.
        """
        if time.monotonic() - self._failed_at < RETRY_SECONDS:
            return False
        try:
            st = os.statvfs(self.dir)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize >= ROOM_BYTES

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failures += 1
        self.failure = reason
        self._failed_at = time.monotonic()
        self._answer_failed_waiters()

    async def _flush_once(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._buf:
            data = self._buf  # handed over whole, not copied: appends go to a fresh list
            pending = self._pending_blocks
            last = self._buf_last_seq
            self._buf = []
            self._buf_bytes = 0
            self._pending_blocks = []
            for hook in self.on_handover:
                hook()
            # In the writer's thread, one hop for the write and its fsync: the kernel copies
            # the group (~0.5 us an event) and syncs it while the loop goes on reading
            # sockets; appends meanwhile go to the fresh buffer.
            write = loop.run_in_executor(self._io, self._write_and_sync, data, pending, last)
            try:
                took = await asyncio.shield(write)
            except asyncio.CancelledError:
                # close() gave up waiting: the thread's write goes on with the segment's fd,
                # so it ends before close() seals (fsyncs and closes that fd), and the blocks
                # it did not write are held, not dropped; a write to a full disk fails at once
                await asyncio.wait([write])
                if isinstance(write.exception(), _WriteFailed):
                    self._hold(data, pending, write.exception())
                raise
            except _WriteFailed as exc:
                # Disk full or failing: what was written stays (and is synced below); the rest
                # stays buffered, unacknowledged, and is retried block by block.
                self._hold(data, pending, exc)
                try:
                    await self._sync(loop)
                finally:
                    await asyncio.sleep(RETRY_SECONDS)
                return
            if took is not None:
                self._count_fsync(took)
            self._mark_durable(last)
        else:  # nothing new: what a waiter asks for may be written and not yet synced
            await self._sync(loop)
        self.failure = None

    def _hold(self, data: list[bytes], pending: list, exc: _WriteFailed) -> None:
        """A group's write failed at ``exc.pending_offset``: the blocks before it are written,
        the rest go back to the buffer's front, unacknowledged, to be retried."""
        self.write_errors.inc()
        log.error("store write failed (%s); %d block(s) held, retrying in %.0fs",
                  exc, len(pending) - exc.pending_offset, RETRY_SECONDS)
        held = data[exc.pending_offset:]
        self._buf[:0] = held
        self._buf_bytes += sum(map(len, held))
        self._pending_blocks[:0] = pending[exc.pending_offset:]
        if exc.pending_offset:
            self.written_seq = pending[exc.pending_offset - 1][2]
        self._fail(f"store write failed: {exc}")

    def _write_and_sync(self, data: list[bytes], pending: list, last: int) -> float | None:
        """In the I/O thread: write a group, then fsync it per the mode; the seconds the fsync
        took (None: none). One hop a group, not one for the write and one for the fsync: each
        costs a submit, a thread wake-up and the loop's self-pipe wake-up."""
        self._write_group(data, pending)
        self.written_seq = last  # handed to the kernel (a sink's lag reads it meanwhile)
        if self.fsync_mode == "off" or self._fd is None:
            return None
        return self._fsync()

    def _fsync(self) -> float:
        """In the I/O thread: fsync the active segment; the seconds it took."""
        assert self._fd is not None
        t0 = time.perf_counter()
        os.fsync(self._fd)
        return time.perf_counter() - t0

    def _count_fsync(self, took: float) -> None:
        self.fsyncs.inc()
        self.fsync_seconds.inc(took)
        if took > value(self.fsync_seconds_max):
            self.fsync_seconds_max.set(took)

    async def _sync(self, loop: asyncio.AbstractEventLoop) -> None:
        """fsync what was written (per the mode) and resolve the waiters it covers."""
        if self.fsync_mode == "off":
            self._mark_durable(self.written_seq)
            return
        target = self.written_seq
        if target > self.durable_seq and self._fd is not None:
            self._count_fsync(await loop.run_in_executor(self._io, self._fsync))
        self._mark_durable(target)

    def _mark_durable(self, seq: int) -> None:
        self.durable_seq = max(self.durable_seq, seq)
        keep = []
        for waiter in self._waiters:
            fut = waiter[1]
            if waiter[0] <= self.durable_seq:
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                keep.append(waiter)
        self._waiters = keep

    def _answer_failed_waiters(self) -> None:
        """Answer the waiters that asked not to wait on a failing disk (see :meth:`durable`)."""
        reason = self.failure or "store unavailable"
        for s, fut, first, impatient in self._waiters:
            if not impatient or fut.done():
                continue
            for i, block in enumerate(self._pending_blocks if first is not None else ()):
                if block[1] == first and block[2] == s:
                    del self._buf[i]
                    self._buf_bytes -= block[0]
                    del self._pending_blocks[i]
                    self.withdrawn_events.inc(block[3])
                    fut.set_exception(StoreUnavailable(reason))
                    break
            else:
                if first is None:
                    fut.set_exception(StoreUnavailable(reason))

    def _write_group(self, data: list[bytes], pending: list) -> None:
        """Write one group of blocks, rotating first when the clock's hour (day) or size says so.

        Rotation follows the logs service's own clock, not the events'
        timestamps: a shipper with a wrong clock cannot pin the stream to one
        file. A block (one read's events) never spans two segments. When a
        write fails, the blocks before the failing one are kept: a full disk
        takes what fits, block by block, instead of nothing until the whole
        backlog fits. ``data`` holds the blocks, one for each of ``pending``.
        """
        bucket = int(self.clock() * 1000) // self.rotate_ms
        i = 0
        while i < len(pending):
            if self._fd is None or bucket != self._bucket or (
                    self.index is not None and self.index.bytes >= self.max_segment_bytes):
                try:
                    self._rotate(pending[i][1], bucket)
                except Exception as exc:  # disk full while sealing or creating: retried like a write
                    raise _WriteFailed(exc, i) from exc
            assert self._fd is not None and self.index is not None
            j, size = i, 0
            while j < len(pending):
                size += pending[j][0]
                j += 1
                if self.index.bytes + size >= self.max_segment_bytes:
                    break
            try:
                _write_all(self._fd, data[i:j])
            except OSError:
                os.ftruncate(self._fd, self.index.bytes)  # never leave half a block behind
                self._write_blocks(data, pending, i, j)  # raises _WriteFailed
            self._account(pending[i:j], size)
            i = j
        if data:
            self._counts_due = (self.path, self.index.bytes, data[-1])  # type: ignore[arg-type]

    def _write_blocks(self, data: list[bytes], pending: list, i: int, j: int) -> None:
        """After a failed group write: write ``pending[i:j]`` one by one until one fails."""
        assert self._fd is not None and self.index is not None
        for k in range(i, j):
            size = pending[k][0]
            try:
                _write_all(self._fd, data[k:k + 1])
            except OSError as exc:
                os.ftruncate(self._fd, self.index.bytes)
                raise _WriteFailed(exc, k) from exc
            self._account([pending[k]], size)
        raise _WriteFailed(OSError("a group write failed, its blocks did not"), j)

    def _account(self, blocks: list, size: int) -> None:
        assert self.index is not None
        offset = self.index.bytes
        events = 0
        for nbytes, first, last, count, min_ts, max_ts, first_ts, services in blocks:
            self.index.add_block(first, last, count, min_ts, max_ts, first_ts, offset, nbytes)
            self.index.add_services(services)
            offset += nbytes
            events += count
        self.index.bytes = offset
        self.stored_events.inc(events)  # in the I/O thread: prometheus-client's values lock
        self.stored_bytes.inc(size)

    def _counts_tick(self) -> None:
        """In the loop, ``counts_interval`` after a group the counts file does not cover: the
        save goes to the I/O thread, between groups, where the index matches the file."""
        self._counts_timer = None
        if not self._closing and self._loop is not None:
            self._counts_save = self._loop.run_in_executor(self._io, self._save_counts)

    def _save_counts(self) -> None:
        """In the I/O thread: the active segment's counts as far as it is written
        (store/live_counts.py), for /api/v1/stats, if the last group's are not saved yet. Not
        fsynced: a crash's recovery removes them and counts the lines; a failure to write
        them costs stats a read of the lines."""
        due, self._counts_due = self._counts_due, None
        if due is None or self.index is None or self._fd is None:
            return
        path, covered, last_block = due
        if path != self.path or covered != self.index.bytes:
            return  # rotated since, or a failed write's blocks counted: the next group's save
        try:
            live_counts.save(path, self.index, last_block)
        except OSError as exc:
            log.debug("store: cannot save the counts of %s (%s)", path.name, exc)

    def _rotate(self, first_seq: int, bucket: int) -> None:
        self._seal()
        self.path = self.dir / layout.segment_name(self.worker, first_seq)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self.fsync_mode != "off":
            fsync_path(self.dir)  # fsync of the file alone does not make its new name durable
        self.index = SegmentIndex(first_seq)
        self._bucket = bucket
        log.debug("opened segment %s", self.path.name)

    def _seal(self) -> None:
        """fsync and close the active segment, then write its index.

        If writing the index fails (a full disk), the segment stays without
        one: its events are on disk, and the next open() recovers and seals it.
        """
        if self._fd is None or self.path is None or self.index is None:
            return
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        if self.index.count:
            write_atomic(self.path.with_name(layout.index_name(self.path.name)), self.index.to_json())
            live_counts.remove(self.path)  # the sealed index says it all now
            self._save_highwater(self.index.last_seq)  # before compaction or retention can remove it
            self.segments_sealed += 1
            self.last_sealed = self.path
            for hook in self.on_seal:
                hook(self.path, self.index)
        else:
            live_counts.remove(self.path)
            self.path.unlink(missing_ok=True)
        self.durable_seq = max(self.durable_seq, self.written_seq)

    async def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Flush and fsync everything, seal the active segment, release the lock.

        Bounded: on a disk that stays full, what cannot be written in
        ``timeout`` seconds is given up (never acknowledged: acks wait for the
        disk) and said so, so SIGTERM ends the process in every state.
        """
        self._closing = True
        if self._counts_timer is not None:
            self._counts_timer.cancel()  # sealing below writes the counts into the index
            self._counts_timer = None
        if self._counts_save is not None:
            await asyncio.wait([self._counts_save])  # before _seal removes the file, not after
        if self._flush_task is not None:
            self._wakeup.set()  # type: ignore[union-attr]
            try:
                await asyncio.wait_for(asyncio.shield(self._flush_task), timeout)
            except TimeoutError:
                self._flush_task.cancel()
                # it ends once its write in the I/O thread does (_flush_once), and a no-op job
                # waits for an fsync it left there: nothing uses the fd that _seal closes
                await asyncio.wait([self._flush_task])
                await asyncio.get_running_loop().run_in_executor(self._io, int)
                log.error("store: closing with %d unwritten byte(s) (never acknowledged): %s",
                          self._buf_bytes, self.failure)
            self._flush_task = None
        elif self._buf:
            self._write_group(self._buf, self._pending_blocks)
            self._buf = []
            self._buf_bytes = 0
            self._pending_blocks = []
            for hook in self.on_handover:
                hook()
        try:
            self._seal()
        except OSError as exc:  # the next start recovers the segment from its lines
            log.error("store: cannot seal %s on close (%s)", self.path, exc)
        self._mark_durable(self.written_seq)
        for _, fut, _, _ in self._waiters:
            if not fut.done():
                fut.set_exception(StoreUnavailable("the store closed before writing this"))
        self._waiters = []
        self._io.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def active_path(self) -> Path | None:
        return self.path
