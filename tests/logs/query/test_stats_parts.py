"""``logmesh stats``: the parts it lists add up to the events it says (issue 17 item 5).

The report: stats said 3,844 events while the one live segment it listed held 3,706 lines
(and this run's shippers had sent 3,706), until a compaction. A segment a previous run sealed
more than 10 minutes before is read from its file per query (a cold segment: query/view.py)
until it is compacted; its events were in ``events`` but in none of the parts listed.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from click.testing import CliRunner

from logmesh.cli import cli
from logmesh.logs.query import view
from tests.support.logs import HOST


async def post(base: str, n: int, tag: str) -> None:
    body = "\n".join(json.dumps({"message": f"{tag} {i}", "service.name": "goods"}) for i in range(n))
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data=body) as r:
            assert (await r.json())["accepted"] == n


async def test_stats_lists_the_events_of_cold_segments_too(start_logs, monkeypatch):
    first = await start_logs(compact=False)
    await post(f"http://{HOST}:{first.config.http_port}", 138, "before")
    await first.stop()  # seals the segment; not compacted (the next run would, a little later)
    monkeypatch.setattr(view, "LIVE_SEALED_SECONDS", -1.0)  # sealed "more than 10 minutes ago"
    server = await start_logs(compact=False)
    base = f"http://{HOST}:{server.config.http_port}"
    await post(base, 3706 // 100, "after")

    def stats(*args: str):
        return CliRunner().invoke(cli, ["stats", *args, "--url", base])

    r = await asyncio.get_running_loop().run_in_executor(None, stats, "--json")
    st = json.loads(r.stdout)
    assert st["events"] == 138 + 37 and st["cold_events"] == 138 and st["live_events"] == 37
    r = await asyncio.get_running_loop().run_in_executor(None, stats)
    assert r.exit_code == 0, r.output
    assert "175" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("compacted"))
    assert "37 in 1 live segment(s)" in line and "138 in 1 sealed segment(s) waiting for compaction" in line, line
