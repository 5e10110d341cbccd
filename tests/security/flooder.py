"""An idle connection flood, as its own process (``python -m tests.security.flooder``).

Opens ``count`` TCP connections to each given port, sends nothing and holds
them; with ``--reconnect SECONDS`` a connection the server closes is opened
again after that pause. Prints ``flooding: <port> <open> ...`` once every
connection was tried (or after ``RAMP`` seconds), then a line a second. Its own process, so the test that
measures the server's answers is not slowed by the flood's bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys

HOST = "127.0.0.1"
CONCURRENT_CONNECTS = 100  # under the listen backlogs (asyncio 100, aiohttp 128)
RAMP = 20.0  # seconds to open the flood, at most


def raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY
                                                    else min(want, hard), hard))


async def hold(port: int, gate: asyncio.Semaphore, reconnect: float | None,
               open_now: dict[int, int], first: asyncio.Event) -> None:
    while True:
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 3)
            except (OSError, TimeoutError):
                reader = writer = None
        first.set()
        if writer is not None:
            open_now[port] += 1
            try:
                await reader.read()  # until the server closes it
            except OSError:
                pass
            open_now[port] -= 1
            writer.close()
        if reconnect is None:
            await asyncio.Event().wait()  # stay down
        await asyncio.sleep(reconnect)


async def main(ports: list[int], count: int, reconnect: float | None) -> None:
    gate = asyncio.Semaphore(CONCURRENT_CONNECTS)
    open_now = dict.fromkeys(ports, 0)
    firsts, tasks = [], []  # the tasks are kept: a task nobody holds may be collected
    for port in ports:
        for _ in range(count):
            first = asyncio.Event()
            firsts.append(first)
            tasks.append(asyncio.ensure_future(hold(port, gate, reconnect, open_now, first)))
    try:  # a server that stops accepting must not stop the test: go on after RAMP seconds
        await asyncio.wait_for(asyncio.gather(*(f.wait() for f in firsts)), RAMP)
    except TimeoutError:
        pass
    while True:
        print("flooding:", " ".join(f"{p} {n}" for p, n in open_now.items()), flush=True)
        await asyncio.sleep(1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("count", type=int)
    ap.add_argument("ports", type=int, nargs="+")
    ap.add_argument("--reconnect", type=float, default=None)
    args = ap.parse_args()
    raise_nofile(len(args.ports) * args.count + 256)
    try:
        asyncio.run(main(args.ports, args.count, args.reconnect))
    except KeyboardInterrupt:
        sys.exit(0)
