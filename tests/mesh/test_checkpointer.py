"""goods' WAL checkpoints in a thread, off its event loop (examples/checkpointer.py), and the
writes held while the WAL restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap

import pytest

from logmesh.examples.resource import RESOURCES, ResourceStore
from logmesh.mesh.service import HandlerError
from tests.support.waiting import wait_for, wait_until

FRAME = 4096 + 24  # a WAL frame: its page and its header


async def test_the_loop_never_checkpoints_the_thread_does(tmp_path):
    """SQLite's own checkpoint ran inside the commit crossing 1,000 pages, in goods' loop: two
    syncs, 15-25 ms of every request's time. The writer checkpoints nothing; the thread does."""
    store = ResourceStore(RESOURCES["goods"], tmp_path / "goods.db", checkpoint_period=0.01,
                          checkpoint_commits=1)
    try:
        assert store.writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        await asyncio.gather(*[store.insert({"name": f"pen {i}"}, {}) for i in range(10)])
        await wait_until(lambda: store.checkpointer.checkpoints > 0, 10, "a checkpoint")
        # every frame of the WAL is in the database file: a reader without the WAL sees it
        busy, frames, copied = store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, copied) == (0, frames)
    finally:
        store.close()


async def test_the_wal_restarts_under_writes_that_never_stop(tmp_path):
    """A PASSIVE checkpoint racing a writer that never stops never lets the WAL restart (mesh7:
    90 MB in 20,000 commits); the store holds its writes for one pass every restart_frames."""
    path = tmp_path / "goods.db"
    store = ResourceStore(RESOURCES["goods"], path, checkpoint_period=0.002,
                          checkpoint_commits=20, restart_frames=100)
    answers: list[dict] = []
    try:
        for turn in range(1_500):  # a commit every turn, as under a POST load: ~3,500 frames
            answers += await asyncio.gather(*[store.insert({"name": f"pen {turn}.{i}"}, {})
                                              for i in range(4)])
        assert store.checkpointer.restarts > 0
        wal = path.with_name("goods.db-wal").stat().st_size
        assert wal < 1_000 * FRAME, f"the WAL grew to {wal} bytes"
    finally:
        store.close()
    assert [a["id"] for a in answers] == list(range(1, 6_001))  # each answered once, in order
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*), max(id) FROM goods").fetchone() == (6_000, 6_000)


async def test_two_workers_writing_one_file_each_checkpoint_and_every_write_lands(tmp_path):
    """Two stores on one file (``--workers 2``): one's hold does not stop the other's writes,
    so its last pass may not copy the whole WAL; nothing waits for ever, nothing is lost."""
    path = tmp_path / "goods.db"
    stores = [ResourceStore(RESOURCES["goods"], path, checkpoint_period=0.002,
                            checkpoint_commits=10, restart_frames=100) for _ in range(2)]
    answers: list[dict] = []
    try:
        for turn in range(600):  # in turns of their own: one thread, one writer at a time
            for s in stores:
                answers += await asyncio.gather(*[s.insert({"name": f"pen {turn}.{i}"}, {})
                                                  for i in range(3)])
        assert all(s.checkpointer.checkpoints > 0 for s in stores)
    finally:
        for s in stores:
            s.close()
    assert sorted(a["id"] for a in answers) == list(range(1, 3_601))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM goods").fetchone() == (3_600,)


async def test_held_writes_wait_unseen_and_a_bad_one_fails_alone(tmp_path):
    """During a hold a write is not run: no GET sees it, nobody is answered; at the release
    they are one group, and a write SQLite refuses fails alone with a 400."""
    store = ResourceStore(RESOURCES["goods"], tmp_path / "goods.db")
    try:
        await store.insert({"name": "pen"}, {})  # id 1; the checkpointer runs
        store._hold()
        good = store.insert({"name": "cup"}, {})
        bad = store._write("INSERT INTO goods (id, name) VALUES (1, 'clash')", [],
                           lambda cur: None)
        gone = store.delete({"id": 1}, {})
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in (good, bad, gone))
        assert [r["name"] for r in store.select({}, {})] == ["pen"]
        commits = store.commits
        store._release()
        assert await good == {"id": 2} and await gone == {"deleted": 1}
        with pytest.raises(HandlerError, match="cannot store goods") as caught:
            await bad
        assert caught.value.errorcode == 400
        assert store.commits == commits + 1
        await asyncio.sleep(0)  # the next turn: data_version is asked again
        assert [r["name"] for r in store.select({}, {})] == ["cup"]
    finally:
        store.close()


async def test_closing_during_a_hold_stores_and_answers_what_was_held(tmp_path):
    path = tmp_path / "goods.db"
    store = ResourceStore(RESOURCES["goods"], path)
    await store.insert({"name": "pen"}, {})
    store._hold()
    held = store.insert({"name": "cup"}, {})
    store.close()
    assert await held == {"id": 2}
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM goods ORDER BY id")] == ["pen", "cup"]


CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from logmesh.examples.resource import RESOURCES, ResourceStore

    async def main():
        store = ResourceStore(RESOURCES["goods"], Path(sys.argv[1]), sync=sys.argv[2],
                              checkpoint_period=0.002, checkpoint_commits=5,
                              restart_frames=50)
        turn = 0
        while True:  # until killed: every answer printed once its commit returned
            done = await asyncio.gather(*[store.insert({"name": f"n{turn}.{i}"}, {})
                                          for i in range(3)])
            print("acked", *(d["id"] for d in done), store.checkpointer.restarts, flush=True)
            turn += 1

    asyncio.run(main())
""")


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_an_answered_write_survives_a_kill_during_checkpoints_and_restarts(procs, tmp_path,
                                                                           sync):
    """kill -9 while the thread checkpoints and the WAL restarts under the writes: every write
    answered before the kill is in the database opened again."""
    path = tmp_path / "goods.db"
    proc = procs.start_script("writer", [sys.executable, "-c", CHILD, str(path), sync])
    proc.wait_line(r"acked \d+ \d+ \d+ [1-9]\d*\n", timeout=60)  # a restart or more happened
    wait_for(lambda: proc.log_text().count("acked") > 2_000, 60, "2,000 answered groups")
    proc.kill9()
    acked = {int(i) for line in proc.log_text().splitlines() if line.startswith("acked ")
             and line.count(" ") == 4 for i in line.split()[1:4]}
    with sqlite3.connect(path) as db:
        stored = {r[0] for r in db.execute("SELECT id FROM goods")}
    assert acked and acked <= stored, f"{len(acked - stored)} answered writes lost"
