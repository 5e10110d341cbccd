"""--workers N: a worker holding more ingest connections than a sibling hands it the next one
(balance.py), so connections split evenly whatever the kernel's SO_REUSEPORT hash does; a
sibling that is not there is skipped and nothing is refused."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from logmesh.logs.server import LogsConfig, LogsServer
from tests.support.logs import HOST, RawClient, book_frame, request_text, stored, wait_until
from tests.support.procs import free_port


@pytest.fixture
async def start_worker(tmp_path):
    """``start(n, port, **kw)``: worker ``n`` of 2 on a shared fixed port; all stopped after."""
    servers: list[LogsServer] = []

    async def start(n: int, port: int, **kw) -> LogsServer:
        server = LogsServer(LogsConfig(host=HOST, port=port, http_port=0, distributor=None,
                                       data_dir=tmp_path / "data", workers=2, worker_id=n, **kw))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.stop(), 10)


async def two_workers(start_worker, **kw):
    port = free_port()
    return port, await start_worker(0, port, **kw), await start_worker(1, port, **kw)


async def test_connections_are_split_evenly_and_events_stored_once(start_worker):
    port, w0, w1 = await two_workers(start_worker)
    clients = []
    for n in (1, 2, 4, 7, 8):  # after each batch of connections: an even split
        while len(clients) < n:
            clients.append(await RawClient.connect(port))
            await asyncio.sleep(0.15)  # the siblings publish their loads ten times a second
        await wait_until(lambda n=n: len(w0.guard.conns) + len(w1.guard.conns) == n, what=f"{n} served")
        assert abs(len(w0.guard.conns) - len(w1.guard.conns)) <= 1, (n, len(w0.guard.conns))
    assert w0.tcp_server.handed + w1.tcp_server.handed == w0.tcp_server.taken + w1.tcp_server.taken
    for i, c in enumerate(clients):  # every connection's events, stored once, in one stream
        await c.send(b"".join(book_frame(request_text(i * 100 + k, "bal")) for k in range(100)))
    data = w0.config.data_dir
    await wait_until(lambda: len(stored(data)) == 800, what="800 events")
    assert sorted(e["trace.id"] for e in stored(data)) == sorted(
        f"bal-{i * 100 + k}" for i in range(8) for k in range(100))
    per_stream = {w: len(stored(data, w)) for w in ("00", "01")}
    assert per_stream == {"00": 400, "01": 400}
    for c in clients:
        await c.close()


async def test_a_missing_sibling_is_skipped(start_worker):
    port = free_port()
    w0 = await start_worker(0, port)  # worker 1 never started
    w0.tcp_server.loads.set(1, 0)  # its slot says idle: the hand-off is tried, refused, skipped
    clients = [await RawClient.connect(port) for _ in range(3)]
    for i, c in enumerate(clients):
        await c.send(book_frame(request_text(i, "alone")))
    await wait_until(lambda: len(stored(w0.config.data_dir)) == 3, what="3 events")
    assert len(w0.guard.conns) == 3 and w0.tcp_server.handed == 0
    for c in clients:
        await c.close()


async def test_no_balance_leaves_placement_to_the_kernel(start_worker):
    port, w0, w1 = await two_workers(start_worker, balance=False)
    clients = [await RawClient.connect(port) for _ in range(6)]
    await wait_until(lambda: len(w0.guard.conns) + len(w1.guard.conns) == 6, what="6 served")
    assert not hasattr(w0.tcp_server, "handed")  # asyncio's own server
    for c in clients:
        await c.close()


async def test_a_burst_of_connections_splits_evenly(tmp_path):
    """Four connections opened at once, as a load generator or a restarted fleet opens them:
    a connection on its way to a sibling is counted once (the hand-off race split them 3:1)."""
    for trial in range(6):
        port = free_port()
        workers = [LogsServer(LogsConfig(host=HOST, port=port, http_port=0, distributor=None,
                                         data_dir=tmp_path / f"data{trial}", workers=2, worker_id=n))
                   for n in range(2)]
        for w in workers:
            await w.start()
        try:
            conns = await asyncio.gather(*(asyncio.open_connection(HOST, port) for _ in range(4)))
            await wait_until(lambda ws=workers: sum(len(w.guard.conns) for w in ws) == 4,
                             what="4 served")
            await asyncio.sleep(0.2)  # any hand-off still on its way lands
            assert [len(w.guard.conns) for w in workers] == [2, 2], trial
            for _, writer in conns:
                writer.close()
        finally:
            for w in workers:
                await asyncio.wait_for(w.stop(), 10)
