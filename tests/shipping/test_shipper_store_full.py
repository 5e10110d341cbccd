"""A logs service whose disk is full answers a batch 507 at once; the shipper keeps it.

Against a real in-process logs service over TCP, with segment writes failing
(ENOSPC) on demand: the batch is answered at once instead of held, nothing is
counted as dropped, and once the disk has room every event is acknowledged
and stored exactly once (issue 14: every acked batch is answered).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

import orjson

from logmesh.shipping.shipper import Shipper
from tests.support.logs import logs_starter, stored
from tests.support.waiting import wait_until


async def test_a_full_disk_gets_a_507_at_once_and_the_shipper_resends_later(
        tmp_path: Path, monkeypatch, caplog) -> None:
    real_write = os.write
    full = threading.Event()

    def write(fd: int, data) -> int:  # segment writes fail while ``full`` is set
        if full.is_set() and os.readlink(f"/proc/self/fd/{fd}").endswith(".ndjson"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", lambda fd, bufs: write(fd, b"".join(bufs)))  # the store's
    caplog.set_level(logging.WARNING, "logmesh.shipper")
    async with logs_starter(tmp_path) as start:
        srv = await start()
        shipper = Shipper("svc", mode="ack", logs_addr=("127.0.0.1", srv.config.port))
        shipper.start()
        try:
            shipper.ship(request(0))
            await wait_until(lambda: shipper.stats["acked"] == 1, what="the first event acked")
            full.set()
            shipper.ship(request(1))  # its write fails: the store is failing from now on
            await wait_until(lambda: srv.writer.failure is not None, what="the store failing")
            for i in range(2, 6):
                shipper.ship(request(i))
            await wait_until(lambda: "cannot store now" in caplog.text, 5,
                             what="a 507 answered at once, not an ack held for ever")
            assert shipper.stats["dropped"] == 0 and shipper.stats["acked"] == 1
            full.clear()
            await wait_until(lambda: shipper.stats["acked"] == 6, 20, what="all acked afterwards")
            assert shipper.stats["dropped"] == 0 and shipper.stats["rejected"] == 0
            keys = sorted(orjson.loads(e["message"])["params"]["key"]
                          for e in stored(srv.config.data_dir))
            assert keys == list(range(6)), "every event stored exactly once"
        finally:
            await shipper.close()


def request(i: int) -> bytes:
    return orjson.dumps({"uri": "/a", "method": "GET", "params": {"key": i}})
