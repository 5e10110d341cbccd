"""Retention with a fake clock: exactly the expired files go, never an active segment."""

from __future__ import annotations

import os

from logmesh.logs.query.engine import Engine
from logmesh.logs.store import catalogue, layout
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.retention import Retention
from tests.support.store import DAY, HOUR, T0, FakeClock, data_files, event, write_store, written_at


def names(d) -> set[str]:
    out = set()
    for sub in (layout.SEGMENTS_DIR, layout.PARQUET_DIR):
        p = d / sub
        if p.exists():
            out |= {f"{sub}/{n}" for n in os.listdir(p) if n.endswith((".ndjson", ".parquet", ".json"))
                    and not n.endswith(layout.COUNTS_SUFFIX)}  # the active segment's (live_counts.py)
    return out


async def make(tmp_path, hours: int = 5):
    """One segment per hour (events stamped at that hour); the last stays active."""
    clock = FakeClock()
    batches = [[event(T0 + h * HOUR + i, message=f"h{h} e{i}") for i in range(50)] for h in range(hours)]
    writer = await write_store(tmp_path, batches, clock=clock)
    return writer, clock


async def test_age_deletes_exactly_the_expired_files(tmp_path):
    writer, clock = await make(tmp_path)
    Compactor(tmp_path, grace=0).run_once()  # hours 0, 1, 2, 3 -> Parquet; hour 4 active
    segs = sorted(p.name for p in (tmp_path / "segments").glob("*.ndjson"))
    assert len(segs) == 1 and len(list((tmp_path / "parquet").glob("*.parquet"))) == 4
    written_at(tmp_path, T0)
    before = names(tmp_path)
    # Retention 1 day at T0 + 1h30m + 1 day: hours 0 and 1 have only older events; hour 2 does not.
    now = T0 + HOUR + HOUR // 2 + DAY
    ret = Retention(tmp_path, max_age_ms=DAY, clock=lambda: now / 1000)
    gone = ret.run_once()
    assert sorted(v.paths[0].name for v in gone) == sorted(
        p for p in (n.split("/")[1] for n in before) if p.endswith(".parquet"))[:2]
    assert ret.counters["files_age"] == 2 and ret.counters["events"] == 100
    assert names(tmp_path) == before - {f"parquet/{p}" for v in gone for p in (v.paths[0].name, v.paths[1].name)}
    # Far in the future: every sealed file goes, the active segment stays.
    far = Retention(tmp_path, max_age_ms=HOUR, clock=lambda: (T0 + 100 * DAY) / 1000)
    far.run_once()
    assert names(tmp_path) == {f"segments/{segs[0]}"}
    engine = Engine(tmp_path)
    assert engine.count(None, T0 - DAY, T0 + DAY) == 50  # the active hour, still searchable
    engine.close()
    await writer.close()


async def test_max_disk_deletes_oldest_first_and_never_the_active_segment(tmp_path):
    writer, clock = await make(tmp_path)
    sealed = sorted(p for p in (tmp_path / "segments").glob("*.ndjson")
                    if p.with_name(layout.index_name(p.name)).exists())
    active = writer.active_path
    assert active is not None and active not in sealed and len(sealed) == 4
    size = {p: p.stat().st_size + p.with_name(layout.index_name(p.name)).stat().st_size for p in sealed}
    total = sum(size.values()) + active.stat().st_size
    ret = Retention(tmp_path, max_bytes=total - 1, clock=clock)
    gone = ret.run_once()
    assert [v.paths[0] for v in gone] == sealed[:1]  # the oldest, and only it
    assert ret.counters["files_disk"] == 1
    ret2 = Retention(tmp_path, max_bytes=1, clock=clock)
    ret2.run_once()
    assert active.exists() and not any(p.exists() for p in sealed)
    assert ret2.run_once() == []  # nothing left that may go; the active segment is over the limit alone
    await writer.close()


