"""Defects found by trying the logs service from outside (helper outside14), each reproduced
with a real ``logmesh logs --standalone --no-supervise`` killed or fed as a user would."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tests.durability.harness import LogsService
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.durability, pytest.mark.slow]


def scratch_dirs(data_dir: Path) -> list[Path]:
    root = data_dir / "scratch"
    return sorted(root.iterdir()) if root.exists() else []


def query_once(svc: LogsService, word: str) -> None:
    """A POST and a search: the query engine (and its scratch directory) is opened."""
    status, body = svc.post([orjson.dumps({"message": word})])
    assert status == 200 and body["accepted"] == 1, body
    wait_for(lambda: svc.search_all(word), 10, f"{word} found")


def test_kill9_leaves_no_scratch_behind_a_restart(service):
    """Each query engine's temporary directory was ``tempfile.mkdtemp("logmesh-live-")`` in
    /tmp, removed only by a clean close: every kill -9 left one (259 on a machine here). Now
    it is in the data directory, named by its pid, and the next start removes it."""
    svc = service()
    pids = []
    for i in range(3):
        svc.start()
        query_once(svc, f"scratch{i}")
        pids.append(svc.proc.pid)
        mine = [p for p in scratch_dirs(svc.data_dir) if re.match(rf"query-{svc.proc.pid}-", p.name)]
        assert len(mine) == 1, scratch_dirs(svc.data_dir)
        svc.kill9()
    svc.start()
    query_once(svc, "scratch3")
    left = scratch_dirs(svc.data_dir)
    assert [p.name.split("-")[1] for p in left] == [str(svc.proc.pid)], (
        f"left by the killed processes {pids}: {left}")
    svc.stop()
    assert scratch_dirs(svc.data_dir) == [], "a clean stop removes its own"
