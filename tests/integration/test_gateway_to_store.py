"""Issue #4, acceptance 1: every request through the gateway is stored exactly once.

Real processes on free ports: distributor, logs, goods, members, purchases,
gateway. 1,000 requests (POST/GET/DELETE on the three resources, some with
``¶`` and multi-byte text in their data) go through the gateway; each must
appear once in the store, found by its ``trace.id`` (the gateway's
``X-Request-Id``), with the right service name, method, uri and params.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import aiohttp
import pytest

from tests.support.procs import HOST, store_events

pytestmark = pytest.mark.slow  # real processes

N_REQUESTS = 1000
CONCURRENCY = 16
SERVICES = ("goods", "members", "purchases")


def make_request(i: int) -> tuple[str, str, dict]:
    """(service, method, params) of request ``i``: every service and method, mixed."""
    service = SERVICES[i % 3]
    method = ("POST", "GET", "DELETE")[(i // 3) % 3]
    if method == "POST":
        params = {
            "goods": {"name": f"상품¶{i}", "category": "book", "price": i},
            "members": {"username": f"user{i}", "email": f"u{i}@example.com"},
            "purchases": {"userid": i, "goodsid": i + 1, "quantity": 1},
        }[service]
    else:
        params = {"id": str(i)}  # query strings arrive as strings
    return service, method, params


async def send_all(gateway_port: int, run: str) -> dict[str, tuple[str, str, dict]]:
    sent: dict[str, tuple[str, str, dict]] = {}
    sem = asyncio.Semaphore(CONCURRENCY)
    base = f"http://{HOST}:{gateway_port}"

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        service, method, params = make_request(i)
        trace = f"{run}-{i:04d}"
        kwargs: dict = {"headers": {"X-Request-Id": trace}}
        if method == "POST":
            kwargs["json"] = params
        else:
            kwargs["params"] = params
        async with sem:
            async with session.request(method, f"{base}/{service}", **kwargs) as resp:
                body = await resp.json()
                assert resp.status == 200, (i, resp.status, body)
                assert resp.headers["X-Request-Id"] == trace
                assert body["errorcode"] in (0, 400), body  # a DELETE of a missing id is still a request
        sent[trace] = (service, method, params)

    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session, i) for i in range(N_REQUESTS)))
    return sent


async def wait_routes(gateway_port: int, timeout: float = 20.0) -> None:
    """Until the gateway routes GET on all three resources (warm-up requests carry their own ids)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for service in SERVICES:
            while True:
                try:
                    async with session.get(f"http://{HOST}:{gateway_port}/{service}",
                                           headers={"X-Request-Id": f"warmup-{uuid.uuid4().hex}"}) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, f"gateway does not route GET /{service}"
                await asyncio.sleep(0.1)


def test_1000_requests_through_the_gateway_are_each_stored_once(procs, tmp_path):
    logs_dir = tmp_path / "logs-data"
    svc_dir = tmp_path / "svc-data"
    _, dist = procs.distributor()
    procs.logs(logs_dir, distributor=dist)
    for name in SERVICES:
        procs.service(name, dist, svc_dir)
    _, gw = procs.gateway(dist)

    run = uuid.uuid4().hex[:8]
    asyncio.run(wait_routes(gw))
    t0 = time.monotonic()
    sent = asyncio.run(send_all(gw, run))
    assert len(sent) == N_REQUESTS
    took = time.monotonic() - t0

    def ours() -> list[dict]:
        """The request events the services shipped (the gateway's own access records aside)."""
        return [e for e in store_events(logs_dir) if str(e.get("trace.id", "")).startswith(run)
                and e.get("service.name") != "gateway"]

    deadline = time.monotonic() + 20
    events = ours()
    while len({e["trace.id"] for e in events}) < N_REQUESTS and time.monotonic() < deadline:
        time.sleep(0.2)
        events = ours()
    time.sleep(0.5)  # a late duplicate (a resent batch) would show up now
    events = ours()

    counts = Counter(e["trace.id"] for e in events)
    missing = sorted(set(sent) - set(counts))
    assert not missing, f"{len(missing)} request(s) not stored, e.g. {missing[:5]}"
    dupes = {t: n for t, n in counts.items() if n != 1}
    assert not dupes, f"stored more than once: {list(dupes.items())[:5]}"
    assert set(counts) == set(sent)

    for event in events:
        service, method, params = sent[event["trace.id"]]
        where = f"{event['trace.id']}: {event}"
        assert event["service.name"] == service, where
        assert event["http.request.method"] == method, where
        assert event["url.path"] == f"/{service}", where
        stored = dict(event["params"])
        assert isinstance(stored.pop("key"), int), where  # the gateway's correlation key
        assert stored == params, where
        assert event["event.id"].startswith(f"{service}-"), where  # shipped by that service's shipper
        assert event["message"].startswith("{"), where  # the request packet, verbatim
    print(f"{N_REQUESTS} requests in {took:.2f}s; all stored once")
