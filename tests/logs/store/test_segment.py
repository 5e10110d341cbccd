"""SegmentWriter: group commit, rotation, sealing, crash recovery and disk failures.

The store's promises (logmesh/logs/store/segment.py, recovery.py, layout.py): one write and
at most one fsync per group; ``durable(seq)`` resolves only after the fsync
that covers ``seq``; a new segment per clock hour (or day) and past the size
limit; sealed segments get ``.idx.json`` and are never written again; a torn
last record is cut off when the stream is opened; a failed write keeps the
events buffered and unacknowledged and is retried.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from logmesh.logs.event import Event
from logmesh.logs.store import catalogue, layout, segment
from logmesh.logs.store.reader import list_segments
from logmesh.logs.store.recovery import recover_segment
from logmesh.logs.store.segment import SegmentWriter
from tests.support.waiting import wait_until

T0 = datetime(2026, 11, 25, 10, 59, 58, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """A failed write is retried every 50 ms here, not every second: the tests wait for the
    retries they need (wait_until), so the interval only sets how long that takes."""
    monkeypatch.setattr(segment, "RETRY_SECONDS", 0.05)


def events(start: int, count: int, size: int = 0) -> list[Event]:
    return [Event(timestamp=1_764_000_000_000 + n, message=f"event {n}" + "x" * size,
                  event_id=f"test:{n}") for n in range(start, start + count)]


def lines(data_dir: Path) -> list[dict]:
    out = []
    for seg in list_segments(data_dir):
        data = seg.path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{seg.path.name} ends in a torn line"
        out += [orjson.loads(line) for line in data.splitlines()]
    return out


def numbers(data_dir: Path) -> list[int]:
    return [int(e["event.id"].split(":")[1]) for e in lines(data_dir)]


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
async def open_writer(tmp_path):
    writers: list[SegmentWriter] = []

    def make(**kwargs) -> SegmentWriter:
        w = SegmentWriter(tmp_path, **kwargs)
        w.start()
        writers.append(w)
        return w

    try:
        yield make
    finally:
        for w in writers:
            if w._lock_fd is not None:
                await asyncio.wait_for(w.close(), 10)


async def append(w: SegmentWriter, start: int, count: int, size: int = 0) -> int:
    seq = w.append_events(events(start, count, size))
    await asyncio.wait_for(w.durable(seq), 5)
    return seq


# -- appending and reopening ------------------------------------------------------


async def test_events_get_increasing_seqs_and_survive_a_clean_reopen(tmp_path, open_writer):
    w = open_writer()
    await append(w, 1, 10)
    await w.close()
    stored = lines(tmp_path)
    assert [e["message"] for e in stored] == [f"event {n}" for n in range(1, 11)]
    seqs = [e["seq"] for e in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    assert all(layout.split_seq(s)[1] == 0 for s in seqs)  # worker 0

    w2 = open_writer()  # seq numbers go on, never reused
    await append(w2, 11, 5)
    await w2.close()
    seqs2 = [e["seq"] for e in lines(tmp_path)]
    assert seqs2[:10] == seqs and seqs2 == sorted(seqs2) and len(set(seqs2)) == 15


async def test_one_worker_stream_has_one_writer(tmp_path, open_writer):
    open_writer()
    with pytest.raises(RuntimeError, match="in use by another process"):
        SegmentWriter(tmp_path).open()
    other = open_writer(worker=1)  # another worker id is fine
    await append(other, 1, 1)
    assert [s.worker for s in list_segments(tmp_path)] == [1]


# -- crash recovery --------------------------------------------------------------


@pytest.mark.parametrize("torn", [b'{"seq":99999,"@timestamp":1,"mess', b"garbage without newline",
                                  b'{"no":"seq"}\n', b"\n"])
async def test_torn_last_record_is_cut_off_on_open(tmp_path, open_writer, torn):
    w = open_writer()
    last = await append(w, 1, 5)
    seg = w.active_path
    good = seg.read_bytes()
    w._closing = True  # a crash: no seal, no index; the file ends with a torn write
    w._flush_task.cancel()
    os.close(w._fd)
    os.close(w._lock_fd)
    w._lock_fd = None
    with open(seg, "ab") as f:
        f.write(torn)

    w2 = open_writer()
    assert seg.read_bytes() == good, "exactly the torn bytes are cut"
    idx = orjson.loads(seg.with_name(layout.index_name(seg.name)).read_bytes())
    assert idx["count"] == 5 and idx["last_seq"] == last and idx["bytes"] == len(good)
    assert w2.durable_seq == last
    await append(w2, 6, 2)
    assert numbers(tmp_path) == [1, 2, 3, 4, 5, 6, 7]
    assert w2.active_path != seg, "a recovered segment is sealed; new events go to a new one"


def test_recover_segment_of_only_a_torn_record_is_empty(tmp_path):
    path = tmp_path / layout.segment_name(0, 64)
    path.write_bytes(b'{"seq":64,"@timest')
    index = recover_segment(path).index
    assert index.count == 0 and path.read_bytes() == b""


async def test_open_drops_an_unsealed_segment_with_nothing_whole(tmp_path, open_writer):
    seg_dir = tmp_path / layout.SEGMENTS_DIR
    seg_dir.mkdir()
    (seg_dir / layout.segment_name(0, 64)).write_bytes(b'{"seq":64,"@timest')
    w = open_writer()
    assert not (seg_dir / layout.segment_name(0, 64)).exists()
    await append(w, 1, 1)
    assert numbers(tmp_path) == [1]


# -- group commit and durability --------------------------------------------------


async def test_group_commit_one_write_and_one_fsync_for_many_appends(tmp_path, open_writer, monkeypatch):
    real_write, real_fsync = os.write, os.fsync
    calls = {"write": 0, "fsync": 0}

    def write(fd, data):
        if fd_path(fd).endswith(".ndjson"):
            calls["write"] += 1
        return real_write(fd, data)

    def fsync(fd):
        if fd_path(fd).endswith(".ndjson"):
            calls["fsync"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", lambda fd, bufs: write(fd, b"".join(bufs)))  # the writer's
    monkeypatch.setattr(os, "fsync", fsync)
    w = open_writer(fsync_interval=5.0)
    seqs = [w.append_events(events(n, 1)) for n in range(1, 501)]  # 500 reads' worth
    await asyncio.wait_for(asyncio.gather(*(w.durable(s) for s in seqs)), 5)
    assert calls == {"write": 1, "fsync": 1}
    assert w.stats["fsyncs"] == 1
    assert numbers(tmp_path) == list(range(1, 501))


async def test_a_group_is_written_and_synced_in_one_hop_of_the_io_thread(tmp_path, open_writer):
    """Each hop to the I/O thread costs a submit, a thread wake-up and the loop's self-pipe
    wake-up: a group's write and its fsync share one."""
    w = open_writer(fsync_interval=5.0)
    submitted: list = []
    submit = w._io.submit
    w._io.submit = lambda fn, *args: (submitted.append(fn), submit(fn, *args))[1]
    for n in (1, 4, 7):
        await asyncio.wait_for(w.durable(w.append_events(events(n, 3))), 5)
    assert len(submitted) == 3, submitted
    assert w.stats["fsyncs"] == 3
    assert numbers(tmp_path) == list(range(1, 10))



