"""malloc_tuning.keep_freed_heap: buffers of an ingest worker's size reused, not faulted in again.

Each run is a fresh process (the thresholds are process-wide and cannot be set back), doing
what the syslog hot path does per read: one ``bytes %`` of ~0.8 MB, the last few kept
(the writer holds its blocks until written). Page faults are counted, not time.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tests.support.procs import ROOT

READS = """
import resource, sys
from logmesh.logs.malloc_tuning import keep_freed_heap
tuned = keep_freed_heap() if sys.argv[1] == "tune" else None
fmt = b"%b%d\\n" * 1400
values = tuple(x for i in range(1400) for x in (b"h" * 500, i))
held = []
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    held.append(fmt % values)
    if len(held) > 4:
        held.pop(0)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", READS, mode], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_buffers_of_a_read_are_reused_not_faulted_in_again() -> None:
    _, plain = _faults("plain")
    tuned, faults = _faults("tune")
    assert tuned == "True"
    # 200 outputs of 0.8 MB: ~200 pages each when malloc maps them afresh (28,000 here);
    # reused from the heap, a few hundred in all
    assert plain > 10_000
    assert faults < plain / 5
