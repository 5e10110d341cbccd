"""The segment writer keeps its blocks as they were encoded and writes them with ``writev``:
short writes, more blocks than one ``writev`` takes, and a block withdrawn from between
others must leave exactly the blocks' lines, in order, each once."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from logmesh.logs.store import segment
from tests.logs.store import test_segment as base
from tests.logs.store.test_segment import events, fd_path, numbers

open_writer, quick_retries = base.open_writer, base.quick_retries  # the fixtures, shared


async def test_short_writes_leave_every_block_whole_and_in_order(tmp_path, open_writer, monkeypatch):
    """A kernel may take part of a writev (a signal, a nearly full disk): the rest, from inside
    a block, follows in the next call."""
    real_writev = os.writev
    calls = [0]

    def writev(fd, bufs):  # at most 997 bytes a call, so cuts fall inside lines and blocks
        if fd_path(fd).endswith(".ndjson"):
            calls[0] += 1
            return os.write(fd, b"".join(bytes(b) for b in bufs)[:997])
        return real_writev(fd, bufs)

    monkeypatch.setattr(os, "writev", writev)
    w = open_writer(fsync_interval=5.0)
    seqs = [w.append_events(events(1, 5)), w.append_events(events(6, 800, size=200)),
            w.append_events(events(806, 3))]  # the middle block is large (~200 KB)
    await asyncio.wait_for(asyncio.gather(*(w.durable(s) for s in seqs)), 10)
    assert numbers(tmp_path) == list(range(1, 809))
    assert calls[0] > 100
    assert w.stats["events"] == 808 and w.buffered_bytes == 0


async def test_more_blocks_than_one_writev_takes_are_written_in_order(tmp_path, open_writer):
    w = open_writer(fsync_interval=5.0)
    n = segment._IOV_MAX * 2 + 7
    seqs = [w.append_events(events(k, 1)) for k in range(1, n + 1)]
    await asyncio.wait_for(w.durable(seqs[-1]), 10)
    assert numbers(tmp_path) == list(range(1, n + 1))
    assert w.stats["fsyncs"] == 1


async def test_a_block_withdrawn_from_between_others_leaves_them_to_be_written(
        tmp_path, open_writer, monkeypatch):
    """On a full disk a POST's block is taken back from the middle of the buffer; the blocks
    before and after it are written once the disk has room, the withdrawn one never."""
    real_writev = os.writev
    full = [True]

    def writev(fd, bufs):
        if full[0] and fd_path(fd).endswith(".ndjson"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writev(fd, bufs)

    monkeypatch.setattr(os, "writev", writev)
    w = open_writer()
    first = w.append_events(events(1, 2))
    middle = events(3, 3, size=70_000)  # large: kept as its own bytes, as a bulk body's are
    last_middle = w.append_events(middle)
    last = w.append_events(events(6, 2))
    with pytest.raises(segment.StoreUnavailable, match="No space"):
        await asyncio.wait_for(w.durable(last_middle, on_failure="withdraw", first=middle[0].seq), 5)
    assert w.stats["withdrawn_events"] == 3
    assert w.buffered_bytes == sum(len(b) for b in w._buf)
    full[0] = False
    await asyncio.wait_for(asyncio.gather(w.durable(first), w.durable(last)), 5)
    assert numbers(tmp_path) == [1, 2, 6, 7]
