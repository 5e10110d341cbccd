"""Example traffic through the gateway, so a fresh mesh has logs to look at."""

from __future__ import annotations

import asyncio
import logging
import random

import aiohttp

log = logging.getLogger("logmesh.traffic")

NAMES = ["pen", "book", "cup", "lamp", "desk", "chair", "phone", "bag"]


async def run_traffic(gateway: str, *, rate: float = 5.0, count: int = 0, seed: int | None = None) -> int:
    """Send requests at ``rate``/s (``count`` of them, or forever); returns how many were sent."""
    rng = random.Random(seed)
    sent = 0
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(gateway, timeout=timeout) as http:
        while count == 0 or sent < count:
            kind = rng.choice(["goods", "members", "purchases"])
            roll = rng.random()
            try:
                if roll < 0.4:
                    body = {"goods": {"name": rng.choice(NAMES), "price": rng.randint(1, 99)},
                            "members": {"username": f"user{rng.randint(1, 999)}"},
                            "purchases": {"userid": rng.randint(1, 50),
                                          "goodsid": rng.randint(1, 50)}}[kind]
                    await (await http.post(f"/{kind}", json=body)).read()
                elif roll < 0.9:
                    await (await http.get(f"/{kind}", params={"id": str(rng.randint(1, 60))})).read()
                elif roll < 0.97:
                    await (await http.delete(f"/{kind}", params={"id": str(rng.randint(1, 60))})).read()
                else:
                    await (await http.get("/missing-route")).read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.debug("traffic: %s", exc)
            sent += 1
            await asyncio.sleep(1.0 / rate if rate > 0 else 0)
    return sent
