"""Connections paused while the store is behind read again as soon as the writer has taken
the buffer, not once it has written it (context.py, store/segment.py's on_handover).

Resumed only after the write, a paused loop sat idle for the whole write of the group it had
just handed over (and of the one before it): with 4 syslog connections on 2 cores, 20-40% of a
run's time (docs/benchmarks.md, "Syslog over TCP, fifth pass").
"""

from __future__ import annotations

import threading

from logmesh.logs.ingest.context import PAUSE_BUFFER_BYTES, IngestContext
from logmesh.logs.store.segment import SegmentWriter
from tests.support.waiting import wait_until

T0 = 1_795_626_000_000


class _Transport:
    def __init__(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False


class _Paused:
    """A connection as IngestConnection.pause_if_behind leaves it."""

    def __init__(self) -> None:
        self.paused = True
        self.partial_since = 0.0
        self.transport = _Transport()
        self.turn_data: bytes | None = None


def _lines(writer: SegmentWriter, n: int, size: int) -> tuple[bytes, range]:
    seqs = writer.reserve(n)
    pad = "x" * size
    blob = b"".join(b'{"seq":%d,"@timestamp":%d,"message":"%s"}\n' % (s, T0, pad.encode())
                    for s in seqs)
    return blob, seqs


async def test_paused_connections_read_again_while_the_writer_writes(tmp_path):
    writer = SegmentWriter(tmp_path, 0, fsync="batch")
    writer.open()
    writer.start()
    ctx = IngestContext(writer)
    taken, release = threading.Event(), threading.Event()
    write_and_sync = writer._write_and_sync

    def held(*args):  # the I/O thread: the group is taken, its write not done until released
        taken.set()
        release.wait(60)
        return write_and_sync(*args)

    writer._write_and_sync = held
    try:
        blob, seqs = _lines(writer, 17_000, 1000)
        writer.append_encoded(blob, seqs[0], seqs[-1], len(seqs), T0, T0, T0, services={})
        assert writer.buffered_bytes > PAUSE_BUFFER_BYTES
        conn = _Paused()
        ctx.paused.add(conn)
        await wait_until(taken.is_set, timeout=30, what="the group handed to the writer")
        await wait_until(lambda: conn.transport.reading, timeout=30,
                         what="the connection reading again before the group is written")
        assert not conn.paused and not ctx.paused
        assert writer.durable_seq < seqs[-1]  # still held in the I/O thread
    finally:
        release.set()
    await writer.durable(seqs[-1])
    await writer.close()
    stored = b"".join(p.read_bytes() for p in sorted((tmp_path / "segments").glob("*.ndjson")))
    assert stored == blob


def test_a_connection_holding_a_kept_read_is_left_for_the_turns_to_resume(tmp_path):
    """ingest12: the store's resume read again a connection whose read was kept for the next
    turn (ingest/turns.py): its new reads piled onto the kept one, and the next turn handled
    more than its budget. turns.py resumes it once its kept read is handled."""
    writer = SegmentWriter(tmp_path, 0, fsync="batch")
    writer.open()
    ctx = IngestContext(writer)
    kept, plain = _Paused(), _Paused()
    kept.turn_data = b"a kept read\n"
    ctx.paused.update({kept, plain})
    ctx._resume_all()
    assert plain.transport.reading and not plain.paused
    assert not kept.transport.reading and kept.paused
    assert not ctx.paused, "no longer held for the store: the turn resumes it"
