"""Each sink's numbers as one row: what ``/api/v1/stats``, ``logmesh stats`` and the UI show.

Read back from the metrics registry, not from the sink objects: with
``--workers N`` a request reaches one worker, and the registry's merged view
(metrics.py, multiprocess mode) holds every worker's counters and the lag
gauges each one last published.
"""

from __future__ import annotations

from typing import Any

from ...metrics import Metrics, number

PREFIX = "logmesh_sink_"
COLUMNS = {  # sample name -> row key
    "logmesh_sink_lag_events": "lag_events",
    "logmesh_sink_lag_seconds": "lag_seconds",
    "logmesh_sink_sent_events_total": "sent",
    "logmesh_sink_deadlettered_total": "deadlettered",
    "logmesh_sink_retries_total": "retries",
    "logmesh_sink_errors_total": "errors",
}


def sink_rows(metrics: Metrics) -> list[dict[str, Any]]:
    """``[{"sink", "worker", "lag_events", "lag_seconds", "sent", ...}]``, by sink then worker."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for family in metrics.collect():
        if not family.name.startswith(PREFIX):
            continue
        for sample in family.samples:
            key = COLUMNS.get(sample.name)
            sink, worker = sample.labels.get("sink"), sample.labels.get("worker")
            if key is None or sink is None or worker is None:
                continue
            row = rows.setdefault((sink, worker), {"sink": sink, "worker": int(worker)})
            row[key] = row.get(key, 0) + number(sample.value)
    return [{"lag_events": 0, "lag_seconds": 0, **row}
            for _, row in sorted(rows.items(), key=lambda kv: (kv[0][0], int(kv[0][1])))]
