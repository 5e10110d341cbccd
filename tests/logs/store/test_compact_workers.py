"""``--workers N``: each worker compacts its own segments, worker 0 also those of no running worker.

One compacting thread (worker 0's) for every worker's segments was busy 89% of a 300k events/s
load and the backlog still grew; a seal of worker 1 did not wake it either. Each worker's own
thread now takes its own segments (store/catalogue.py: owned_by), woken by its own writer.
"""

from __future__ import annotations

from pathlib import Path

from logmesh.logs.server import LogsConfig, LogsServer
from logmesh.logs.store import layout
from logmesh.logs.store.catalogue import owned_by, tmp_worker
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.reader import list_segments
from tests.support.logs import HOST
from tests.support.store import T0, event, write_store


async def store_of_workers(data: Path, workers: tuple[int, ...]) -> None:
    """A sealed segment of 3 events per worker."""
    for w in workers:
        writer = await write_store(data, [[event(T0 + i, message=f"w{w} {i}") for i in range(3)]], worker=w)
        await writer.close()


def compacted(data: Path) -> list[int]:
    """The workers whose Parquet files exist, by name."""
    return sorted(layout.parse_name(n, layout.PARQUET_SUFFIX)[0]  # type: ignore[index]
                  for n in (p.name for p in (data / layout.PARQUET_DIR).glob("*" + layout.PARQUET_SUFFIX)))


def test_ownership_is_a_workers_own_and_worker_0_takes_those_of_no_running_worker() -> None:
    one, zero = owned_by(1, 2), owned_by(0, 2)
    assert [w for w in range(-1, 4) if one(w)] == [1]
    assert [w for w in range(-1, 4) if zero(w)] == [-1, 0, 2, 3]
    assert [w for w in range(-1, 3) if owned_by(0, 1)(w)] == [-1, 0, 1, 2], "one worker: the whole store"


async def test_each_compactor_takes_only_the_segments_it_owns(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await store_of_workers(data, (0, 1, 2))  # worker 2 is not running (--workers 2 now)
    w1 = Compactor(data, grace=0)
    w1.owns = owned_by(1, 2)
    assert w1.run_once() == 1
    assert compacted(data) == [1]
    assert sorted(s.worker for s in list_segments(data)) == [0, 2], "the others' segments stay"
    w0 = Compactor(data, grace=0)
    w0.owns = owned_by(0, 2)
    assert w0.run_once() == 2
    assert compacted(data) == [0, 1, 2] and list_segments(data) == []
    assert w1.run_once() == 0 and w0.run_once() == 0
    for c in (w0, w1):
        c.stop()


async def test_a_compactor_removes_only_its_own_half_written_files(tmp_path: Path) -> None:
    """Another worker's compactor may be writing its ``.tmp`` at this moment."""
    pq = tmp_path / layout.PARQUET_DIR
    pq.mkdir(parents=True)
    names = ["w00-0000000000000064.parquet.tmp", "w01-0000000000000065.parquet.tmp",
             "w01-0000000000000065.blocks.json.tmp", "w02-0000000000000066.parquet.tmp", "stray.tmp"]
    for n in names:
        (pq / n).write_bytes(b"half")
    assert [tmp_worker(n) for n in names] == [0, 1, 1, 2, -1]
    c = Compactor(tmp_path)
    c.owns = owned_by(1, 3)
    c.clean_tmp()
    assert sorted(p.name for p in pq.iterdir()) == sorted([names[0], names[3], names[4]])
    c.owns = owned_by(0, 3)
    c.clean_tmp()
    assert sorted(p.name for p in pq.iterdir()) == [names[3]], "worker 2 runs: its file stays"
    c.stop()


def worker(data: Path, n: int) -> LogsServer:
    return LogsServer(LogsConfig(host=HOST, port=0, http_port=0, distributor=None, data_dir=data,
                                 workers=2, worker_id=n))  # type: ignore[arg-type]


async def test_every_worker_of_a_server_compacts_its_own_and_only_worker_0_runs_retention(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    await store_of_workers(data, (0, 1))
    w0, w1 = worker(data, 0), worker(data, 1)
    try:
        c0, c1 = w0.query.compactor, w1.query.compactor
        assert c0 is not None and c1 is not None
        assert c0.after_pass == w0.query.retention.run_once and c1.after_pass is None
        c0.grace = c1.grace = 0
        assert c1.run_once() == 1 and compacted(data) == [1]
        assert c0.run_once() == 1 and compacted(data) == [0, 1]
        on_seal: list = []
        w1.query.start(on_seal)  # worker 1's writer's seals wake worker 1's own thread
        assert on_seal == [c1.wake] and c1.alive
    finally:
        for w in (w0, w1):
            if w.query.compactor is not None:
                w.query.compactor.stop()
            w.query.engine.close()
            w.prom.close()
