"""``logmesh query``, ``tail`` and ``stats`` against a real logs service."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aiohttp
import pytest
from click.testing import CliRunner

from logmesh.cli import cli
from logmesh.cli_client import format_table
from tests.support.logs import HOST, wait_until


@pytest.fixture
async def served(start_logs):
    """A logs service holding 12 events, and its base URL."""
    server = await start_logs()
    base = f"http://{HOST}:{server.config.http_port}"
    events = [{"message": f"order {i} placed" if i % 2 else f"POST /goods {i}", "service.name": ["goods", "members"][i % 2],
               "http.request.method": "POST" if i % 3 else "GET", "url.path": "/goods",
               "http.response.status_code": 500 if i == 4 else 200, "log.level": "error" if i == 4 else "info"}
              for i in range(12)]
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data="\n".join(json.dumps(e) for e in events)) as r:
            assert r.status == 200
    return server, base


@pytest.fixture
def url(served):
    return served[1]


async def run(*args: str):
    runner = CliRunner()
    return await asyncio.get_running_loop().run_in_executor(None, lambda: runner.invoke(cli, list(args)))


async def test_query_table_and_json(url):
    r = await run("query", "service.name:goods AND POST", "--since", "1h", "--url", url)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "SERVICE", "LEVEL"] and len(lines) == 1 + 6
    assert all("goods" in line and "POST" in line for line in lines[1:])
    starts = {line.index("goods") for line in lines[1:]}
    assert len(starts) == 1  # aligned
    r = await run("query", "--json", "-n", "3", "--url", url)
    assert r.exit_code == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3 and all("seq" in e for e in rows)


async def test_query_prints_events_whole_unless_asked_brief(served):
    """The search answers brief when asked (the web UI's list); the CLI keeps the whole event
    by default, as a pipe into jq expects, and ``--brief`` asks for the cut rows."""
    server, base = served
    long = "L" * 5000
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/logs", data=json.dumps({"message": f"lengthy {long}"})) as r:
            assert r.status == 200
    r = await run("query", "lengthy", "--json", "--url", base)
    assert r.exit_code == 0, r.output
    [whole] = [json.loads(line) for line in r.stdout.splitlines()]
    assert whole["message"] == f"lengthy {long}" and "cut" not in whole
    r = await run("query", "lengthy", "--json", "--brief", "--url", base)
    assert r.exit_code == 0, r.output
    [brief] = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(brief["message"]) == 300 and brief["cut"] == {"message": len(whole["message"])}


async def test_query_errors_say_what_to_do(url):
    r = await run("query", "service.name:(goods", "--url", url)
    assert r.exit_code == 2 and "expected" in r.output and "^" in r.output
    r = await run("query", "x", "--url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "cannot reach the logs service" in r.output and "logmesh logs" in r.output


async def test_stats_and_tail(url):
    r = await run("stats", "--url", url)
    assert r.exit_code == 0, r.output
    assert "12" in r.stdout and "goods" in r.stdout and "members" in r.stdout
    r = await run("stats", "--json", "--url", url)
    assert json.loads(r.stdout)["events"] == 12
    r = await run("tail", "-n", "3", "--url", url)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4
    r = await run("tail", "log.level:error", "-n", "5", "--json", "--url", url)
    assert [json.loads(line)["log.level"] for line in r.stdout.splitlines()] == ["error"]


async def test_tail_follow_prints_new_events(served):
    server, url = served
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "logmesh", "tail", "-f", "-n", "0", "--json", "shipped", "--url", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        await wait_until(lambda: server.api.tails or proc.returncode is not None, 15,
                         "the interpreter started and the stream opened")
        assert proc.returncode is None, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as s:
            await s.post(f"{url}/api/v1/logs", data=json.dumps({"message": "order shipped"}))
        line = await asyncio.wait_for(proc.stdout.readline(), 10)  # type: ignore[union-attr]
        assert json.loads(line)["message"] == "order shipped"
    finally:
        proc.terminate()
        await proc.wait()


def test_table_has_no_colour_codes_unless_asked():
    ev = {"@timestamp": 1_795_626_000_000, "service.name": "goods", "log.level": "error",
          "http.response.status_code": 503, "message": "x" * 300}
    plain = format_table([ev], colour=False, width=100)
    assert "\x1b[" not in "".join(plain) and all(len(line) <= 100 for line in plain)
    coloured = format_table([ev], colour=True, width=100)
    assert "\x1b[31m" in coloured[1]  # error and 5xx in red
