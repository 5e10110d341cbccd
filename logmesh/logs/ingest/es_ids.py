"""Elasticsearch bulk ``_id``: a document whose ``_id`` is already stored in its index is not
stored again, across retries, restarts and workers.

A client that retries a ``_bulk`` after a timeout (the official clients' bulk helpers,
Filebeat, Logstash, Vector) sends the same ``_id`` again; Elasticsearch answers a ``create``
of a stored ``_id`` with the item's 409 ``version_conflict_engine_exception`` and an
``index`` of one with 200 ``updated`` (it replaces the document: the retry's copy is the
same), and those clients count either as done. Here the ids of the last ``WINDOW_MS``
(at most ``MAX_IDS`` of them, the oldest forgotten first) are known per index, and the
answer is Elasticsearch's while the first copy stays the only one.

Where the ids live: one journal for the whole data directory (``es-ids/journal``), so a
retry that lands on the other worker (``--workers 2``, SO_REUSEPORT) finds them, and one
``flock`` (``es-ids/lock``) held by whichever worker is storing a body with ids, from
before it looks its ids up until they are on disk:

1. take the lock; read what the siblings appended since last time (the window in memory);
2. judge each id; append the new events to the store (seqs given) and, before the store
   writes a byte of them, the claim ``{"t": ms, "ids": [[index, id, seq], ...]}``;
3. wait until the events are durable, fsync the journal, append ``{"done": 1}`` (or
   ``{"undo": 1}`` when the store refused them) and let the lock go.

A claim with neither after it is one whose writer died holding the lock (kill -9): the next
holder looks its seqs up in the store (:func:`stored_seqs`) and keeps the ids of the events
that are there, so an event is answered 409 exactly when it is stored. The journal is
rewritten with the window alone when it grows past ``MAX_JOURNAL_BYTES``.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from itertools import groupby, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from .es_bulk import ANSWER_INDEX, id_text
from .es_ids_store import Found, ids_since, stored_seqs

log = logging.getLogger("logmesh.logs.ingest")

IDS_DIR = "es-ids"  # in the data directory: the journal and its lock
JOURNAL_FILE = "journal"
LOCK_FILE = "lock"
WINDOW_MS = 3600 * 1000  # a retry is recognised this long after the first copy (the ledger's window)
MAX_IDS = 500_000  # ids remembered at most (~250 bytes each in memory); the oldest go first
MAX_JOURNAL_BYTES = 64 * 1024 * 1024  # past this the journal is rewritten with the window alone
_first = itemgetter(0)
_second = itemgetter(1)
_third = itemgetter(2)
Key = tuple[str, bytes]  # (index, the _id's JSON text as orjson writes it)


def _claim_record(keys: list[Key], seqs: list[int], ts: int, index: str | None = None) -> bytes:
    """``{"t": ts, "ids": [[index, id, seq], ...]}`` and its newline, the ids' JSON text as it is.
    A body under one index (nearly all) is one ``%`` template mapped over its rows in C: a
    ``%`` a row from Python cost ~1 µs an id. ``index``: every key's, when the caller knows it
    (:meth:`BulkIds.all_new`'s keys): finding it cost ~150 instructions an id (callgrind)."""
    indexes = {index} if index is not None else set(map(_first, keys))
    if len(indexes) <= 1:
        index = orjson.dumps(indexes.pop()).replace(b"%", b"%%") if indexes else b'""'  # text, not a format
        rows = map((b"[" + index + b",%s,%d]").__mod__, zip(map(_second, keys), seqs, strict=True))
    else:
        names = {index: orjson.dumps(index) for index in indexes}
        rows = (b"[%s,%s,%d]" % (names[index], doc_id, seq) for (index, doc_id), seq in zip(keys, seqs, strict=True))
    return b'{"t":%d,"ids":[%s]}\n' % (ts, b",".join(rows))


def _journal_record(line: bytes, now: int) -> tuple[int, list[Key], list[int]] | dict | None:
    """A journal line as a claim ``(ts, keys, seqs)`` or an end (its dict); None, with a warning,
    for a line damaged on disk (not JSON, or JSON of another shape): a start must not die of it."""
    try:
        rec = orjson.loads(line)
        if not isinstance(rec, dict):
            raise ValueError("not an object")
        if "ids" not in rec:
            if rec != {"done": 1} and rec != {"undo": 1}:
                raise ValueError("neither a claim nor its end")
            return rec
        ts = rec.get("t", now)
        if not isinstance(ts, int):
            raise ValueError("t is no integer")
        keys, seqs = [], []
        for index, doc_id, seq in rec["ids"]:
            if not isinstance(index, str) or not isinstance(seq, int):
                raise ValueError("an id is not [index, id, seq]")
            keys.append((index, id_text(doc_id)))
            seqs.append(seq)
        return ts, keys, seqs
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        log.warning("es-ids journal: a damaged line skipped (%s): %.80r", exc, line)
        return None


class BulkIds:
    """The window of recent ``_id`` per index, shared by the workers of ``data_dir``."""

    def __init__(self, data_dir: Path, *, window_ms: int = WINDOW_MS, max_ids: int = MAX_IDS,
                 max_journal_bytes: int = MAX_JOURNAL_BYTES) -> None:
        self.dir = Path(data_dir) / IDS_DIR
        self.data_dir = Path(data_dir)
        self.window_ms = window_ms
        self.max_ids = max_ids
        self.max_journal_bytes = max_journal_bytes
        self.seen: OrderedDict[Key, int] = OrderedDict()  # (index, id) -> the stored event's seq
        self._batches: deque[tuple[int, int]] = deque()  # (ms, ids added until then): time eviction
        self._added = 0
        self._evicted = 0
        self._fd = -1
        self._ino = -1
        self._offset = 0
        self._lock_fd = -1
        self._local = asyncio.Lock()  # one holder per process; the flock is per open file
        self.resolved = 0  # claims of a writer that died, judged against the store
        self.relearned = 0  # ids the journal lacked and the store had, at start (_learn_store)

    # -- the window ---------------------------------------------------------------
    def _remember(self, keys: list[Key], seqs: list[int], ts: int) -> None:
        self.seen.update(zip(keys, seqs, strict=True))
        self._added += len(keys)
        self._batches.append((ts, self._added))
        self._evict(ts)

    def all_new(self, parsed: Any) -> list[Key] | None:
        """The keys of a body under one action whose every event names an ``_id`` that is new
        (to the window and within the body), in order; None for any other body (checked an
        event at a time). C passes: a lookup per event in Python cost ~1 µs an event."""
        ids = parsed.ids
        if parsed.uniform is None or None in ids:
            return None
        keys = list(zip(repeat(parsed.uniform[1] or ANSWER_INDEX), ids))
        if self.seen.keys() & keys or len(set(keys)) != len(keys):
            return None
        return keys

    def _evict(self, now: int) -> None:
        seen, batches = self.seen, self._batches
        cutoff = now - self.window_ms
        while batches and batches[0][0] < cutoff:
            _, upto = batches.popleft()
            while self._evicted < upto and seen:
                seen.popitem(last=False)
                self._evicted += 1
        while len(seen) > self.max_ids:
            seen.popitem(last=False)
            self._evicted += 1

    def _forget(self, keys: list[Key], seqs: list[int]) -> None:
        for key, seq in zip(keys, seqs, strict=True):
            if self.seen.get(key) == seq:
                del self.seen[key]
                self._evicted += 1  # counted as gone: the FIFO arithmetic holds

    def known(self, index: str, doc_id: bytes) -> int | None:
        """The seq of the stored event of ``doc_id`` (JSON text) in ``index``, if within the window."""
        return self.seen.get((index, doc_id))

    # -- the journal --------------------------------------------------------------
    def open(self) -> None:
        """Open (make) the journal and re-read it: at start, under the lock."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._catch_up()
            self._learn_store()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _learn_store(self) -> None:
        """Add to the window the ids the store's events of the window carry and the journal
        lacks (es_ids_store.py): a journal damaged on disk forgot them, and a retry of one
        must not be stored again. Called at start, under the lock: every sibling's claim is
        then done (its events on disk) or judged."""
        now = int(time.time() * 1000)
        seen = self.seen
        lacking = [f for f in ids_since(self.data_dir, now - self.window_ms) if f[1] not in seen]
        if not lacking:
            return
        entries = sorted([*self._entries(), *lacking], key=_first)  # by time; stable
        seen.clear()
        self._batches.clear()
        for ts, key, seq in entries:
            if key not in seen:  # the first copy's seq (a store that holds two: the old bug's)
                seen[key] = seq
                if self._batches and self._batches[-1][0] == ts:
                    self._batches[-1] = (ts, len(seen))
                else:
                    self._batches.append((ts, len(seen)))
        self._added, self._evicted = len(seen), 0
        self._evict(now)
        kept = self.relearned = sum(1 for _, key, _ in lacking if key in seen)
        if kept:
            log.warning("es-ids: %d id(s) of the last %d s found in the store and not in the journal "
                        "(damaged on disk?): known again", kept, self.window_ms // 1000)

    def _entries(self) -> list[Found]:
        """The window as (ms, key, seq), oldest first: each key's time is its batch's."""
        out = []
        batches = iter(self._batches)
        ts, upto = next(batches, (0, 0))
        added = self._evicted
        for key, seq in self.seen.items():
            added += 1
            while added > upto:
                ts, upto = next(batches, (ts, added))
            out.append((ts, key, seq))
        return out

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1

    def _reopen(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.dir / JOURNAL_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                           0o644)
        self._ino = os.fstat(self._fd).st_ino
        self._offset = 0
        self.seen.clear()
        self._batches.clear()
        self._added = self._evicted = 0

    def _catch_up(self) -> None:
        """Read what was appended since last time (all of it after a rewrite); a claim left
        open at the end is judged against the store. Called holding the lock."""
        try:
            ino = os.stat(self.dir / JOURNAL_FILE).st_ino
        except FileNotFoundError:
            ino = -2
        if self._fd < 0 or ino != self._ino:
            self._reopen()
        size = os.fstat(self._fd).st_size
        if size <= self._offset:
            return
        data = os.pread(self._fd, size - self._offset, self._offset)
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a record torn by a kill: its writer stored nothing after it
            os.ftruncate(self._fd, self._offset + end)
            data = data[:end]
        self._offset += end
        now = int(time.time() * 1000)
        pending: tuple[int, list[Key], list[int]] | None = None
        for line in data.splitlines():
            rec = _journal_record(line, now)
            if rec is None:
                continue
            if isinstance(rec, tuple):
                if pending is not None:  # its done/undo was damaged: judged as if left open
                    self._resolve(*pending)
                pending = rec
            elif pending is not None:
                if rec.get("done"):
                    ts, keys, seqs = pending
                    if ts >= now - self.window_ms:
                        self._remember(keys, seqs, ts)
                pending = None
        if pending is not None:
            self._resolve(*pending)

    def _resolve(self, ts: int, keys: list[Key], seqs: list[int]) -> None:
        """A claim whose writer died: keep the ids of the events the store has."""
        kept = stored_seqs(self.data_dir, seqs) if seqs else set()
        keep = [(key, seq) for key, seq in zip(keys, seqs, strict=True) if seq in kept]
        self.resolved += 1
        log.info("es-ids: a claim of %d id(s) left by a writer that stopped: %d of them stored, their ids kept",
                 len(keys), len(keep))
        self._append(b'{"undo":1}\n')
        if keep:
            keep_keys, keep_seqs = [k for k, _ in keep], [q for _, q in keep]
            self._append(_claim_record(keep_keys, keep_seqs, ts))
            self._append(b'{"done":1}\n')
            self._remember(keep_keys, keep_seqs, ts)

    def _append(self, data: bytes) -> None:
        os.write(self._fd, data)  # O_APPEND, one write: a kill leaves it whole or torn at its end
        self._offset += len(data)

    def claim(self, keys: list[Key], seqs: list[int], ts: int, index: str | None = None) -> None:
        """Record ``keys`` (index, id) as being stored as the events ``seqs``, before the store
        writes them. The one claim of both ways a body is judged: :meth:`all_new`'s keys (all
        under ``index``) or the per-event loop's (http_routes.store_once)."""
        self._append(_claim_record(keys, seqs, ts, index))
        self._remember(keys, seqs, ts)

    def _finish(self, keys: list[Key], seqs: list[int], stored: bool) -> None:
        if stored:
            self._append(b'{"done":1}\n')
        else:
            self._append(b'{"undo":1}\n')
            self._forget(keys, seqs)
        if self._offset > self.max_journal_bytes:
            self._rewrite()

    def _rewrite(self) -> None:
        """The journal as the window alone, replaced atomically (siblings see a new inode);
        a claim for each time the window holds, so that every id keeps its own (stamped
        with the rewrite's, one stayed in the window up to an hour too long)."""
        from ...fsio import write_atomic

        now = int(time.time() * 1000)
        self._evict(now)
        records = []
        for ts, group in groupby(self._entries(), key=_first):
            entries = list(group)
            records.append(_claim_record(list(map(_second, entries)), list(map(_third, entries)), ts))
            records.append(b'{"done":1}\n')
        write_atomic(self.dir / JOURNAL_FILE, b"".join(records))
        self._reopen()
        self._catch_up()

    # -- one body ------------------------------------------------------------------
    async def run(self, critical: Callable[[BulkIds], Awaitable[Any]]) -> Any:
        """Run ``critical(self)`` holding the lock of every worker, caught up with the journal.
        Shielded: a client that goes away does not leave a claim half done."""
        return await asyncio.shield(asyncio.ensure_future(self._run(critical)))

    async def _run(self, critical: Callable[[BulkIds], Awaitable[Any]]) -> Any:
        async with self._local:
            await asyncio.to_thread(fcntl.flock, self._lock_fd, fcntl.LOCK_EX)
            try:
                self._catch_up()
                return await critical(self)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    async def stored(self, keys: list[Key], seqs: list[int], ok: bool) -> None:
        """The claim's end: ``ok`` when the store has its events on disk."""
        if ok:  # the claim outlives a power cut as its events do
            await asyncio.to_thread(os.fsync, self._fd)
        self._finish(keys, seqs, ok)
