"""A flood against a real logs process (issue #9), bounded and on loopback only.

2,000 connections at once -- garbage, packets dribbled a byte at a time, and
packets over --max-packet-size -- while a normal shipper keeps sending. The
shipper's events all arrive, exactly once; the service stays up; its peak RSS
(VmHWM) stays under RSS_BOUND.

Why the bound holds: at most --max-connections (1024) connections are kept,
unfinished packets across them are capped by --max-buffered (64 MiB; the oldest
are cut first), a packet over --max-packet-size is skipped, not held, and one
dribbled too slowly is cut after --header-timeout.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import time
from collections import Counter

import aiohttp
import pytest

from logmesh.shipping.shipper import Shipper
from tests.support.logs import request_text
from tests.support.procs import HOST, Procs, store_events

pytestmark = pytest.mark.slow

CONNECTIONS = 2000
FLOOD_SECONDS = 12.0
MiB = 1024 * 1024
HEADER_TIMEOUT = 4.0  # shorter than the default 15 s, so slowloris cleanup shows within the test
# Measured on a 2-core runner: 84 MiB at rest, VmHWM 180-187 MiB through the flood. With
# --max-buffered 4GiB --max-connections 4096 the same flood peaks at ~390 MiB (and the normal
# shipper gets a fifth as many events through), so the bound tells the limits' work apart.
RSS_BOUND = 256 * MiB
DELIM = "¶".encode()


def rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid``, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    return out


async def _connect(port: int, deadline: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    while time.monotonic() < deadline:
        try:
            return await asyncio.wait_for(asyncio.open_connection(HOST, port), 3)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.2)
    return None


async def _attacker(kind: str, port: int, deadline: float, tally: Counter) -> None:
    rng = random.Random()
    conn = await _connect(port, deadline)
    if conn is None:
        tally["never_connected"] += 1
        return
    tally["connected"] += 1
    _, writer = conn
    try:
        while time.monotonic() < deadline:
            if kind == "garbage":  # random bytes, now and then a delimiter, bad UTF-8 and JSON
                chunk = bytearray(os.urandom(rng.randint(1, 32 * 1024)))
                if rng.random() < 0.5:
                    chunk[rng.randrange(len(chunk)):] = DELIM
                writer.write(bytes(chunk))
                await asyncio.sleep(rng.uniform(0.05, 0.5))
            elif kind == "slow":  # a packet dribbled one byte at a time, never finished
                writer.write(b"{" if rng.random() < 0.1 else b'"')
                await asyncio.sleep(0.5)
            else:  # "oversized": packets over --max-packet-size (1 MiB), then a delimiter
                writer.write(b'{"uri":"/logs","params":"' + b"A" * (MiB + 4096) + b'"}' + DELIM)
                await asyncio.sleep(rng.uniform(1.0, 3.0))
            await writer.drain()
        tally["survived"] += 1
    except (ConnectionError, OSError):
        tally["cut"] += 1
    finally:
        writer.close()


async def _normal_shipper(port: int, seconds: float) -> Shipper:
    shipper = Shipper("goods", logs_addr=(HOST, port))
    shipper.start()
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        for _ in range(50):
            i += 1
            shipper.ship(request_text(i, "flood").encode())
        await asyncio.sleep(0.05)
    await shipper.close(timeout=20)
    return shipper


def test_flood_of_hostile_connections(tmp_path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * CONNECTIONS + 1024  # our ends, the server's ends, and some room
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))  # the child inherits it
    procs = Procs(tmp_path)
    try:
        data = tmp_path / "data"
        proc, port, http_port = procs.logs(data, "--no-compact",
                                           "--header-timeout", str(HEADER_TIMEOUT))
        before = rss(proc.pid)

        async def scenario() -> tuple[Shipper, Counter, int]:
            tally: Counter = Counter()
            shipping = asyncio.ensure_future(_normal_shipper(port, FLOOD_SECONDS))
            await asyncio.sleep(0.5)  # the shipper is connected before the flood begins
            deadline = time.monotonic() + FLOOD_SECONDS
            kinds = ["garbage"] * 800 + ["slow"] * 800 + ["oversized"] * 400
            attackers = [asyncio.ensure_future(_attacker(k, port, deadline, tally)) for k in kinds]
            peak = 0
            while not shipping.done():
                peak = max(peak, rss(proc.pid)["VmRSS"])
                await asyncio.sleep(0.25)
            await asyncio.gather(*attackers)
            return shipping.result(), tally, peak

        shipper, tally, peak_seen = asyncio.run(scenario())
        after = rss(proc.pid)
        assert proc.popen.poll() is None, "the logs service died:\n" + proc.log_text()[-3000:]

        async def health() -> tuple[int, str]:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{HOST}:{http_port}/healthz") as r:
                    h = r.status
                async with http.get(f"http://{HOST}:{http_port}/metrics") as r:
                    return h, await r.text()

        status, metrics = asyncio.run(health())
        assert status == 200
        report = (f"RSS before {before['VmRSS'] / MiB:.0f} MiB, peak seen {peak_seen / MiB:.0f} "
                  f"MiB, VmHWM {after['VmHWM'] / MiB:.0f} MiB (bound {RSS_BOUND / MiB:.0f} MiB); "
                  f"attackers {dict(tally)}; shipper {shipper.stats}; limits: "
                  + ", ".join(line.split("{")[1] for line in metrics.splitlines()
                              if line.startswith(("logmesh_connection_limits_total{",
                                                  "logmesh_bad_frames_total{"))))
        print(report)
        # Every event of the normal shipper arrived, once.
        assert shipper.stats["acked"] == shipper.stats["shipped"] > 0, report
        ids = Counter(e["event.id"] for e in store_events(data)
                      if str(e.get("event.id", "")).startswith(shipper.instance + ":"))
        assert len(ids) == shipper.stats["shipped"] and max(ids.values()) == 1, report
        # The limits did the work, and said so.
        for reason in ("refused_connections", "header_timeouts"):
            assert f'reason="{reason}"' in metrics, reason
        assert tally["connected"] + tally["never_connected"] == CONNECTIONS
        assert after["VmHWM"] < RSS_BOUND, report
    finally:
        procs.close()
