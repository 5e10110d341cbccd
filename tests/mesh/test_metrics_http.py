"""Each service's and the gateway's /metrics show requests and their shipper's counters."""

from __future__ import annotations

import aiohttp

from logmesh.mesh.metrics_http import MetricsEndpoint
from logmesh.mesh.service import Service
from logmesh.shipping.shipper import Shipper


async def test_service_metrics_show_the_shipper() -> None:
    svc = Service("goods", 0, {"GET/goods": lambda params, packet: []}, distributor=None)
    shipper = Shipper("goods", logs_addr=("127.0.0.1", 9))  # nothing listens: events stay queued
    shipper.attach(svc)
    svc.metrics = MetricsEndpoint("127.0.0.1", 0, svc.collect_metrics)
    await svc.start()
    try:
        for _ in range(3):
            shipper.ship(b'{"uri":"/goods","method":"GET","params":{}}')
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{svc.metrics.port}/metrics") as r:
                assert r.status == 200
                text = await r.text()
    finally:
        await svc.stop()
    assert 'logmesh_shipper_shipped_events_total{service="goods"} 3' in text
    assert 'logmesh_shipper_queued_events{service="goods"} 3' in text
    assert 'logmesh_shipper_dropped_events_total{service="goods"} 0' in text
    assert 'logmesh_service_requests_total{service="goods"} 0' in text
    assert "# TYPE logmesh_shipper_acked_events_total counter" in text
