"""Ship N events to a logs service at PORT through a Shipper with a disk spool, then idle.

    python spool_shipper.py PORT SPOOL_DIR N

Prints "spooled <k>" once every event is on disk or acknowledged, then keeps
running (so a test can kill -9 it); with N=0 it only replays the spool.
"""

import asyncio
import sys

from logmesh.shipping.shipper import Shipper
from logmesh.shipping.spool import Spool


async def main(port: int, spool_dir: str, n: int) -> None:
    shipper = Shipper("spooltest", spool=Spool(spool_dir), logs_addr=("127.0.0.1", port))
    shipper.start()
    for i in range(n):
        shipper.ship(b'{"uri":"/spool","method":"POST","params":{"i":%d}}' % i)
    while shipper.queue:
        await asyncio.sleep(0.05)
    print(f"spooled {shipper.stats['spooled']} acked {shipper.stats['acked']}", flush=True)
    while True:
        await asyncio.sleep(0.2)
        print(f"acked {shipper.stats['acked']}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
