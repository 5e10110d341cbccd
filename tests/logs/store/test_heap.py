"""store/heap.py: a compacting thread keeps its freed buffers for the next segment, and hands
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

# A fresh process (mallopt is process-wide and cannot be undone), as a logs worker: threads
# with arenas of their own already running, then the compacting thread (an arena of its own,
# in heaps of 64 MB), holding 96 MB in buffers of 24 MB at once and freeing them (as a
# compaction does), its page faults counted before and after keep().
FAULTS = textwrap.dedent("""
    import resource, threading
    from logmesh.logs.store import heap

    def faults():
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for _ in range(10):  # more than a thread's heap of 64 MB held at once, as a compaction does
            bufs = [b"x" * (24 << 20) for _ in range(4)]
            del bufs
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    done = threading.Event()
    def other():
        held = [bytearray(1 << 20) for _ in range(4)]
        done.wait()
    others = [threading.Thread(target=other) for _ in range(3)]
    for t in others:
        t.start()
    out = []
    def compacting():
        first = faults()
        out.append(heap.keep())
        faults()  # the arena grows to hold the buffers
        out.extend([first, faults()])
        heap.release()
    t = threading.Thread(target=compacting)
    t.start()
    t.join()
    done.set()
    print(*out)
""")


def test_kept_buffers_are_reused_instead_of_faulted_in_again() -> None:
    out = subprocess.run([sys.executable, "-c", FAULTS], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    if out[0] != "True":
        pytest.skip("not glibc: heap.keep() does nothing")
    first, kept = int(out[1]), int(out[2])
    assert kept < first // 10, f"{kept} page faults with the buffers kept, {first} without"


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


def test_a_threads_page_faults_are_counted_where_the_os_counts_them() -> None:
    """The compactor's logmesh_compaction_page_faults_total: what bench/sustained.py reads."""
    if not hasattr(__import__("resource"), "RUSAGE_THREAD"):
        pytest.skip("the OS counts no faults per thread")
    before = heap.thread_faults()
    buf = b"x" * (64 << 20)  # above any mmap threshold: pages the thread faults in
    assert heap.thread_faults() > before
    del buf