async def test_waiters_within_a_window_share_one_group_and_one_timer(tmp_path, open_writer):
    """An acked batch asks for its fsync within tcp.GROUP_WINDOW: the batches of that window
    share one write and one fsync, on one timer brought forward, never put off."""
    w = open_writer(fsync_interval=5.0)
    first = w.append_events(events(1, 3))  # no waiter yet: the tick is armed 5 s out
    assert w._timer is not None and w._timer.when() > w._loop.time() + 4
    a = asyncio.ensure_future(w.durable(first, within=0.2))
    await asyncio.sleep(0)
    timer = w._timer
    assert timer is not None and timer.when() < w._loop.time() + 0.3, "brought forward"
    second = w.append_events(events(4, 3))
    b = asyncio.ensure_future(w.durable(second, within=1.0))
    await asyncio.sleep(0)
    assert w._timer is timer, "a later window does not put the group off"
    await asyncio.wait_for(asyncio.gather(a, b), 5)
    assert w.stats["fsyncs"] == 1
    assert numbers(tmp_path) == list(range(1, 7))


async def test_a_failed_fsync_holds_the_ack_until_an_fsync_succeeds(tmp_path, open_writer,
                                                                    monkeypatch):
    real_fsync = os.fsync
    failing = threading.Event()
    failing.set()

    def fsync(fd):
        if failing.is_set() and fd_path(fd).endswith(".ndjson"):
            raise OSError(errno.EIO, "I/O error")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    w = open_writer()
    seq = w.append_events(events(1, 3))
    waiter = asyncio.ensure_future(w.durable(seq))
    await wait_until(lambda: w.failure is not None, 5, "the failed fsync said")
    assert w.written_seq == seq, "written to the kernel, not synced"
    assert not waiter.done() and w.durable_seq < seq
    failing.clear()
    await asyncio.wait_for(waiter, 5)
    assert w.durable_seq >= seq and w.failure is None
    assert numbers(tmp_path) == [1, 2, 3]


