"""A mesh service whose handler takes as long as it is asked, and fails when asked to.

    python timed_service.py DISTRIBUTOR_PORT

``GET /timed?ms=30&fail=500``: sleeps 30 ms, then answers errorcode 500 (``fail`` absent or
0: success); ``DELETE /timed``: errorcode 400 at once, as goods answers a DELETE with no id.
Registers as ``timed`` and ships every request it receives (a logmesh Shipper, as
``logmesh service`` does); logs "timed listening on HOST:PORT".
"""

from __future__ import annotations

import asyncio
import logging
import sys

from logmesh.mesh.service import HandlerError, Service
from logmesh.shipping.shipper import Shipper


async def timed(params: dict, packet: dict) -> dict:
    await asyncio.sleep(float(params.get("ms", 0)) / 1000)
    code = int(params.get("fail", 0) or 0)
    if code:
        raise HandlerError("asked to fail", code)
    return {"slept_ms": float(params.get("ms", 0))}


def delete(params: dict, packet: dict) -> dict:
    raise HandlerError("DELETE needs an id", 400)


async def main(distributor_port: int) -> None:
    svc = Service("timed", 0, {"GET/timed": timed, "DELETE/timed": delete},
                  distributor=("127.0.0.1", distributor_port))
    Shipper("timed").attach(svc)
    await svc.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(int(sys.argv[1])))
