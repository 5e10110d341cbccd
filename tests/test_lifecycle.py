"""Serving.serve_forever: started, the heap of startup frozen, stopped when cancelled."""

from __future__ import annotations

import asyncio
import gc

from logmesh.lifecycle import Serving


class Recorded(Serving):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()

    async def start(self) -> None:
        self.events.append("start")
        self.started.set()

    async def stop(self) -> None:
        self.events.append("stop")


async def test_serve_forever_freezes_the_startup_heap_and_stops_when_cancelled() -> None:
    # The mesh's parts (gateway, services, distributor) run serve_forever in their own process:
    # a full collection under load walked startup's whole heap (bench/notes/mesh.md).
    gc.unfreeze()
    server = Recorded()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        await asyncio.wait_for(server.started.wait(), 30)
        for _ in range(100):  # serve_forever freezes right after start returns
            if gc.get_freeze_count() > 0:
                break
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert server.events == ["start", "stop"]
    finally:
        gc.unfreeze()  # the test process's objects are the collector's again


class Batched(Recorded):
    young_collection_threshold = 9_000


async def test_serve_forever_sets_the_young_threshold_a_server_names() -> None:
    # The gateway's access logs live until their batch is acknowledged: its young collections
    # come at a threshold above the batch (mesh/gateway.py). Others keep CPython's.
    before = gc.get_threshold()
    server = Batched()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        await asyncio.wait_for(server.started.wait(), 30)
        for _ in range(100):
            if gc.get_threshold()[0] == 9_000:
                break
            await asyncio.sleep(0.01)
        assert gc.get_threshold() == (9_000, *before[1:])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_the_gateway_names_a_young_threshold_above_its_batches() -> None:
    from logmesh.mesh.gateway import Gateway
    from logmesh.shipping.shipper import DEFAULT_BATCH_EVENTS

    assert Gateway.young_collection_threshold is not None
    assert Gateway.young_collection_threshold > 2 * DEFAULT_BATCH_EVENTS
    assert Recorded.young_collection_threshold is None
