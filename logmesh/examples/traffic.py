"""Example traffic through the gateway, so a fresh mesh has logs to look at."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import aiohttp

log = logging.getLogger("logmesh.traffic")

NAMES = ["pen", "book", "cup", "lamp", "desk", "chair", "phone", "bag"]


@dataclass
class Tally:
    """Requests sent, and those that reached no gateway (refused, reset, timed out): an HTTP
    error answer is traffic too (a 404 route, a 503 while a service restarts)."""

    sent: int = 0
    failed: int = 0


async def run_traffic(gateway: str, *, rate: float = 5.0, count: int = 0, seed: int | None = None,
                      tally: Tally | None = None) -> Tally:
    """Send requests at ``rate``/s (``count`` of them, or forever), counted in ``tally``.

    Ten requests in a row that reach no gateway, and every 100th after them, are a warning: a
    wrong ``--gateway`` must not look like a quiet mesh (the first few fail while ``logmesh
    up`` starts the gateway beside this)."""
    rng = random.Random(seed)
    tally = tally if tally is not None else Tally()
    streak = 0  # failures in a row
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(gateway, timeout=timeout) as http:
        while count == 0 or tally.sent < count:
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
                tally.failed += 1
                streak += 1
                if streak % 100 == 10:
                    log.warning("traffic: %d requests in a row reached no gateway at %s (%s)",
                                streak, gateway, exc or type(exc).__name__)
            else:
                streak = 0
            tally.sent += 1
            await asyncio.sleep(1.0 / rate if rate > 0 else 0)
    return tally