async def test_durable_resolves_only_after_fsync(tmp_path, open_writer, monkeypatch):
    real_fsync = os.fsync
    gate = threading.Event()
    synced: list[int] = []

    entered = threading.Event()

    def fsync(fd):
        if fd_path(fd).endswith(".ndjson"):
            entered.set()
            gate.wait(10)
            synced.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    w = open_writer()
    seq = w.append_events(events(1, 3))
    waiter = asyncio.ensure_future(w.durable(seq))
    try:
        await wait_until(entered.is_set, 5, "the flusher's fsync")
        for _ in range(5):
            await asyncio.sleep(0)  # turns of the loop for an answer that would come too early
        assert w.written_seq == seq, "written to the kernel already"
        assert not waiter.done(), "durable() must wait for the fsync"
        assert w.durable_seq < seq
    finally:
        gate.set()
    await asyncio.wait_for(waiter, 5)
    assert synced and w.durable_seq >= seq


async def test_fsync_off_resolves_when_written(tmp_path, open_writer, monkeypatch):
    real_fsync = os.fsync
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd_path(fd)), real_fsync(fd))[1])
    w = open_writer(fsync="off")
    await append(w, 1, 3)
    assert not [p for p in synced if p.endswith(".ndjson")]
    assert numbers(tmp_path) == [1, 2, 3]


async def test_fsync_batch_writes_within_the_interval_without_waiters(tmp_path, open_writer):
    w = open_writer(fsync_interval=0.05)
    w.append_events(events(1, 2))  # nobody waits: the flusher's interval writes it anyway
    await wait_until(lambda: numbers(tmp_path) == [1, 2], 0.5, "the interval's write")



class CountingEvent(asyncio.Event):
    """The flusher's wake-up, counting its turns (each turn clears it)."""

    turns = 0

    def clear(self) -> None:
        self.turns += 1
        super().clear()


async def test_an_idle_writer_keeps_no_timer_and_its_flusher_sleeps(tmp_path, open_writer):
    """A turn of an idle loop costs 0.3-0.4 ms of CPU on the benches' VM: an idle store's
    flusher waits for an append or a waiter, with no tick; an append arms one tick."""
    w = open_writer(fsync_interval=0.01)
    w._wakeup = wakeup = CountingEvent()  # before the flusher's first turn reads it
    await asyncio.sleep(0.05)
    turns = wakeup.turns
    await asyncio.sleep(0.2)  # twenty intervals: a flusher on a timer turns ~20 times
    assert wakeup.turns == turns
    w.append_events(events(1, 2))  # nobody waits: the tick armed by the append writes it
    await wait_until(lambda: numbers(tmp_path) == [1, 2], 5, "the tick's write")
    await asyncio.sleep(0.05)
    turns = wakeup.turns
    await asyncio.sleep(0.2)
    assert wakeup.turns == turns

async def test_a_new_segment_file_is_made_durable_with_its_directory(tmp_path, open_writer, monkeypatch):
    """fsync of a new file does not make its directory entry durable; the directory needs one too."""
    real_fsync = os.fsync
    synced: list[str] = []

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        synced.append(f"{kind}:{fd_path(fd)}")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    w = open_writer()
    await append(w, 1, 1)
    seg_dir = str(tmp_path / layout.SEGMENTS_DIR)
    assert f"dir:{seg_dir}" in synced, f"segments directory never fsynced: {synced}"


