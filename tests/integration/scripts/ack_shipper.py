"""Ship N numbered events to a logs service with logmesh's acknowledging Shipper.

    python ack_shipper.py HOST PORT COUNT RATE PROGRESS_FILE

Events are shipped at about RATE per second (so a test can act mid-stream).
PROGRESS_FILE is replaced atomically with ``{"instance", "acked", "shipped"}``
every 20 ms, where ``acked`` is the highest n such that events 1..n were all
acknowledged; the last line on stdout is the same JSON once all are acked.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import orjson

from logmesh.shipping.shipper import Shipper


class TrackingShipper(Shipper):
    """A Shipper that remembers which event numbers the logs service acknowledged."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.acked_numbers: set[int] = set()
        self.watermark = 0  # 1..watermark are acknowledged

    def _on_reply(self, packet: dict) -> None:
        batch = self.inflight.get(packet.get("key"))  # type: ignore[arg-type]
        if batch is not None and packet.get("errorcode") == 0:
            self.acked_numbers.update(e[0] for e in batch)
            while self.watermark + 1 in self.acked_numbers:
                self.watermark += 1
                self.acked_numbers.discard(self.watermark)
        super()._on_reply(packet)


def write_progress(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(state))
    os.replace(tmp, path)


async def main(host: str, port: int, count: int, rate: float, progress: str) -> None:
    shipper = TrackingShipper("acktest", logs_addr=(host, port), max_queue=count + 1)
    shipper.start()

    def state() -> dict:
        return {"instance": shipper.instance, "acked": shipper.watermark,
                "shipped": shipper.stats["shipped"], "stats": shipper.stats}

    async def report() -> None:
        while True:
            write_progress(progress, state())
            await asyncio.sleep(0.02)

    reporter = asyncio.ensure_future(report())
    step = max(1, int(rate / 50))  # 50 bursts a second
    start = time.monotonic()
    for n in range(1, count + 1):
        raw = orjson.dumps({"uri": "/acktest", "method": "POST",
                            "params": {"n": n, "text": "x" * 100, "key": n}})
        shipper.ship(raw)
        if n % step == 0:
            delay = start + n / rate - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
    while shipper.watermark < count:
        await asyncio.sleep(0.02)
    reporter.cancel()
    write_progress(progress, state())
    print(orjson.dumps(state()).decode(), flush=True)
    await shipper.close(1.0)


if __name__ == "__main__":
    h, p, c, r, f = sys.argv[1:6]
    asyncio.run(main(h, int(p), int(c), float(r), f))
