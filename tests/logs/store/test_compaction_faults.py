"""logmesh_compaction_page_faults_total: the compacting thread's minor page faults, which
bench/sustained.py prints per million events (a compaction maps its buffers afresh)."""

from __future__ import annotations

import resource

import pytest

from logmesh.logs.store.compact import thread_faults


def test_a_threads_page_faults_are_counted_where_the_os_counts_them() -> None:
    if not hasattr(resource, "RUSAGE_THREAD"):
        pytest.skip("the OS counts no faults per thread")
    before = thread_faults()
    buf = b"x" * (64 << 20)  # above any mmap threshold: pages this thread faults in
    assert thread_faults() > before
    del buf