async def test_recovered_segment_is_fsynced_before_its_events_count_as_stored(tmp_path, open_writer,
                                                                             monkeypatch):
    """After a crash the unsealed segment may sit in the page cache only; recovery syncs it."""
    seg_dir = tmp_path / layout.SEGMENTS_DIR
    seg_dir.mkdir()
    seg = seg_dir / layout.segment_name(0, 64)
    seg.write_bytes(b'{"seq":64,"@timestamp":1,"message":"a"}\n')  # whole: nothing to cut
    real_fsync = os.fsync
    synced: list[str] = []
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd_path(fd)), real_fsync(fd))[1])
    w = open_writer()
    assert str(seg) in synced
    assert w.durable_seq == 64


# -- rotation ---------------------------------------------------------------------


async def test_rotation_by_hour_follows_the_clock(tmp_path, open_writer):
    now = [T0]  # 10:59:58 UTC
    w = open_writer(clock=lambda: now[0])
    await append(w, 1, 3)
    now[0] += 1  # 10:59:59: same hour, same segment
    await append(w, 4, 1)
    assert len(list_segments(tmp_path)) == 1
    now[0] += 1  # 11:00:00: a new hour, a new segment
    await append(w, 5, 2)
    segs = list_segments(tmp_path)
    assert len(segs) == 2
    assert segs[0].sealed and not segs[1].sealed
    assert segs[0].index["count"] == 4 and segs[0].index["first_seq"] == segs[0].first_seq
    assert segs[1].first_seq == segs[0].index["last_seq"] + (1 << layout.WORKER_BITS)
    now[0] += 1800  # 11:30: still the same hour
    await append(w, 7, 1)
    assert len(list_segments(tmp_path)) == 2
    now[0] += 3600 * 5  # hours later (nothing in between): the next write rotates once
    await append(w, 8, 1)
    assert len(list_segments(tmp_path)) == 3
    assert numbers(tmp_path) == list(range(1, 9))


async def test_rotation_by_day(tmp_path, open_writer):
    now = [T0]
    w = open_writer(clock=lambda: now[0], rotate="day")
    await append(w, 1, 1)
    now[0] += 7200  # 13:00, same day
    await append(w, 2, 1)
    assert len(list_segments(tmp_path)) == 1
    now[0] += 86400
    await append(w, 3, 1)
    assert len(list_segments(tmp_path)) == 2


async def test_rotation_by_size(tmp_path, open_writer):
    w = open_writer(max_segment_bytes=2000, clock=lambda: T0)  # no hour turns mid-test
    for n in range(1, 41):  # ~150-byte events, one read each
        await append(w, n, 1, size=80)
    segs = list_segments(tmp_path)
    assert len(segs) >= 3
    for seg in segs[:-1]:
        size = seg.path.stat().st_size
        assert seg.sealed and seg.index["bytes"] == size
        assert 2000 <= size < 2000 + 200, "sealed just past the limit"
    assert numbers(tmp_path) == list(range(1, 41))
    assert w.stats["segments_sealed"] == len(segs) - 1


async def test_a_big_group_is_split_across_segments_by_size(tmp_path, open_writer):
    w = open_writer(max_segment_bytes=3000, fsync_interval=5.0, clock=lambda: T0)
    last = 0
    for n in range(1, 101, 5):  # 20 blocks of 5 events, written as one group
        last = w.append_events(events(n, 5, size=40))
    await asyncio.wait_for(w.durable(last), 5)
    segs = list_segments(tmp_path)
    assert len(segs) >= 3
    assert numbers(tmp_path) == list(range(1, 101))
    for seg in segs:  # each segment holds whole events only, its index matches its file
        data = seg.path.read_bytes()
        assert data.endswith(b"\n")
        if seg.sealed:
            assert seg.index["count"] == data.count(b"\n") and seg.index["bytes"] == len(data)


