"""Failover between two logs services sharing one data directory (issue #8).

Both register as ``logs``; each takes its own stream (w00, w01) of the shared
directory. The shippers use the first; when it is SIGKILLed they move to the
other, resend what was not acknowledged, and the survivor drops the resends
that the dead one had already stored, so every request is stored once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_chaos import _traffic
from tests.support.procs import LISTENING, store_events, wait_for

pytestmark = pytest.mark.slow


def test_shippers_fail_over_to_the_other_logs_service(procs, tmp_path: Path) -> None:
    data = tmp_path / "logs"
    _, dport = procs.distributor()
    first, _, _ = procs.logs(data, distributor=dport, name="logs-a")
    second, _, _ = procs.logs(data, distributor=dport, name="logs-b")
    assert first.wait_line(LISTENING["logs"])[0].group(1) == "0"
    assert second.wait_line(LISTENING["logs"])[0].group(1) == "1"  # the next free stream
    for name in ("goods", "members"):
        procs.service(name, dport, tmp_path / "svc")
    _, gport = procs.gateway(dport)

    async def scenario() -> list[str]:
        answered: list[str] = []
        traffic = asyncio.ensure_future(_traffic(gport, 9.0, answered))
        await asyncio.sleep(4.0)
        first.kill9()
        await traffic
        return answered

    answered = [t for t in asyncio.run(scenario())]
    assert len(answered) > 100

    def settled():
        events = [e for e in store_events(data)
                  if e.get("trace.id") and e.get("service.name") in ("goods", "members")]
        return events if {e["trace.id"] for e in events} >= set(answered) else None

    events = wait_for(settled, 30, "every answered request in the shared store", interval=0.5)
    per_trace = Counter(e["trace.id"] for e in events)
    assert not [t for t, n in per_trace.items() if n > 1], "a request was stored twice"
    streams = Counter(e["seq"] & 63 for e in events)
    assert streams[0] > 0 and streams[1] > 0, f"both logs services should have stored: {streams}"
    numbers: dict[str, list[int]] = {}
    for e in store_events(data):
        inst, _, n = e.get("event.id", "").rpartition(":")
        if inst.startswith(("goods", "members")):
            numbers.setdefault(inst, []).append(int(n))
    for inst, ns in numbers.items():
        assert sorted(ns) == list(range(1, max(ns) + 1)), f"{inst}: numbers missing or repeated"