async def test_max_disk_counts_a_compaction_backlog_at_its_compacted_size(tmp_path):
    """Segments sealed and waiting for compaction (a restart after a burst, a kill -9 under
    load) count at what they will take compacted, not at their NDJSON size: found from
    outside, a restart with --max-disk 150MB and a backlog deleted 652 Parquet files (12.7M
    acked events) for a store that measured 6.4 MB once compaction caught up."""
    writer, clock = await make(tmp_path, hours=4)
    Compactor(tmp_path, grace=0).run_once()  # hours 0-2 -> Parquet; hour 3 active
    parquet = sorted((tmp_path / "parquet").glob("*.parquet"))
    assert len(parquet) == 3
    wide = "x" * 2000
    for h in range(4, 7):  # hours 3, 4, 5 sealed and waiting (no compaction); hour 6 active
        clock.ms += HOUR
        last = writer.append_events([event(T0 + h * HOUR + i, message=f"h{h} e{i} {wide}") for i in range(200)])
        await writer.durable(last)
    waiting = [p for p in (tmp_path / "segments").glob("*.ndjson")
               if p.with_name(layout.index_name(p.name)).exists()]
    assert len(waiting) == 3
    pq_bytes = sum(p.stat().st_size + p.with_name(layout.blocks_name(p.name)).stat().st_size for p in parquet)
    per_event = pq_bytes / 150
    raw_waiting = sum(p.stat().st_size for p in waiting)
    active = writer.active_path.stat().st_size
    budget = int(pq_bytes + active + 2 * per_event * 450)  # the waiting events at twice the store's rate
    assert pq_bytes + raw_waiting + active > budget + 200_000  # at their NDJSON size: far over
    ret = Retention(tmp_path, max_bytes=budget, clock=clock)
    assert ret.run_once() == []
    assert all(p.exists() for p in parquet + waiting)
    # Still a budget: below what the waiting segments take compacted, the oldest files go.
    tight = Retention(tmp_path, max_bytes=int(active + per_event * 100), clock=clock)
    gone = tight.run_once()
    assert [v.paths[0] for v in gone][:3] == parquet and tight.counters["files_disk"] >= 3
    await writer.close()


async def test_retention_and_compaction_run_in_the_worker0_thread(tmp_path):
    """The server wires them: --retention removes expired files and /metrics counts them."""
    from logmesh.logs.server import LogsConfig, LogsServer
    from tests.support.logs import HOST

    writer, _ = await make(tmp_path, hours=3)
    await writer.close()  # a previous run: every segment sealed, stamped ~2026-11-25
    server = LogsServer(LogsConfig(host=HOST, port=0, http_port=0, distributor=None, data_dir=tmp_path,
                                   retention_ms=HOUR))
    assert server.query.compactor is not None
    server.query.compactor.grace = 0
    server.query.compactor.run_once()
    written_at(tmp_path, T0)
    server.query.retention.clock = lambda: (T0 + DAY) / 1000
    gone = server.query.retention.run_once()
    assert len(gone) == 3 and not list((tmp_path / "parquet").glob("*.parquet"))
    text = server.exposition().render()
    assert 'logmesh_retention_deleted_files_total{reason="age",worker="0"} 3' in text
    assert 'logmesh_compacted_segments_total{worker="0"} 3' in text
    server.query.engine.close()


async def test_age_keeps_an_old_event_for_the_retention_after_it_was_written(tmp_path):
    """Backfill: events stamped 1970 and 1990, acked, then deleted by `--retention 1d` within
    seconds (found from outside). A file goes by age once its newest event AND the file
    itself are older than the retention (as Elasticsearch's ILM ages an index from its
    rollover): an acked event stays at least that long after it was stored."""
    old = [[event(0 + i, message=f"1970 e{i}") for i in range(20)],
           [event(631_152_000_000 + i, message=f"1990 e{i}") for i in range(20)],
           [event(T0 + i, message=f"now e{i}") for i in range(20)]]  # the active segment
    clock = FakeClock()
    writer = await write_store(tmp_path, old, clock=clock)
    Compactor(tmp_path, grace=0).run_once()
    written = {p: p.stat().st_mtime for p in data_files(tmp_path)}
    now_s = max(written.values()) + 60  # a minute after they were written
    ret = Retention(tmp_path, max_age_ms=DAY, clock=lambda: now_s)
    assert ret.run_once() == [] and set(data_files(tmp_path)) == set(written)
    later = Retention(tmp_path, max_age_ms=DAY, clock=lambda: now_s + DAY / 1000)
    assert sorted(v.events for v in later.run_once()) == [20, 20]  # a day on, they go
    await writer.close()


async def test_an_event_stamped_far_ahead_pins_no_file(tmp_path):
    """One acked event stamped 9999-12-31 (a sender's clock, a unit mistake) kept its file and
    every event in it for ever under --retention, and made it the newest for --max-disk, which
    deleted newer events first (found from outside). A stamp more than a day after its file was
    written counts as stamped then."""
    batches = [[event(T0 + i, message=f"first {i}") for i in range(20)] + [event(layout.MAX_TIMESTAMP_MS)],
               [event(T0 + HOUR + i, message=f"second {i}") for i in range(20)],
               [event(T0 + 2 * HOUR, message="active")]]
    writer = await write_store(tmp_path, batches)
    Compactor(tmp_path, grace=0).run_once()
    first, second = sorted(tmp_path.glob("parquet/*.parquet"))
    for path, ms in ((first, T0 + HOUR), (second, T0 + 2 * HOUR)):  # written when their hour ended
        os.utime(path, (ms / 1000, ms / 1000))

    disk = Retention(tmp_path, max_bytes=catalogue.usage(tmp_path).bytes - 1, clock=lambda: (T0 + 3 * HOUR) / 1000)
    assert [v.paths[0] for v in disk.run_once()] == [first], "the oldest written goes first"
    writer2 = await write_store(tmp_path / "again", batches)
    Compactor(tmp_path / "again", grace=0).run_once()
    written_at(tmp_path / "again", T0 + 2 * HOUR)
    age = Retention(tmp_path / "again", max_age_ms=DAY, clock=lambda: (T0 + 2 * HOUR + DAY + 1) / 1000)
    assert sorted(v.events for v in age.run_once()) == [20, 21], "a day after they were written, both go"
    await writer.close()
    await writer2.close()