async def test_sealed_segments_are_never_written_again(tmp_path, open_writer):
    now = [T0]
    w = open_writer(clock=lambda: now[0])
    await append(w, 1, 3)
    now[0] += 3600
    await append(w, 4, 3)
    sealed = [s.path for s in list_segments(tmp_path) if s.sealed]
    assert len(sealed) == 1

    def snapshot() -> dict:
        out = {}
        for p in sealed:
            idx = p.with_name(layout.index_name(p.name))
            for f in (p, idx):
                st = f.stat()
                out[f.name] = (hashlib.sha256(f.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_ino)
        return out

    before = snapshot()
    now[0] += 3600
    await append(w, 7, 3)
    await w.close()  # seals the active one
    w2 = open_writer(clock=lambda: now[0])  # reopen: recovery leaves sealed segments alone
    await append(w2, 10, 3)
    await w2.close()
    assert snapshot() == before
    segs = list_segments(tmp_path)
    assert all(s.sealed for s in segs) and len(segs) == 4
    for s in segs:
        assert s.index["version"] == layout.SEGMENT_FORMAT_VERSION
        assert s.index["count"] == len(s.path.read_bytes().splitlines())
    assert numbers(tmp_path) == list(range(1, 13))


# -- disk failures -----------------------------------------------------------------


@pytest.fixture
def disk(monkeypatch):
    """os.write (and os.writev) on segment files fails with ENOSPC while ``disk.full`` is set.

    ``disk.partial`` makes the first failing call write half its data first,
    as a real disk running out in the middle of a write does.
    """
    real_write = os.write

    class Disk:
        full = threading.Event()
        partial = False
        failures = 0

    def write(fd, data):
        if Disk.full.is_set() and fd_path(fd).endswith(".ndjson"):
            Disk.failures += 1
            if Disk.partial and Disk.failures == 1 and len(data) > 1:
                return real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    # the writer writes its blocks with writev: one call, the same bytes, a short count on half
    monkeypatch.setattr(os, "writev", lambda fd, bufs: write(fd, b"".join(bufs)))
    return Disk


@pytest.mark.parametrize("partial", [False, True], ids=["nothing-written", "half-written"])
async def test_disk_full_keeps_events_buffered_unacked_and_retries(tmp_path, open_writer, disk, partial):
    w = open_writer()
    await append(w, 1, 5)  # on disk before the trouble
    disk.partial = partial
    disk.full.set()
    seq = w.append_events(events(6, 20, size=50))
    waiter = asyncio.ensure_future(w.durable(seq))
    await wait_until(lambda: w.stats["write_errors"] >= 2, 5, "a failed write and a retry")
    assert not waiter.done(), "nothing may be acknowledged while the write fails"
    assert w.stats["write_errors"] >= 1
    assert w.buffered_bytes > 0, "the events stay buffered"
    assert numbers(tmp_path) == [1, 2, 3, 4, 5], "no half-written group is left in the file"

    disk.full.clear()
    await asyncio.wait_for(waiter, 5)
    assert numbers(tmp_path) == list(range(1, 26)), "every event exactly once, in order"
    await w.close()
    w2 = open_writer()  # and the stream reopens cleanly
    await append(w2, 26, 1)
    assert numbers(tmp_path) == list(range(1, 27))


async def test_disk_full_while_sealing_a_segment_is_retried_too(tmp_path, open_writer, monkeypatch):
    """The hour turns while the disk is full: writing the old segment's index fails.

    The flusher must survive it and retry; the old segment is then left
    unsealed (its events are fsynced) and gets its index when the stream is
    next opened.
    """
    now = [T0]
    w = open_writer(clock=lambda: now[0])
    await append(w, 1, 2)
    old_segment = w.active_path
    real = segment.write_atomic
    full = threading.Event()
    full.set()

    def write_atomic(path, data):
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(segment, "write_atomic", write_atomic)
    now[0] += 3600
    seq = w.append_events(events(3, 2))
    await asyncio.wait_for(w.durable(seq), 5)  # the retry writes them to a new segment
    assert w.stats["write_errors"] >= 1
    assert not w.stopped, "the flusher died: nothing would ever be written again"
    assert w.active_path != old_segment
    full.clear()
    await append(w, 5, 1)
    await w.close()
    w2 = open_writer(clock=lambda: now[0])
    await append(w2, 6, 1)
    await w2.close()
    assert all(s.sealed for s in list_segments(tmp_path))
    assert numbers(tmp_path) == [1, 2, 3, 4, 5, 6]


# -- issue 14: identity, damage, a disk that fills up ---------------------------------


async def test_seqs_never_repeat_after_compaction_and_retention_removed_every_segment(tmp_path,
                                                                                      open_writer):
    """Defect 1: with every segment compacted away, a restart counted from 1 again.

    The new segment then took an existing Parquet file's name, so queries
    ignored it and the compactor deleted it as "already compacted".
    """
    w = open_writer()
    first = await append(w, 1, 2)
    await w.close()
    seg = list_segments(tmp_path)[0]
    pq = tmp_path / layout.PARQUET_DIR
    pq.mkdir()
    (pq / layout.parquet_name(seg.path.name)).write_bytes(b"PAR1")  # compacted ...
    (pq / layout.blocks_name(layout.parquet_name(seg.path.name))).write_bytes(
        orjson.dumps({"last_seq": seg.index["last_seq"]}))
    seg.path.unlink()  # ... and the segment removed
    seg.path.with_name(layout.index_name(seg.path.name)).unlink()
    w2 = open_writer()
    second = await append(w2, 3, 1)
    assert second > first and w2.active_path.name != seg.path.name
    await w2.close()
    for p in list(pq.iterdir()) + [s.path for s in list_segments(tmp_path)]:
        p.unlink()  # retention took everything: the high-water file still remembers
    w3 = open_writer()
    assert await append(w3, 4, 1) > second


def crash(w: SegmentWriter) -> Path:
    """Leave ``w`` as kill -9 would: no seal, no index; returns the active segment."""
    seg = w.active_path
    w._closing = True
    w._flush_task.cancel()
    os.close(w._fd)
    os.close(w._lock_fd)
    w._lock_fd = None
    return seg


@pytest.mark.parametrize("damage", ["zeros", "infinite-number", "not-json"])
async def test_recovery_keeps_every_intact_line_after_damage_and_quarantines_the_rest(
        tmp_path, open_writer, damage):
    """Defect 3: recovery cut the segment at the first line it could not parse."""
    w = open_writer()
    await append(w, 1, 100)
    seg = crash(w)
    data = bytearray(seg.read_bytes())
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 10][:-1]
    victim = starts[10]  # the 11th line
    end = data.index(b"\n", victim)
    if damage == "zeros":
        data[victim + 5:victim + 25] = bytes(20)
    elif damage == "infinite-number":
        data[victim:end] = data[victim:end - 1] + b',"x":1e999}'
    else:
        data[victim:end] = b"x" * (end - victim)
    seg.write_bytes(bytes(data))

    w2 = open_writer()
    kept = numbers(tmp_path)
    assert kept == [n for n in range(1, 101) if n != 11], "every line but the damaged one is kept"
    assert w2.stats["damaged_lines"] == 1
    quarantined = list((tmp_path / layout.QUARANTINE_DIR).iterdir())
    assert len(quarantined) == 1 and b"# offset %d" % victim in quarantined[0].read_bytes()
    assert catalogue.quarantined(tmp_path)[0] == 1
    await append(w2, 101, 1)
    assert numbers(tmp_path)[-1] == 101


