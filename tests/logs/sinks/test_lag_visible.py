"""How far a sink is behind, where an operator looks: /api/v1/stats, /api/v1/mesh, ``logmesh stats``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson

from tests.logs.sinks.fake_es import FakeElasticsearch
from tests.logs.sinks.procs import ROOT, logs_process, metric
from tests.logs.web.conftest import BROWSER, CHROMIUM, CHROMIUM_ARGS


async def get(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url) as resp:
        assert resp.status == 200
        return await resp.json()


async def poll(check, what: str, timeout: float = 10.0):
    """tests/support/waiting.py's wait_until, for a check that awaits (an HTTP request)."""
    for _ in range(int(timeout / 0.05)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@asynccontextmanager
async def held_sink(tmp_path, events: int) -> AsyncIterator[tuple[FakeElasticsearch, str]]:
    """A logs service whose cluster takes the first bulk and does not answer it yet
    (``fake.hold``), with ``events`` events posted: (the fake, the service's URL)."""
    fake = await FakeElasticsearch().start()
    fake.hold = asyncio.Event()
    proc = logs_process(tmp_path / "data", fake.url, tmp_path / "logs.log")
    try:
        url = await proc.start()
        body = b"\n".join(orjson.dumps({"message": f"m {i}", "service.name": "goods"})
                          for i in range(events))
        async with aiohttp.ClientSession() as http, http.post(f"{url}/api/v1/logs", data=body) as resp:
            assert resp.status == 200
        yield fake, url
    finally:
        await proc.stop()
        await fake.stop()


def logmesh_stats(url: str) -> str:
    out = subprocess.run([sys.executable, "-m", "logmesh", "stats", "--url", url], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_lag_in_stats_mesh_and_the_cli(tmp_path):
    async with held_sink(tmp_path, 500) as (fake, url), aiohttp.ClientSession() as http:
        await asyncio.sleep(0.3)  # the event waits at least this long

        async def behind() -> list[dict]:
            rows = (await get(http, f"{url}/api/v1/stats"))["sinks"]
            return rows if rows and rows[0]["lag_events"] == 500 else []

        row = (await poll(behind, "the sink's lag to show 500 events"))[0]
        assert row["sink"] == "elasticsearch" and row["worker"] == 0
        assert row["lag_seconds"] >= 0.3 and row["sent"] == 0
        assert (await get(http, f"{url}/api/v1/mesh"))["sinks"][0]["lag_events"] == 500
        async with http.get(f"{url}/metrics") as resp:
            assert metric(await resp.text(), "logmesh_sink_lag_events") == 500
        text = await asyncio.to_thread(logmesh_stats, url)
        line = next(ln for ln in text.splitlines() if ln.startswith("elasticsearch-w00"))
        assert line.split()[1] == "500", text  # BEHIND

        fake.hold.set()  # the cluster answers: the sink catches up, the lag goes to 0
        fake.hold = None

        async def caught_up() -> bool:
            rows = (await get(http, f"{url}/api/v1/stats"))["sinks"]
            return rows[0]["lag_events"] == 0 and rows[0]["sent"] == 500

        await poll(caught_up, "the lag to go to 0")
        text = await asyncio.to_thread(logmesh_stats, url)
        line = next(ln for ln in text.splitlines() if ln.startswith("elasticsearch-w00"))
        assert line.split()[1:4] == ["0", "0.0", "500"], text


@BROWSER[0]  # marked and skipped without chromium like the web UI's tests
@BROWSER[1]
async def test_lag_in_the_mesh_view(tmp_path):
    from playwright.async_api import async_playwright, expect

    async with held_sink(tmp_path, 300) as (fake, url):
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{url}/?view=mesh")
                line = page.locator('#mesh-sinks [data-sink="elasticsearch-w0"]')
                await expect(line).to_contain_text("300 events", timeout=10_000)
                await expect(line).to_contain_text("s behind")
                fake.hold.set()  # the cluster answers
                fake.hold = None
                await asyncio.sleep(1.0)
                await page.reload()
                await expect(page.locator('#mesh-sinks [data-sink="elasticsearch-w0"]')).to_contain_text(
                    "up to date", timeout=10_000)
                assert not errors, errors
            finally:
                await browser.close()
