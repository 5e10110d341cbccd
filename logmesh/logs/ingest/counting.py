"""Per-protocol counts of the socket ports: events stored, and input refused by reason.

``logmesh_ingest_events_total{worker,protocol}`` lives here; what is refused
goes to the one per-protocol rejection counter of every foreign protocol,
``logmesh_ingest_rejected_total{worker,protocol,reason}`` (HttpSources.count
in http_routes.py), handed in as ``rejected``. Children are made once per
label set and kept, so the hot path pays one ``inc`` per read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...metrics import Metrics


class ProtocolCounters:
    def __init__(self, metrics: Metrics, worker: str,
                 rejected: Callable[[str, dict[str, int]], None]) -> None:
        self.worker = worker
        self.rejected = rejected
        self._events = metrics.counter("logmesh_ingest_events_total",
                                       "Events stored from the socket ports, by protocol.",
                                       ["worker", "protocol"])
        self._children: dict[str, Any] = {}

    def events(self, protocol: str, n: int) -> None:
        child = self._children.get(protocol)
        if child is None:
            child = self._children[protocol] = self._events.labels(self.worker, protocol)
        child.inc(n)

    def error(self, protocol: str, reason: str, n: int = 1) -> None:
        self.rejected(protocol, {reason: n})
