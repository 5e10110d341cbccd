"""A shipper's resend after it moved between two logs processes sharing a data directory
(``--workers 2``'s streams) is stored once.

Found from outside (outside19): the loss ledger looked the store up only for an instance it
had never received from. A process that knew the instance up to N (it had received from it, or
rebuilt its ledger at a restart) took the resend of N+1.. that the sibling had stored and not
acked before its kill -9, as new: stored twice.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.durability.harness import LogsService, new_run_id
from tests.support.procs import store_events

pytestmark = pytest.mark.slow


def events(first: int, last: int) -> list[list]:
    now = int(time.time() * 1000)
    return [[n, now, f"moved event {n}"] for n in range(first, last + 1)]


def test_a_resend_of_what_the_killed_sibling_stored_is_stored_once(tmp_path):
    data = tmp_path / "data"
    instance = f"{new_run_id()}-shipper"
    svcs = []
    for k in range(2):
        (tmp_path / f"svc{k}").mkdir()
        svcs.append(LogsService(tmp_path / f"svc{k}", data))
    try:
        for svc in svcs:
            svc.start()
        a, b = svcs
        assert a.tcp_batch(events(1, 100), key=1, instance=instance)["acked"] == 100
        # the shipper's connection moves to the sibling, which stores the next batch; its ack
        # is lost with the kill, so the shipper resends the batch to the first process
        assert b.tcp_batch(events(101, 110), key=2, instance=instance)["acked"] == 10
        b.kill9()
        assert a.tcp_batch(events(101, 110), key=3, instance=instance)["acked"] == 10
        assert a.tcp_batch(events(111, 120), key=4, instance=instance)["acked"] == 10
        stored = Counter(e.get("event.id") for e in store_events(data))
        mine = {k: n for k, n in stored.items() if k and k.startswith(instance)}
        assert sorted(k for k, n in mine.items() if n > 1) == []
        assert len(mine) == 120
    finally:
        for svc in svcs:
            svc.close()
