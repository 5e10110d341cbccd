"""Reliable shipping under failure, with real processes killed for real (issue #8).

Traffic flows through the gateway to the three example services while the
logs service is SIGKILLed twice and the distributor restarted once. At the
end every request a service answered is in the store exactly once, and the
per-instance numbers in ``event.id`` show nothing missing.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.support.procs import HOST, free_port, store_events, wait_for

pytestmark = pytest.mark.slow


async def _traffic(gateway: int, seconds: float, answered: list[str]) -> int:
    """Requests for ``seconds``; records the trace id of each one a service answered."""
    deadline = time.monotonic() + seconds
    sent = 0
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(f"http://{HOST}:{gateway}", timeout=timeout) as http:
        async def worker(w: int) -> None:
            nonlocal sent
            i = 0
            while time.monotonic() < deadline:
                i += 1
                kind = ("goods", "members", "purchases")[(w + i) % 3]
                sent += 1
                try:
                    async with http.get(f"/{kind}", params={"id": str(i)}) as r:
                        body = await r.json()
                        if r.status == 200 and body.get("errorcode") == 0:
                            answered.append(r.headers["X-Request-Id"])
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.01)
        await asyncio.gather(*(worker(w) for w in range(6)))
    return sent


def test_chaos_logs_killed_twice_distributor_restarted(procs, tmp_path: Path) -> None:
    dport, lport, hport = free_port(), free_port(), free_port()
    data = tmp_path / "logs"
    dist = procs.start("distributor", "distributor", "--port", str(dport), "--no-supervise")
    dist.wait_line(r"distributor listening")

    def start_logs():
        p, _, _ = procs.logs(data, port=lport, http_port=hport, distributor=dport)
        return p

    logs = start_logs()
    for name in ("goods", "members", "purchases"):
        procs.service(name, dport, tmp_path / "svc")
    _, gport = procs.gateway(dport)

    async def scenario() -> list[str]:
        answered: list[str] = []
        traffic = asyncio.ensure_future(_traffic(gport, 16.0, answered))
        async with aiohttp.ClientSession() as http:
            async def routed() -> bool:
                try:
                    async with http.get(f"http://{HOST}:{gport}/purchases") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False
            while not await routed():
                await asyncio.sleep(0.1)
        nonlocal logs, dist
        await asyncio.sleep(2.5)
        logs.kill9()                                   # 1st crash of the logs service
        await asyncio.sleep(3.0)
        logs = await asyncio.to_thread(start_logs)
        await asyncio.sleep(1.5)
        dist.kill9()                                   # the registry goes away ...
        await asyncio.sleep(1.0)
        dist = procs.start("distributor", "distributor", "--port", str(dport), "--no-supervise")
        await asyncio.sleep(1.5)
        logs.kill9()                                   # 2nd crash of the logs service
        await asyncio.sleep(3.0)
        logs = await asyncio.to_thread(start_logs)
        await traffic
        return answered

    answered = asyncio.run(scenario())
    assert len(answered) > 200, "too little traffic got through to judge"

    def settled():
        events = [e for e in store_events(data)
                  if e.get("trace.id") and e.get("service.name") != "gateway"]  # not access logs
        ids = {e["trace.id"] for e in events}
        return events if ids >= set(answered) else None

    events = wait_for(settled, 30, "every answered request to reach the store", interval=0.5)
    per_trace = Counter(e["trace.id"] for e in events)
    dupes = {t: n for t, n in per_trace.items() if n > 1}
    assert not dupes, f"{len(dupes)} request(s) stored more than once"
    assert set(answered) <= set(per_trace)
    # Loss accounting from event.id: each instance's numbers run 1..max with no gap.
    numbers: dict[str, list[int]] = {}
    for e in store_events(data):
        inst, _, n = e.get("event.id", "").rpartition(":")
        if inst:
            numbers.setdefault(inst, []).append(int(n))
    for inst, ns in numbers.items():
        assert sorted(ns) == list(range(1, max(ns) + 1)), f"{inst}: missing numbers"
    assert {i.split("-")[0] for i in numbers} == {"gateway", "goods", "members", "purchases"}


def test_spool_survives_restart_of_the_shipper(procs, tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: every event goes to the spool
    spool = tmp_path / "spool"
    script = str(Path(__file__).parent / "scripts" / "spool_shipper.py")
    first = procs.start_script("shipper", [sys.executable, script, str(port), str(spool), "500"])
    first.wait_line(r"spooled 500 acked 0")
    first.kill9()                                    # the shipping service dies with 500 spooled
    data = tmp_path / "logs"
    procs.logs(data, port=port)
    again = procs.start_script("shipper2", [sys.executable, script, str(port), str(spool), "0"])
    again.wait_line(r"acked 500", timeout=20)

    def stored():
        evs = [e for e in store_events(data) if e.get("url.path") == "/spool"]
        return evs if len(evs) >= 500 else None

    events = wait_for(stored, 10, "the spooled events in the store")
    assert sorted(e["params"]["i"] for e in events) == list(range(500))
    assert len({e["event.id"] for e in events}) == 500
