"""``logmesh tail -f`` as a real process: its columns line up across events that arrive one by
one, and Ctrl-C ends it quietly with exit 0 (issue 15 item 10)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import aiohttp

from tests.support.logs import HOST

EVENTS = [
    {"message": "first", "service.name": "a", "log.level": "info", "http.request.method": "GET",
     "url.path": "/x", "http.response.status_code": 200},
    {"message": "second one", "service.name": "members-long", "log.level": "warning",
     "http.request.method": "DELETE", "url.path": "/purchases/long/path",
     "http.response.status_code": 404},
]
LATER = [
    {"message": "third", "service.name": "goods", "log.level": "error",
     "http.request.method": "POST", "url.path": "/goods", "http.response.status_code": 503},
    {"message": "fourth", "service.name": "pay", "log.level": "debug",
     "http.request.method": "PUT", "url.path": "/p", "http.response.status_code": 201},
]
FIELDS = [("SERVICE", "service.name"), ("LEVEL", "log.level"), ("METHOD", "http.request.method"),
          ("PATH", "url.path"), ("MESSAGE", "message")]


async def post(url: str, events: list[dict]) -> None:
    async with aiohttp.ClientSession() as s:
        for ev in events:  # one request each: the tail sees them one by one
            async with s.post(f"{url}/api/v1/logs", data=json.dumps(ev)) as r:
                assert r.status == 200


async def read_lines(stream: asyncio.StreamReader, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    lines = []
    while len(lines) < n:
        line = await asyncio.wait_for(stream.readline(), max(0.1, deadline - time.monotonic()))
        assert line, f"tail ended early after {lines}"
        lines.append(line.decode().rstrip("\n"))
    return lines


async def test_tail_follow_aligns_columns_and_ends_quietly_on_ctrl_c(start_logs):
    server = await start_logs()
    url = f"http://{HOST}:{server.config.http_port}"
    await post(url, EVENTS)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "logmesh", "tail", "-f", "-n", "5", "--url", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        # a terminal's Ctrl-C reaches a process whose SIGINT is not ignored, whatever the
        # process running the tests was left with
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = await read_lines(proc.stdout, 1 + len(EVENTS))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        await post(url, LATER)
        lines += await read_lines(proc.stdout, len(LATER))  # type: ignore[arg-type]
        header, rows = lines[0], lines[1:]
        for (name, field) in FIELDS:
            col = header.index(name)
            for row, ev in zip(rows, EVENTS + LATER, strict=True):
                assert row[col:].startswith(str(ev[field])), (name, header, row)
                assert row[col - 2:col] == "  ", (name, header, row)
        end = header.index("STATUS") + len("STATUS")  # numbers line up on the right
        for row, ev in zip(rows, EVENTS + LATER, strict=True):
            assert row[:end].endswith(str(ev["http.response.status_code"])), (header, row)

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        # read both pipes while it ends: a child blocked on a full pipe would never exit
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 20)
        err = err_bytes.decode()
        assert proc.returncode == 0, err
        assert "Aborted" not in err and "Traceback" not in err, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
