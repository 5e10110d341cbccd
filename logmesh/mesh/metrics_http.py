"""``/metrics`` for the mesh's own processes (services, gateway): Prometheus text over HTTP.

The logs service has its HTTP port anyway; services speak only the book's TCP
protocol, so each gets a small HTTP listener of its own when ``--metrics-port``
is given, showing its requests (counters, and latency per route) and its
shipper (queued, spooled, sent, acked, dropped). ``collect(ex)`` fills a
``logmesh.metrics.Exposition``: the part's prometheus-client registry and the
shipper's numbers; prometheus-client renders it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..metrics import CONTENT_TYPE, Exposition, Metrics, number, value

log = logging.getLogger("logmesh.metrics")


class CountedPart:
    """What the gateway and the services share about their numbers: their counters, by key,
    in ``self.prom``, plus the access-log shipper's when one is attached."""

    prom: Metrics
    _counters: dict[str, Any]
    shipper: Any = None

    @property
    def stats(self) -> dict[str, int]:
        """The counts, read from the metrics."""
        return {key: number(value(c)) for key, c in self._counters.items()}

    def collect_metrics(self, ex: Exposition) -> None:
        """This part's metrics and its shipper's, for its /metrics page."""
        ex.include(self.prom)
        if self.shipper is not None:
            self.shipper.collect_metrics(ex)


class MetricsEndpoint:
    def __init__(self, host: str, port: int, collect: Callable[[Exposition], None], *,
                 reuse_port: bool = False) -> None:
        """``reuse_port``: every worker of a part serves the port (their metrics are shared)."""
        self.host, self.port = host, port
        self.reuse_port = reuse_port
        self.collect = collect
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        ex = Exposition()
        self.collect(ex)
        return web.Response(body=ex.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
