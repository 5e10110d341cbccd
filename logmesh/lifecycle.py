"""The one shape every server of the mesh has: ``start``, ``stop``, ``serve_forever``."""

from __future__ import annotations

import asyncio
import gc


def freeze_startup_heap() -> None:
    """Startup's objects (modules, libraries, the server's own) out of the collector's sight.
    Each full collection walked them all: in the logs service 130-330 ms of the event loop
    with book packets in and out to Elasticsearch (bench/notes/es_sink.md); in the mesh's
    gateway, whose shipper holds each access log for up to its linger, so that they live
    through young collections and bring on full ones, up to 74 ms under wrk at 64 connections
    (bench/notes/mesh.md). Frozen, a full collection walks what came after. The real process
    only (``serve_forever``): tests start many servers in one."""
    gc.collect()
    gc.freeze()


class Serving:
    """Subclasses implement ``start`` and ``stop``; the CLI runs ``serve_forever``.

    ``serve_forever`` returns only when cancelled (the CLI cancels it on
    SIGTERM/SIGINT), and always stops the server on the way out. It freezes the heap of
    startup once the server has started (:func:`freeze_startup_heap`), then sets the young
    generation's threshold to ``young_collection_threshold`` when a server names one.
    """

    # Net allocations of tracked objects between young collections (CPython's default: 700);
    # None keeps the default. A server whose live objects come and go in batches larger than
    # 700 (the gateway's access logs, held until their batch is acknowledged) sets it above
    # the batch, so that its young collections no longer walk them (mesh/gateway.py).
    young_collection_threshold: int | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def serve_forever(self) -> None:
        await self.start()
        freeze_startup_heap()
        if self.young_collection_threshold is not None:
            gc.set_threshold(self.young_collection_threshold, *gc.get_threshold()[1:])
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
