"""Compaction waits while ingest is busy and one segment is due (store/pacing.py): at most
WAIT_SECONDS past due, never with a second segment waiting, and compacts as before after it.
Clocks are fakes: nothing here depends on how fast the machine runs."""

from __future__ import annotations

import os
from pathlib import Path

from logmesh.logs.store import layout
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.pacing import CompactionPacing
from logmesh.logs.store.reader import list_segments
from tests.support.store import HOUR, T0, event, write_store


class Ticks:
    """A settable clock."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def sealed_segments(data: Path, n: int, sealed_at: float) -> list:
    """``n`` sealed segments of 10 events each, their indexes written at ``sealed_at``."""
    writer = await write_store(data, [[event(T0 + i * HOUR + k) for k in range(10)]
                                      for i in range(n + 1)])
    await writer.close()  # seals the last one too: keep n
    segs = sorted((s for s in list_segments(data) if s.sealed), key=lambda s: s.first_seq)
    for extra in segs[n:]:
        extra.path.unlink()
        extra.path.with_name(layout.index_name(extra.path.name)).unlink()
    for seg in segs[:n]:
        os.utime(seg.path.with_name(layout.index_name(seg.path.name)), (sealed_at, sealed_at))
    return segs[:n]


def pacing(appended: list[int], wall: Ticks, mono: Ticks, newest: list) -> CompactionPacing:
    return CompactionPacing(lambda: appended[0], lambda: newest[0], grace=5.0, busy_rate=1_000,
                            wait=30.0, clock=wall, monotonic=mono)


async def test_one_due_segment_waits_while_ingest_is_busy_and_at_most_the_wait(tmp_path: Path):
    sealed_at = 1_000_000.0
    segs = await sealed_segments(tmp_path, 1, sealed_at)
    appended, wall, mono = [0], Ticks(sealed_at + 5), Ticks(100.0)
    pace = pacing(appended, wall, mono, [segs[0].path])
    appended[0], mono.t = 5_000, 101.0  # 5,000 events in the last second: busy
    assert pace(segs) is True and pace.rate == 5_000
    wall.t = sealed_at + 5 + 29.9
    appended[0], mono.t = 10_000, 102.0
    assert pace(segs) is True, "busy, due 29.9 s ago: still waits"
    wall.t = sealed_at + 5 + 30
    appended[0], mono.t = 15_000, 103.0
    assert pace(segs) is False, "due for the whole wait: compacted whatever the traffic"
    assert pace.waited == 2


async def test_a_quiet_writer_or_a_second_due_segment_compacts_at_once(tmp_path: Path):
    sealed_at = 1_000_000.0
    segs = await sealed_segments(tmp_path, 2, sealed_at)
    appended, wall, mono = [0], Ticks(sealed_at + 6), Ticks(100.0)
    pace = pacing(appended, wall, mono, [segs[0].path])
    appended[0], mono.t = 900, 101.0  # under the busy rate
    assert pace(segs[:1]) is False
    appended[0], mono.t = 100_900, 102.0  # busy
    assert pace(segs) is False, "two segments due: the backlog is not small"
    assert pace(segs[:1]) is True
    appended[0], mono.t = 100_900, 102.2  # sampled 0.2 s later: the last rate holds
    assert pace(segs[:1]) is True
    appended[0], mono.t = 100_900, 103.0  # nothing for a second: quiet
    assert pace(segs[:1]) is False
    assert pace([]) is False


async def test_another_seal_since_the_segment_was_left_ends_the_wait(tmp_path: Path):
    """At a high rate the next segment seals while the first waits (at 300k events/s, before the
    first is even due): no longer a small backlog, so it is compacted at once (with the next
    one), not after the whole wait."""
    segs = await sealed_segments(tmp_path, 1, 1_000_000.0)
    appended, wall, mono, newest = [0], Ticks(1_000_006.0), Ticks(100.0), [segs[0].path]
    pace = pacing(appended, wall, mono, newest)
    appended[0], mono.t = 50_000, 101.0
    assert pace(segs) is True
    appended[0], mono.t = 100_000, 102.0
    assert pace(segs) is True, "no seal since"
    newest[0] = segs[0].path.with_name("w0-next.ndjson")
    appended[0], mono.t = 150_000, 103.0
    assert pace(segs) is False
    newest[0] = None  # nothing sealed by this writer (a segment a previous run left)
    assert pace(segs) is False


async def test_a_segment_gone_meanwhile_is_not_waited_for(tmp_path: Path):
    segs = await sealed_segments(tmp_path, 1, 1_000_000.0)
    appended, wall, mono = [0], Ticks(1_000_010.0), Ticks(100.0)
    pace = pacing(appended, wall, mono, [segs[0].path])
    segs[0].path.with_name(layout.index_name(segs[0].path.name)).unlink()
    appended[0], mono.t = 50_000, 101.0
    assert pace(segs) is False


async def test_the_compactor_leaves_a_deferred_segment_and_takes_it_after(tmp_path: Path):
    segs = await sealed_segments(tmp_path, 1, 1_000_000.0)
    answers = [True]
    c = Compactor(tmp_path, grace=0)
    c.defer = lambda due: answers[0]
    assert c.run_once() == 0
    assert segs[0].path.exists() and not list((tmp_path / layout.PARQUET_DIR).glob("*.parquet"))
    answers[0] = False
    assert c.run_once() == 1
    assert not segs[0].path.exists()
    assert len(list((tmp_path / layout.PARQUET_DIR).glob("*.parquet"))) == 1
    c.stop()


async def test_the_server_wires_its_writer_into_the_pacing(start_logs):
    server = await start_logs()
    compactor = server.query.compactor
    assert isinstance(compactor.defer, CompactionPacing)
    before = compactor.defer.appended()
    server.writer.reserve(3)
    assert compactor.defer.appended() == before + 3
    assert compactor.defer.newest() is None  # nothing sealed yet
