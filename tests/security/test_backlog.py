"""Every listening port has a deep accept queue (guard.LISTEN_BACKLOG).

With asyncio's default backlog of 100, a reconnecting flood of 1,024 sockets
overflowed it and the kernel dropped the SYNs past it: a shipper's connect
waited for its SYN to be sent again, a second later (test_idle_flood.py saw
1.003 s on a loaded machine). The guard, not the kernel, decides who stays.
"""

from __future__ import annotations

import subprocess

from logmesh.guard import LISTEN_BACKLOG
from logmesh.mesh.distributor import Distributor
from logmesh.mesh.service import Service

HOST = "127.0.0.1"


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on ``port``, as ss(8) shows it (Send-Q)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[2])


def expected() -> int:
    with open("/proc/sys/net/core/somaxconn") as f:
        return min(LISTEN_BACKLOG, int(f.read()))


async def test_every_listener_has_the_deep_backlog(start_logs):
    logs = await start_logs()
    dist = Distributor(HOST, 0)
    await dist.start()
    svc = Service("goods", 0, {}, host=HOST, distributor=None)
    svc.on_request = lambda raw, packet, conn: None
    await svc.start()
    try:
        want = expected()
        assert want > 100
        for port in (logs.config.port, logs.config.http_port, dist.port, svc.port):
            assert listen_backlog(port) == want, port
    finally:
        await svc.stop()
        await dist.stop()