async def test_retention_leaves_a_segment_another_worker_is_compacting(tmp_path, monkeypatch):
    """``--workers 2``: worker 0's retention deleted a segment while worker 1's compactor was
    writing its Parquet file, which then appeared: its events counted deleted and still there
    (and counted deleted again when the file went). A compacting segment is claimed
    (store/claims.py); retention leaves it to the next pass, when its Parquet file is there."""
    import threading

    from logmesh.logs.store import compact
    from logmesh.logs.store.catalogue import owned_by

    writer = await write_store(tmp_path, [[event(T0 + i, message=f"w1 {i}") for i in range(40)]], worker=1)
    await writer.close()
    written_at(tmp_path, T0)
    reading, go = threading.Event(), threading.Event()
    write = compact.write_parquet

    def slow_write(*args, **kwargs):
        reading.set()  # the segment is read: its Parquet file is being written
        assert go.wait(10)
        return write(*args, **kwargs)

    monkeypatch.setattr(compact, "write_parquet", slow_write)
    w1 = Compactor(tmp_path, grace=0)
    w1.owns = owned_by(1, 2)
    t = threading.Thread(target=w1.run_once)
    t.start()
    try:
        assert reading.wait(10)
        ret = Retention(tmp_path, max_age_ms=HOUR, clock=lambda: (T0 + DAY) / 1000)
        ret.run_once()
    finally:
        go.set()
        t.join(10)
    written_at(tmp_path, T0)  # the Parquet file, too, written long ago
    ret.run_once()  # the next pass: the segment is a Parquet file now
    assert ret.counters["events"] == 40, ret.counters
    assert names(tmp_path) == set(), "every file of the expired segment is gone, and counted once"
    w1.stop()


async def test_a_segment_whose_parquet_file_exists_is_deleted_as_a_copy(tmp_path):
    """A sealed segment left beside its Parquet file (a crash between the compaction's commit
    and the segment's removal) holds no event the Parquet file does not: deleting it deletes
    none, and retention counted its events deleted as well as the Parquet file's (found from
    outside: 150 deleted events counted for 100)."""
    import shutil

    writer, _ = await make(tmp_path, hours=2)
    await writer.close()  # both hours sealed
    sealed = sorted((tmp_path / layout.SEGMENTS_DIR).glob("*.ndjson"))[0]
    index = sealed.with_name(layout.index_name(sealed.name))
    kept = tmp_path / "kept"
    kept.mkdir()
    shutil.copy2(sealed, kept / sealed.name)
    shutil.copy2(index, kept / index.name)
    Compactor(tmp_path, grace=0).run_once()
    assert not sealed.exists()
    shutil.copy2(kept / sealed.name, sealed)  # as a crash after the commit leaves it
    shutil.copy2(kept / index.name, index)
    written_at(tmp_path, T0)
    ret = Retention(tmp_path, max_age_ms=HOUR, clock=lambda: (T0 + DAY) / 1000)
    ret.run_once()
    assert not sealed.exists() and not list((tmp_path / layout.PARQUET_DIR).glob("*.parquet"))
    assert ret.counters["events"] == 100, ret.counters


def test_max_disk_counts_the_counts_file_of_a_worker_that_no_longer_runs(tmp_path):
    """--workers lowered after worker 1 was killed: its unsealed segment and that segment's
    counts (store/live_counts.py) stay until worker 1 runs again and recovers them. Both take
    disk, so --max-disk counts both (it counted the segment alone)."""
    segments = tmp_path / layout.SEGMENTS_DIR
    segments.mkdir()
    active = segments / layout.segment_name(1, 1)
    active.write_bytes(b'{"seq":1}\n' * 10)
    segments.joinpath(layout.counts_name(active.name)).write_bytes(b"c" * 300)
    retention = Retention(tmp_path, max_bytes=1)
    assert retention.scan()[1] == catalogue.usage(tmp_path).bytes == 100 + 300
    assert retention.run_once() == [] and active.exists()  # an active segment is never deleted
