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
