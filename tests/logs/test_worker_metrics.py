"""``--workers N``: what one worker counts is on a sibling's ``/metrics`` at once (issue 16).

The connection guards, the HTTP site, the query engine, compaction, retention and the
store's segment writer kept their own dicts, which each worker wrote to the shared metric
files only once a second (and at its own scrapes): a sibling's scrape showed them up to a
second late, or not at all before the first write. They count in prometheus-client
counters of the worker's registry now, written to its files as they count. Two workers in
one process, as tests/test_metrics.py runs two registries; neither is started, so nothing
publishes.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from aiohttp.http_exceptions import BadHttpMessage

from logmesh.guard import Guarded
from logmesh.logs.server import LogsConfig, LogsServer
from logmesh.security_http import BadRequestLog
from tests.support.logs import HOST
from tests.support.store import HOUR, T0, event, write_store, written_at


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of ``name`` with exactly ``labels`` on a Prometheus text page (None: absent)."""
    for m in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        if dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == labels:
            return float(m.group(2))
    return None


def worker(data: Path, n: int, **kw: object) -> LogsServer:
    return LogsServer(LogsConfig(host=HOST, port=0, http_port=0, distributor=None, data_dir=data,
                                 workers=2, worker_id=n, **kw))  # type: ignore[arg-type]


async def test_a_workers_counts_are_on_its_siblings_page_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer = await write_store(data, [[event(T0 + h * HOUR + i) for i in range(20)] for h in range(3)])
    await writer.close()  # three sealed segments, stamped ~2026-11-25: compaction's work
    w0 = worker(data, 0, retention_ms=HOUR)
    w1 = worker(data, 1)
    try:
        # Worker 1: a refused hello, an unparsable HTTP request, a query.
        w1.guard.auth_failed(Guarded(), missing=True)
        BadRequestLog(logging.getLogger("test"), w1.http_counters.bad_requests).exception(
            "Error handling request", exc_info=BadHttpMessage("bad"))
        assert w1.query.engine.count(None, 0, T0 + 10 * HOUR) == 60
        # Worker 0: compaction and retention, in the compaction thread's code.
        compactor = w0.query.compactor
        assert compactor is not None
        compactor.grace = 0
        assert compactor.run_once() == 3
        written_at(data, T0)  # as the fake clock has it: retention ages the files too
        w0.query.retention.clock = lambda: (T0 + 100 * HOUR) / 1000
        assert len(w0.query.retention.run_once()) == 3

        page0 = w0.exposition().render()
        assert sample(page0, "logmesh_connection_limits_total", reason="auth_failures", worker="1") == 1
        assert sample(page0, "logmesh_connection_limits_total", reason="auth_failures", worker="0") == 0
        assert sample(page0, "logmesh_http_bad_requests_total", worker="1") == 1
        assert sample(page0, "logmesh_queries_total", worker="1") == w1.query.engine.counters["queries"] > 0
        page1 = w1.exposition().render()
        assert sample(page1, "logmesh_compacted_segments_total", worker="0") == 3
        assert sample(page1, "logmesh_compacted_events_total", worker="0") == 60
        assert sample(page1, "logmesh_retention_deleted_files_total", reason="age", worker="0") == 3
        assert sample(page1, "logmesh_retention_deleted_events_total", worker="0") == 60
        assert sample(page1, "logmesh_retention_deleted_files_total", reason="disk", worker="1") == 0

        # The reads that the stats API, the tests and the logs use are the same counts.
        assert w1.guard.stats["auth_failures"] == 1 and w1.http_counters.stats["bad_requests"] == 1
        assert compactor.stats["segments"] == 3 and compactor.stats["events"] == 60
        deleted = w0.query.retention.counters
        assert (deleted["files_age"], deleted["files_disk"], deleted["events"]) == (3, 0, 60)
        assert deleted["bytes"] == sample(page1, "logmesh_retention_deleted_bytes_total", worker="0") > 0
    finally:
        for w in (w0, w1):
            w.query.engine.close()
            w.prom.close()


async def test_a_workers_stored_events_are_on_its_siblings_page_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    w0 = worker(data, 0)
    w1 = worker(data, 1)
    try:
        # Worker 1's writer stores three requests' events (fsync per group), as ingest does.
        w1.writer.open()
        w1.writer.start()
        for n in (5, 7, 11):
            await w1.writer.durable(w1.writer.append_events([event(T0 + i) for i in range(n)]))
        stats = w1.writer.stats
        assert stats["events"] == 23 and stats["bytes"] > 0 and stats["fsyncs"] >= 1

        page0 = w0.exposition().render()  # worker 0 answers the scrape; worker 1 never published
        assert sample(page0, "logmesh_stored_events_total", worker="1") == 23
        assert sample(page0, "logmesh_stored_events_total", worker="0") == 0
        assert sample(page0, "logmesh_stored_bytes_total", worker="1") == stats["bytes"]
        assert sample(page0, "logmesh_fsyncs_total", worker="1") == stats["fsyncs"]
        assert sample(page0, "logmesh_fsync_seconds_total", worker="1") == stats["fsync_seconds_total"]
        assert "# TYPE logmesh_fsync_seconds_max gauge" in page0
        assert sample(page0, "logmesh_fsync_seconds_max", worker="1") == stats["fsync_seconds_max"] > 0
        assert sample(page0, "logmesh_store_write_errors_total", worker="1") == 0
        assert sample(page0, "logmesh_store_withdrawn_events_total", worker="1") == 0
        assert sample(page0, "logmesh_recovered_torn_bytes_total", worker="1") == 0

        # A stopped worker's maximum stays on the page, as its counters do (a gauge of now goes).
        await w1.writer.close()
        w1.prom.close()
        page0 = w0.exposition().render()
        assert sample(page0, "logmesh_stored_events_total", worker="1") == 23
        assert sample(page0, "logmesh_fsync_seconds_max", worker="1") == stats["fsync_seconds_max"]
    finally:
        for w in (w0, w1):
            await w.writer.close()
            w.query.engine.close()
            w.prom.close()
