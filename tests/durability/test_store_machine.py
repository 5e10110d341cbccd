"""Issue 14, "Proving it": a stateful property test over a real ``logmesh logs`` process.

Random sequences of acked ingest (HTTP NDJSON, TCP shipper batches) and fire-and-forget book
packets, with hostile values mixed in (``@timestamp`` 1e300 / 10**20, 1e999 in params,
1000-deep nesting, bad UTF-8, batches over 1 MiB); graceful restart; kill -9 (sometimes with
a torn half record left behind); waiting for compaction; retention; overwriting a byte
range of a store file while the service is stopped; a full disk (a small tmpfs as the data
dir: needs root and ``mount``, else that rule alone is skipped). After every step
(machine.py ``check``): the service runs and answers ``/healthz``; every acked event that
retention may not have deleted and whose bytes were not overwritten is returned by search
exactly once; nothing is found twice; ``/api/v1/stats`` counts the events on disk.

Bounded for CI (about 1.5 minutes on 2 cores when nothing fails; at most ~3): ``DURABILITY_EXAMPLES`` (default 5) runs of
``DURABILITY_STEPS`` (default 15) steps, no shrinking (each step drives real processes;
``DURABILITY_SHRINK=1`` turns it on). ``make torture`` runs the same machine for 10 minutes
(bench/torture.py). Select with ``-m durability``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.durability.machine import (
    DAMAGE_FILLS,
    HOSTILE_BOOK,
    HOSTILE_HTTP,
    HOSTILE_TCP,
    DurabilityMachine,
    tmpfs_unavailable,
)
from tests.durability.machines import machine_settings

pytestmark = [pytest.mark.durability, pytest.mark.slow]

NO_TMPFS = tmpfs_unavailable()


def hostile(kinds: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    """Mostly none, sometimes one or two hostile events in a batch."""
    return st.one_of(st.just(()), st.just(()), st.lists(st.sampled_from(kinds), min_size=1,
                                                        max_size=2).map(tuple))


rarely = st.integers(0, 7).map(lambda i: i == 0)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="logmesh-durability-"))
        self.m = DurabilityMachine(self.dir)

    @rule(count=st.integers(1, 40), bad=hostile(HOSTILE_HTTP), old=rarely, huge=rarely)
    def ingest_http(self, count, bad, old, huge):
        self.m.ingest_http(count, bad, old, huge)

    @rule(count=st.integers(1, 40), bad=hostile(HOSTILE_TCP), old=rarely, huge=rarely)
    def ingest_tcp(self, count, bad, old, huge):
        self.m.ingest_tcp(count, bad, old, huge)

    @rule(count=st.integers(1, 40), bad=hostile(HOSTILE_BOOK))
    def ingest_book(self, count, bad):
        self.m.ingest_book(count, bad)

    @rule()
    def restart(self):
        self.m.restart()

    @rule(torn=st.booleans(), mid_stream=st.one_of(st.just(0.0), st.floats(0.05, 1.0)))
    def kill9(self, torn, mid_stream):
        self.m.kill9(torn, mid_stream)

    @rule(seal_first=st.booleans())
    def compact(self, seal_first):
        self.m.compact(seal_first)

    @precondition(lambda self: not self.m.retention)
    @rule()
    def enable_retention(self):
        self.m.enable_retention()

    @rule(pick=st.floats(0, 1), where=st.floats(0, 1), length=st.integers(1, 4096),
          fill=st.sampled_from(DAMAGE_FILLS))
    def damage_file(self, pick, where, length, fill):
        self.m.damage_file(pick, where, length, fill)

    @precondition(lambda self: self.m.mounted)
    @rule(stop_while_full=st.booleans())
    def disk_full(self, stop_while_full):
        self.m.disk_full(stop_while_full)

    @invariant()
    def acked_events_are_stored_once(self):
        report = self.m.check()
        assert report.ok, report.describe()

    def teardown(self):
        self.m.close()
        shutil.rmtree(self.dir, ignore_errors=True)


SETTINGS = machine_settings(5, 15)


def test_store_machine():
    if NO_TMPFS:
        print(f"durability: the disk_full rule is skipped: {NO_TMPFS}")
    run_state_machine_as_test(StoreMachine, settings=SETTINGS)
