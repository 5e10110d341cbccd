"""An idle logs worker does not load DuckDB (issue 18: an idle worker under 60 MB RSS, and the
duckdb module alone is ~25 MB of it): nothing imports it before a question needs it, and the
health monitor does not read the store while nothing was written for the last minutes.
bench/idle_memory.py measures the memory itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from logmesh.logs import health_monitor
from logmesh.logs.health_monitor import written_since
from logmesh.logs.store import layout
from logmesh.logs.store.compact import Compactor
from logmesh.protocol import Node
from tests.support.logs import HOST
from tests.support.store import FakeClock, event, write_store
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def age(data_dir: Path, seconds: float) -> None:
    """Set every file's times ``seconds`` back: a store written that long ago."""
    when = time.time() - seconds
    for path in data_dir.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


def test_the_servers_modules_do_not_import_duckdb():
    code = ("import sys, logmesh.cli, logmesh.logs.server, logmesh.logs.query.service; "
            "from logmesh.logs.store.duck import loaded; print(loaded(), 'duckdb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_the_lazy_module_is_duckdb_once_used():
    code = ("from logmesh.logs.store.duck import duckdb, loaded; import sys; before = loaded(); "
            "con = duckdb.connect(); assert con.execute('SELECT 41 + 1').fetchone() == (42,); "
            "assert duckdb.Error is sys.modules['duckdb'].Error; print(before, loaded())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.split() == ["False", "True"], out.stderr


async def test_written_since_sees_segments_and_parquet_files(tmp_path: Path):
    data = tmp_path / "data"
    writer = await write_store(data, [[event(1_000)], [event(2_000)]])
    await writer.close()
    assert written_since(data, time.time() - 60)
    age(data, 600)
    assert not written_since(data, time.time() - 60)
    os.utime(sorted((data / layout.SEGMENTS_DIR).glob("*.ndjson"))[-1])  # one segment written now
    assert written_since(data, time.time() - 60)
    age(data, 600)
    Compactor(data, grace=0).run_once()  # a Parquet file written now holds events of the store
    assert list((data / layout.PARQUET_DIR).glob("*.parquet"))
    assert not list((data / layout.SEGMENTS_DIR).glob("*.ndjson"))
    assert written_since(data, time.time() - 60)
    age(data, 600)
    assert not written_since(data, time.time() - 60)

async def test_an_idle_worker_0_opens_no_duckdb_until_events_arrive(start_logs, tmp_path: Path,
                                                                    monkeypatch):
    """Worker 0 with compaction on and the health monitor asking every 50 ms, over a store
    written an hour ago: neither the engine nor the compactor opens DuckDB. Once the gateway's
    answers arrive the monitor reads them from its counts (logs/gateway_counts.py), and asks
    the store only for the routes' norms over the hour before, which the counts did not see."""
    data = tmp_path / "data"
    writer = await write_store(data, [[event(FakeClock().ms)], [event(FakeClock().ms + 1)]])
    await writer.close()
    Compactor(data, grace=0).run_once()
    age(data, 3600)
    monkeypatch.setattr(health_monitor, "TIMEOUTS_EVERY_SECONDS", 0.05)
    server = await start_logs(data_dir=data)
    counts = server.instance_health.counts
    asks: list[int] = []
    by_address = counts.by_address

    def counted(now: int) -> list:
        asks.append(now)
        return by_address(now)

    counts.by_address = counted
    # the distributor lists a node the gateway's answers could judge (with none, nothing is
    # asked: test_health_ingest)
    listed = [Node("goods", "127.0.0.1", 9010, ("GET/goods",))]
    server.instance_health.nodes = lambda: listed
    await wait_until(lambda: len(asks) >= 5, timeout=10)
    assert server.query.engine._db is None
    assert server.query.compactor is not None and server.query.compactor._con is None

    now = int(time.time() * 1000)
    access = {"@timestamp": now - 1_000, "service.name": "gateway", "http.request.method": "GET",
              "url.path": "/goods", "http.response.status_code": 504, "message": "GET /goods 504",
              "labels": {"upstream": "goods", "upstream.address": "127.0.0.1:9010"}}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://{HOST}:{server.config.http_port}/api/v1/logs", json=[access]) as r:
            assert r.status == 200, await r.text()
    await wait_until(lambda: server.instance_health.timeouts == {"127.0.0.1:9010": 1}, timeout=10)
    await wait_until(lambda: server.query.engine._db is not None, timeout=10,
                     what="the norms asked of the store: it holds the hour before the start")

