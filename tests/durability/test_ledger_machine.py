"""Shipped batches, a stateful property test over two real ``logmesh logs`` processes sharing one
data directory (two workers' streams, as ``--workers 2``): shippers' numbered batches sent to
either process, resends of any earlier batch to either (a shipper resends what was not acked
after it reconnects, wherever its new connection lands), kill -9 of either (sometimes while a
batch is in flight), graceful restarts, sealing and compaction.

Invariant after every step: every event acknowledged is stored exactly once, and no event is
stored twice (the loss ledger's de-duplication by ``event.id``, logs/ingest/ledger.py, across
processes: outside19 found a resend stored twice once the shipper had moved between them).
Bounded like test_store_machine.py: ``DURABILITY_EXAMPLES`` (default 3) runs of
``DURABILITY_STEPS`` (default 12) steps.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from tests.durability.harness import NoReply
from tests.durability.machines import TwoProcesses, assert_stored_once, machine_settings
from tests.support.procs import store_events

pytestmark = [pytest.mark.durability, pytest.mark.slow]

SHIPPERS = 1  # instances, each numbering its own events from 1 (one: its batches meet more often)
RECENT = 4  # a resend is of one of the last batches (a shipper resends what is in flight)


class LedgerMachine(TwoProcesses):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, list[list]]] = []
        self.acked: set[str] = set()
        self.next_n = [1] * SHIPPERS
        self.key = 0

    def new_batch(self, shipper: int, n: int) -> tuple[str, list[list]]:
        instance = f"{self.run}-s{shipper}"
        first = self.next_n[shipper]
        self.next_n[shipper] += n
        now = int(time.time() * 1000)
        batch = (instance, [[k, now, f"shipped {instance} {k} " + "x" * 200] for k in range(first, first + n)])
        self.batches.append(batch)
        return batch

    def send(self, which: int, batch: tuple[str, list[list]]) -> None:
        instance, events = batch
        self.key += 1
        reply = self.svcs[which].tcp_batch(events, key=self.key, instance=instance)
        assert reply.get("errorcode") == 0 and reply.get("acked") == len(events), reply
        self.acked.update(f"{instance}:{e[0]}" for e in events)

    @rule(which=st.integers(0, 1), shipper=st.integers(0, SHIPPERS - 1), n=st.integers(1, 80))
    def ship(self, which, shipper, n):
        self.send(which, self.new_batch(shipper, n))

    @rule(which=st.integers(0, 1), pick=st.floats(0, 1))
    def resend(self, which, pick):
        if self.batches:
            recent = self.batches[-RECENT:]
            self.send(which, recent[int(pick * (len(recent) - 1))])

    @rule(which=st.integers(0, 1), shipper=st.integers(0, SHIPPERS - 1), delay=st.floats(0, 0.08),
          n=st.integers(50, 400))
    def kill9_in_flight(self, which, shipper, delay, n):
        """A batch sent and the process killed after ``delay`` s, answered or not: a later
        ``resend`` of it must find what was stored."""
        batch = self.new_batch(shipper, n)
        svc = self.svcs[which]
        sender = threading.Thread(target=self._send_quietly, args=(which, batch), daemon=True)
        sender.start()
        time.sleep(delay)
        svc.kill9()
        sender.join(15)
        svc.start()

    def _send_quietly(self, which: int, batch: tuple[str, list[list]]) -> None:
        try:
            self.send(which, batch)
        except (OSError, NoReply, AssertionError):
            pass  # killed before it answered: the batch is the shipper's to resend

    @invariant()
    def every_acked_event_stored_once(self):
        stored = Counter(k for e in store_events(self.data)
                         if (k := e.get("event.id")) and k.startswith(self.run))
        assert_stored_once(stored, self.acked)

LedgerMachine.TestCase.settings = machine_settings(3, 12)
TestLedgerMachine = LedgerMachine.TestCase
