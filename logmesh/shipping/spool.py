"""The shipper's disk spool: events wait here while the logs service can't take them.

Records are NDJSON lines ``[instance, n, ts, raw, extra]`` in files
``spool-<id>.ndjson``, fsynced as they are written, so a spooled event survives
a crash of the service that spooled it. They keep the ``event.id``
(instance + number) they were born with, so the logs service drops a replay
of what it already stored.

Reading is two-phase: ``take`` hands out records and remembers where they
ended; ``commit`` (after the logs service acknowledged them) moves the durable
head, written atomically to ``head.json``, and deletes files read to the end;
``rewind`` (after a lost connection) goes back to the durable head. When the
directory would exceed ``max_bytes``, the oldest file is dropped, counted.

One process writes a spool: two instances of a service on one host share its default
directory (``DATA_DIR/spool/NAME``), and each deleted the files it had read past while the
other still appended to them, so what the other spooled next went into a deleted file (found
from outside). A spool is therefore held under ``flock`` (``spool.lock``); a process that
finds the directory held uses a slot of its own inside it (``slot-1``, ``slot-2``, ...). A
process takes first a free one with records left by a process that stopped, so they are sent. The
lock is the process's until its last ``Spool`` of the directory closes: a second one in the same
process (a reopen) is the same spool, as before.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
from pathlib import Path

import orjson

from ..fsio import write_atomic
from ..guard import RateLimitedLog

log = logging.getLogger("logmesh.spool")

SPOOL_FILE_BYTES = 16 * 1024 * 1024  # a new spool file past this size (drops happen per file)
HEAD_FILE = "head.json"
TAKE_READ_BYTES = 4 * 1024 * 1024  # take() reads a file this much at a time
_FILE_RE = re.compile(r"spool-(\d{12,})\.ndjson")  # put()'s names (_file_name)
LOCK_FILE = "spool.lock"  # flock'ed by the process whose spool this is
SLOT_PREFIX = "slot-"  # a spool of another process in the same directory: slot-1, slot-2, ...
MAX_SLOTS = 64
# The slots this process holds: {directory: [pid, lock fd, open Spools]}. The pid tells a forked
# child, which inherits the dict (and the fd, whose flock it shares), that they are not its own.
_held: dict[Path, list[int]] = {}


def _lock(slot: Path) -> bool:
    """Hold ``slot`` for this process (until its last Spool of it closes, or it exits); False
    when another process holds it."""
    key = slot.absolute()
    held = _held.get(key)
    if held is not None and held[0] == os.getpid():
        held[2] += 1
        return True
    slot.mkdir(parents=True, exist_ok=True)
    fd = os.open(slot / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held[key] = [os.getpid(), fd, 1]
    return True


def _unlock(slot: Path) -> None:
    held = _held.get(slot.absolute())
    if held is None:
        return
    held[2] -= 1
    if held[2] <= 0:
        del _held[slot.absolute()]
        os.close(held[1])


def _has_records(slot: Path) -> bool:
    """Whether ``slot`` holds spooled records past its durable head."""
    head = _read_head(slot)
    for file_id in _file_ids(slot):
        try:
            size = (slot / _file_name(file_id)).stat().st_size
        except OSError:
            continue
        if size > 0 and (file_id, size) > head:
            return True
    return False


def claim_slot(directory: Path) -> Path:
    """The spool directory this process writes: the one of its own it already holds (a reopen),
    else the first free one with records left in it (``directory`` itself, then its slots: so
    a process that starts alone sends what a second instance left), else ``directory``, else
    the first free slot inside it."""
    directory = Path(directory)
    slots = [directory, *(directory / f"{SLOT_PREFIX}{n}" for n in range(1, MAX_SLOTS))]
    for slot in slots:
        held = _held.get(slot.absolute())
        if held is not None and held[0] == os.getpid() and _lock(slot):
            return slot
    first_free = None
    for slot in slots:
        if (slot is directory or slot.is_dir()) and _lock(slot):
            if _has_records(slot):
                if first_free is not None:
                    _unlock(first_free)
                return slot
            if first_free is None:
                first_free = slot
            else:
                _unlock(slot)
    if first_free is not None:
        return first_free
    for slot in slots[1:]:
        if _lock(slot):
            return slot
    raise RuntimeError(f"all {MAX_SLOTS} spools of {directory} are in use by other processes")


def _file_name(file_id: int) -> str:
    return f"spool-{file_id:012d}.ndjson"


def _file_ids(directory: Path) -> list[int]:
    """The numbers of ``directory``'s spool files, sorted; another file is left alone (a
    stray name stopped the process at every start)."""
    return sorted(int(m.group(1)) for p in directory.glob("spool-*.ndjson")
                  if (m := _FILE_RE.fullmatch(p.name)))


def _read_head(directory: Path) -> tuple[int, int]:
    try:
        data = orjson.loads((directory / HEAD_FILE).read_bytes())
        return int(data["file"]), int(data["offset"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def _is_record(rec: object) -> bool:
    """``[instance, n, ts, raw, extra]`` as :meth:`Spool.put` writes it (the fields the shipper
    reads by position)."""
    return (type(rec) is list and len(rec) == 5 and type(rec[0]) is str and type(rec[1]) is int
            and type(rec[3]) is str)


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 1024**3, *,
                 file_bytes: int = SPOOL_FILE_BYTES) -> None:
        self.dir = claim_slot(Path(directory))
        self._closed = False
        if self.dir != Path(directory):
            log.warning("spool: %s is another process's spool; this one spools in %s",
                        directory, self.dir)
        self.max_bytes = max_bytes
        self.file_bytes = file_bytes
        self.dropped = 0
        self._warn = RateLimitedLog(log)
        self._files = _file_ids(self.dir)
        head = self._load_head()
        if not self._sound(head):
            log.warning("spool: %s says %s, where no record starts: damaged; resending every "
                        "record of %s (the logs service stores each once, by event.id)",
                        HEAD_FILE, head, self.dir)
            head = (0, 0)
        self._files = [f for f in self._files if f >= head[0]]
        self.head = head  # durable: (file id, offset) of the first unacknowledged record
        self.read_pos = head  # next record to take
        self._out: int | None = None
        self._out_id = -1  # the file being appended to (none until the first put)
        self._cut_torn_tails()
        self.has_pending = self.pending_bytes() > 0  # cheap check for the shipper's hot loop

    # -- positions -------------------------------------------------------------
    def _cut_torn_tails(self) -> None:
        """Cut a record a crash tore in the middle of put(): put() never returned for it,
        and take() could never hand it out, but it counted as pending for ever."""
        for f in self._files:
            path = self._path(f)
            try:
                with open(path, "r+b") as fh:
                    size = fh.seek(0, os.SEEK_END)
                    if size == 0:
                        continue
                    fh.seek(size - 1)
                    if fh.read(1) == b"\n":
                        continue
                    back = min(size, TAKE_READ_BYTES)
                    fh.seek(size - back)
                    tail = fh.read(back)
                    cut = size - back + tail.rfind(b"\n") + 1
                    log.warning("spool: cutting %d torn byte(s) at the end of %s", size - cut,
                                path.name)
                    fh.truncate(cut)
                    os.fsync(fh.fileno())
            except FileNotFoundError:
                continue

    def _sound(self, head: tuple[int, int]) -> bool:
        """Whether ``head`` can be where commit() left it: the start of a record of a file
        there, or past a file commit() deleted. A damaged digit once skipped the records it
        jumped over (an offset inside a record or past its file's end), or every file (a file
        number past them all); now the spool is read from its start instead, as for a head
        file that does not parse."""
        file_id, offset = head
        if head == (0, 0) or not self._files:
            return True
        if file_id < 0 or offset < 0 or file_id > self._files[-1]:
            return False
        if file_id not in self._files:
            return True  # a file commit() deleted once read to its end
        try:
            with open(self._path(file_id), "rb") as fh:
                if offset > fh.seek(0, os.SEEK_END):
                    return False
                if offset == 0:
                    return True
                fh.seek(offset - 1)
                return fh.read(1) == b"\n"
        except OSError:
            return True

    def _path(self, file_id: int) -> Path:
        return self.dir / _file_name(file_id)

    def _load_head(self) -> tuple[int, int]:
        return _read_head(self.dir)

    def _size(self) -> int:
        total = 0
        for f in self._files:
            try:
                total += self._path(f).stat().st_size
            except FileNotFoundError:
                pass
        return total

    def __bool__(self) -> bool:
        return self.pending_bytes() > 0

    def pending_bytes(self) -> int:
        """Bytes not yet taken (0 when everything spooled is in flight or sent)."""
        total = 0
        for f in self._files:
            if f < self.read_pos[0]:
                continue
            try:
                size = self._path(f).stat().st_size
            except FileNotFoundError:
                continue
            total += size - (self.read_pos[1] if f == self.read_pos[0] else 0)
        return total

    # -- writing ---------------------------------------------------------------
    def put(self, records: list[list]) -> int:
        """Append ``[instance, n, ts, raw, extra]`` records durably; returns how many."""
        if not records:
            return 0
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        if self._out is None or os.fstat(self._out).st_size >= self.file_bytes:
            self._roll()
        assert self._out is not None
        start = os.lseek(self._out, 0, os.SEEK_END)
        try:
            # os.write returns short, without an error, when the disk fills in the middle: the
            # records past that point were counted spooled and were not on disk (found from
            # outside: 562 of 55,462 on a full tmpfs). All of them, or none of them and an error.
            view = memoryview(data)
            while view:
                written = os.write(self._out, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, "the spool's disk took no more bytes")
                view = view[written:]
            os.fsync(self._out)
        except OSError:
            self._cut_back(start)
            raise
        self.has_pending = True
        self._enforce_limit()
        return len(records)

    def _cut_back(self, size: int) -> None:
        """Cut the file being written back to ``size``: a record torn by a failed put would be
        glued to the next put's first one, and both skipped as damaged."""
        try:
            os.ftruncate(self._out, size)  # type: ignore[arg-type]
        except OSError as exc:  # the next start's _cut_torn_tails cuts it then
            log.warning("spool: could not cut a failed write back (%s)", exc)

    def _roll(self) -> None:
        """Start a new file, numbered past every file and past the head."""
        if self._out is not None:
            os.close(self._out)
        self._out_id = max([*self._files, self.head[0]]) + 1
        self._files.append(self._out_id)
        self._out = os.open(self._path(self._out_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _enforce_limit(self) -> None:
        while self._size() > self.max_bytes and len(self._files) > 1:
            oldest = self._files.pop(0)
            path = self._path(oldest)
            try:
                with open(path, "rb") as f:
                    if oldest == self.head[0]:
                        f.seek(self.head[1])
                    lost = f.read().count(b"\n")
            except FileNotFoundError:
                lost = 0
            path.unlink(missing_ok=True)
            self.dropped += lost
            log.warning("spool over %d bytes: dropped %d oldest event(s) (%d so far)",
                        self.max_bytes, lost, self.dropped)
            nxt = (self._files[0], 0)
            if self.head < nxt:
                self.head = nxt
                self._save_head()
            if self.read_pos < nxt:
                self.read_pos = nxt

    # -- reading ---------------------------------------------------------------
    def take(self, limit: int) -> tuple[list[list], tuple[int, int]]:
        """Up to ``limit`` records from the read position, and the position after them.

        A file is read in chunks of TAKE_READ_BYTES, and the next file only
        once this one is read to its end: going on to the next file after one
        chunk skipped the rest of a big file, and committing the position
        then deleted those records uncounted.
        """
        out: list[list] = []
        file_id, offset = self.read_pos
        files = [f for f in self._files if f >= file_id]
        i = 0
        while i < len(files) and len(out) < limit:
            if files[i] > file_id:
                file_id, offset = files[i], 0
            data = self._read_chunk(file_id, offset)
            end = data.rfind(b"\n") + 1
            pos = 0
            for line in data[:end].splitlines(keepends=True):
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    rec = None
                if _is_record(rec):
                    out.append(rec)
                else:  # damaged on disk, though it may still parse: the shipper would raise on it
                    log.warning("spool: skipping a damaged record in %s", self._path(file_id).name)
                pos += len(line)
                if len(out) >= limit:
                    break
            offset += pos
            if len(out) < limit and len(data) < TAKE_READ_BYTES:
                i += 1  # this file is read to its end (a torn tail is never a record)
        self.read_pos = (file_id, offset)
        self.has_pending = self.pending_bytes() > 0
        return out, self.read_pos

    def _read_chunk(self, file_id: int, offset: int) -> bytes:
        """Whole lines from ``offset``: TAKE_READ_BYTES, or one line if it is longer."""
        try:
            with open(self._path(file_id), "rb") as fh:
                fh.seek(offset)
                data = fh.read(TAKE_READ_BYTES)
                if b"\n" not in data and len(data) == TAKE_READ_BYTES:
                    fh.seek(offset)
                    data = fh.readline()
        except FileNotFoundError:
            return b""
        return data

    def commit(self, pos: tuple[int, int]) -> None:
        """Everything before ``pos`` is acknowledged: move the head, delete finished files."""
        if pos <= self.head:
            return
        self.head = pos
        try:
            self._save_head()
        except OSError as exc:
            # A full disk (often full of this spool): the replay goes on, and deleting the files
            # it finishes frees the space. Until the head is saved, a restart resends from the
            # last saved one, and the logs service keeps one copy of each by event.id.
            self._warn.warning("spool: could not save the head (%s); going on, a restart resends "
                               "from the last saved one", exc)
        for f in list(self._files):
            if f == self._out_id or f > pos[0]:
                continue
            path = self._path(f)
            if f < pos[0] or pos[1] >= path.stat().st_size:
                self._files.remove(f)
                path.unlink(missing_ok=True)

    def rewind(self) -> None:
        """Forget what was taken but not acknowledged: it will be taken again."""
        self.read_pos = self.head
        self.has_pending = self.pending_bytes() > 0

    def _save_head(self) -> None:
        write_atomic(self.dir / HEAD_FILE, orjson.dumps({"file": self.head[0], "offset": self.head[1]}))

    def close(self) -> None:
        if self._out is not None:
            os.close(self._out)
            self._out = None
        if not self._closed:
            self._closed = True
            _unlock(self.dir)
