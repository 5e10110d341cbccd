"""What the stateful durability tests share: their bounds, and the two real ``logmesh logs``
processes sharing one data directory (two workers' streams, as ``--workers 2``) that the
cross-process machines (ES ``_id``, the loss ledger) drive."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from tests.durability.harness import SMALL_SEGMENTS, LogsService, compacted, new_run_id
from tests.support.waiting import wait_for


def assert_stored_once(stored: Counter, acked: set) -> None:
    """The cross-process machines' invariant: no key of this run stored twice, and every acked
    key stored (``stored`` counts this run's keys in the store)."""
    twice = sorted(k for k, n in stored.items() if n > 1)
    assert not twice, f"stored more than once: {twice[:10]}"
    missing = sorted(acked - set(stored))
    assert not missing, f"acked, not stored: {missing[:10]}"


def machine_settings(examples: int, steps: int) -> settings:
    """``DURABILITY_EXAMPLES`` runs of ``DURABILITY_STEPS`` steps (these defaults: bounded for
    CI, each step drives real processes); ``DURABILITY_SHRINK=1`` shrinks a failure."""
    return settings(
        max_examples=int(os.environ.get("DURABILITY_EXAMPLES", str(examples))),
        stateful_step_count=int(os.environ.get("DURABILITY_STEPS", str(steps))),
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate]
        + ([Phase.shrink] if os.environ.get("DURABILITY_SHRINK") else []),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class TwoProcesses(RuleBasedStateMachine):
    """Two logs processes on one data directory, with the rules every such machine has:
    a graceful restart of either, and sealing and compaction of both."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="logmesh-two-"))
        self.data = self.dir / "data"
        self.run = new_run_id()
        self.svcs = []
        for k in range(2):  # a directory each for their logs: Procs names them by count
            (self.dir / f"svc{k}").mkdir()
            self.svcs.append(LogsService(self.dir / f"svc{k}", self.data, *SMALL_SEGMENTS))
        for svc in self.svcs:
            svc.start()

    @rule(which=st.integers(0, 1))
    def restart(self, which):
        self.svcs[which].restart()

    @rule()
    def compact(self):
        for svc in self.svcs:  # a restart seals the active segments
            svc.restart()
        wait_for(lambda: compacted(self.data), 60, "compaction")

    def teardown(self):
        for svc in self.svcs:
            svc.close()
        shutil.rmtree(self.dir, ignore_errors=True)
