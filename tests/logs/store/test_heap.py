"""store/heap.py: a compacting process keeps its freed buffers for the next segment, and hands
them back when its compactor goes idle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from logmesh.logs.store import compact, heap
from logmesh.logs.store.compact import Compactor
from tests.support.store import T0, event, write_store
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]

# A fresh process (mallopt is process-wide and cannot be undone): page faults of buffers of
# 8 MB allocated, written and freed again and again, before and after heap.keep().
FAULTS = textwrap.dedent("""
    import resource
    from logmesh.logs.store import heap

    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            buf = b"x" * (8 << 20)
            del buf
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    first = faults()
    kept = heap.keep()
    faults()  # the arena grows to hold one buffer
    print(kept, first, faults())
    heap.release()
""")


def test_kept_buffers_are_reused_instead_of_faulted_in_again() -> None:
    out = subprocess.run([sys.executable, "-c", FAULTS], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    if out[0] != "True":
        pytest.skip("not glibc: heap.keep() does nothing")
    first, kept = int(out[1]), int(out[2])
    assert kept < first, f"{kept} page faults with the buffers kept, {first} without"


def test_keep_is_once_a_process_and_release_never_fails() -> None:
    assert heap.keep() == heap.keep()
    heap.release()


async def test_the_compactor_releases_the_buffers_once_nothing_sealed_waits(tmp_path, monkeypatch) -> None:
    writer = await write_store(tmp_path, [[event(T0 + i) for i in range(3)], [event(T0 + 10)]])
    await writer.close()  # two sealed segments
    released: list[int] = []
    compacted: list[int] = []
    monkeypatch.setattr(heap, "release", lambda: released.append(len(compacted)))
    real = compact.compact_segment

    def counted(*args, **kw):
        compacted.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(compact, "compact_segment", counted)
    c = Compactor(tmp_path, grace=0, interval=3600)
    c.start()
    try:
        await wait_until(lambda: released, timeout=60, what="the buffers released once idle")
        assert released == [2], "after both segments, not between them"
    finally:
        c.stop()
