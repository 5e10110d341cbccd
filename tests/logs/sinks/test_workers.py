"""``logmesh logs --workers 2 --elasticsearch``: each worker sends its own events, once."""

from __future__ import annotations

import asyncio
import re
import socket

import aiohttp
import orjson

from logmesh.logs.sinks.cursor import cursor_path
from tests.logs.sinks.fake_es import HOST, FakeElasticsearch
from tests.logs.sinks.helpers import wait_until
from tests.logs.sinks.procs import LOGS_LISTENING, Process, logs_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def test_two_workers_each_forward_their_own_segments(tmp_path):
    fake = await FakeElasticsearch().start()
    data = tmp_path / "data"
    tcp, http_port = free_port(), free_port()
    proc: Process = logs_process(data, fake.url, tmp_path / "logs.log", "--workers", "2")
    proc.argv = [a for a in proc.argv if a != "--no-supervise"]  # the supervisor starts the workers
    i = proc.argv.index("--port")
    proc.argv[i + 1] = str(tcp)
    proc.argv[proc.argv.index("--http-port") + 1] = str(http_port)
    total = 40 * 100
    try:
        url = await proc.start()
        await wait_until(lambda: len(re.findall(LOGS_LISTENING, proc.log_path.read_bytes())) == 2,
                         timeout=60, what="both workers listening")  # two cold starts at load 16: over 5 s
        # a new connection per request, so SO_REUSEPORT spreads them over both workers
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for r in range(40):
                body = b"\n".join(orjson.dumps({"message": f"m {r}-{i}", "service.name": "goods"})
                                  for i in range(100))
                async with http.post(f"{url}/api/v1/logs", data=body) as resp:
                    assert resp.status == 200
        await wait_until(lambda: len(fake.docs) == total, timeout=60, what="all events in ES")
        await asyncio.sleep(0.3)  # cursors land just after the answers
    finally:
        assert await proc.stop() == 0, proc.tail()
        await fake.stop()
    assert set(fake.created.values()) == {1} and fake.conflicts == 0
    sent = [orjson.loads(cursor_path(data, f"elasticsearch-w{w:02d}").read_bytes())["sent"]
            for w in (0, 1)]
    assert sum(sent) == total and all(sent), sent  # both workers took some, none sent another's