async def test_disk_full_writes_what_fits_block_by_block(tmp_path, open_writer, monkeypatch):
    """Defect 6: a failed write retried the whole backlog as one group, so nothing was
    written until the free space exceeded all of it."""
    w = open_writer()
    real_write = os.write
    room = [0]

    def write(fd, data):  # a disk with ``room`` bytes left
        if fd_path(fd).endswith(".ndjson"):
            if len(data) > room[0]:
                raise OSError(errno.ENOSPC, "No space left on device")
            room[0] -= len(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", lambda fd, bufs: write(fd, b"".join(bufs)))  # the store's
    seqs = [w.append_events(events(n * 10 + 1, 10, size=100)) for n in range(3)]  # three blocks
    one_block = 10 * 250
    room[0] = one_block  # room for one block: it must be written and acknowledged
    await asyncio.wait_for(w.durable(seqs[0]), 5)
    assert numbers(tmp_path) == list(range(1, 11))
    assert w.failure is not None and "No space" in w.failure
    room[0] = 10**9
    await asyncio.wait_for(w.durable(seqs[2]), 5)
    assert numbers(tmp_path) == list(range(1, 31))
    assert w.failure is None


async def test_a_waiter_that_asks_gets_its_unwritten_block_back_while_the_disk_is_full(
        tmp_path, open_writer, disk):
    """An HTTP POST held on a full disk is answered (and not stored) instead of hanging."""
    w = open_writer()
    disk.full.set()
    evs = events(1, 3)
    last = w.append_events(evs)
    with pytest.raises(segment.StoreUnavailable, match="No space"):
        await asyncio.wait_for(w.durable(last, on_failure="withdraw", first=evs[0].seq), 5)
    disk.full.clear()
    await append(w, 4, 1)
    assert numbers(tmp_path) == [4], "the withdrawn events are not written later"


async def test_close_is_bounded_while_the_disk_stays_full(tmp_path, open_writer, disk):
    w = open_writer()
    disk.full.set()
    w.append_events(events(1, 3))
    await wait_until(lambda: w.stats["write_errors"] >= 1, 5, "the first failed write")
    await asyncio.wait_for(w.close(timeout=0.5), 5)
    assert w.buffered_bytes > 0, "given up, never written (nor acknowledged)"


async def test_close_waits_for_the_write_in_the_io_thread_and_holds_what_it_did_not_write(
        tmp_path, open_writer, disk, monkeypatch):
    """close() gave up waiting while a retried write was in the I/O thread (the test above
    failed one run in four at load ~17): it sealed beside the write, closing the fd the write
    was using (a number the index's temporary file could take next), and the write's blocks
    were neither held nor written. Now the write ends before the seal, and what it did not
    write stays held, never acknowledged."""
    w = open_writer()
    disk.full.set()
    seq = w.append_events(events(1, 3))
    waiter = asyncio.ensure_future(w.durable(seq))
    await wait_until(lambda: w.stats["write_errors"] >= 1, 5, "the first failed write")
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []
    failing = os.writev  # the fixture's: ENOSPC

    def held_write(fd, bufs):
        entered.set()
        release.wait(10)
        try:
            seen.append(fd_path(fd))
        except OSError as exc:
            seen.append(f"closed: {exc}")
        return failing(fd, bufs)

    monkeypatch.setattr(os, "writev", held_write)
    await wait_until(entered.is_set, 5, "a retried write in the I/O thread")
    threading.Timer(0.5, release.set).start()  # after close() gave up waiting (0.1 s)
    await asyncio.wait_for(w.close(timeout=0.1), 15)
    assert seen[0].endswith(".ndjson"), f"the write's fd was closed under it: {seen[0]}"
    assert w.buffered_bytes > 0, "the write's blocks are held, not dropped"
    assert not (waiter.done() and waiter.exception() is None), "nothing acknowledged"
    assert numbers(tmp_path) == []


async def test_a_line_with_a_timestamp_no_index_can_hold_is_quarantined_not_fatal(tmp_path, open_writer):
    """Defect 2's last step: a stored @timestamp past 64 bits made every later start fail."""
    w = open_writer()
    await append(w, 1, 3)
    seg = crash(w)
    with open(seg, "ab") as f:
        f.write(b'{"seq":99999,"@timestamp":100000000000000000000,"message":"x"}\n')
    w2 = open_writer()
    assert numbers(tmp_path) == [1, 2, 3] and w2.stats["damaged_lines"] == 1


# -- the longest line -----------------------------------------------------------------------
async def test_a_block_with_a_line_past_the_longest_is_refused_whole_and_its_seqs_given_back(
        tmp_path, open_writer, monkeypatch):
    """No ingest cap bounded a stored line (a body grows ~6x when stored): layout.MAX_LINE_BYTES
    does, here made small. append_fitting stores the others, with the seqs the refused block had."""
    monkeypatch.setattr(layout, "MAX_LINE_BYTES", 200)
    w = open_writer()
    batch = events(1, 3)
    batch[1].message = "x" * 300
    with pytest.raises(segment.LineTooLong) as refused:
        w.append_events(batch)
    first = layout.split_seq(batch[0].seq)[0]  # given back: the next events take it
    assert refused.value.lines == [1] and refused.value.sizes[0] > 300
    assert w.buffered_bytes == 0
    last, too_long = w.append_fitting(events(1, 3)[:1] + [batch[1]] + events(3, 1))
    assert [i for i, _ in too_long] == [1]
    await asyncio.wait_for(w.durable(last), 5)
    await w.close()
    stored = lines(tmp_path)
    assert [e["message"] for e in stored] == ["event 1", "event 3"]
    assert [layout.split_seq(e["seq"])[0] for e in stored] == [first, first + 1], "no seq lost"
