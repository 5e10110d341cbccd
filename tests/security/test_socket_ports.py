"""The socket ports (syslog, Fluent forward, JSON lines) under the service's protection: TLS
when it has TLS, and no tokenless port beyond loopback without --insecure."""

from __future__ import annotations

import asyncio

import msgpack
import pytest

from logmesh.logs.server import LogsConfig, LogsServer
from logmesh.security import InsecureConfig, ServerSecurity, TLSOptions, client_context
from tests.security.conftest import PKI, TOKEN
from tests.support.logs import HOST, stored, wait_until


async def test_syslog_jsonl_and_forward_over_tls(start_logs, pki: PKI) -> None:
    srv = await start_logs(syslog_port=0, jsonl_port=0, forward_port=0,
                           security=ServerSecurity(tls=TLSOptions(cert=pki.cert_file, key=pki.key_file)))
    ports = srv.listeners.bound
    ctx = client_context(pki.ca_file)
    for name, data in (("syslog", b"<14>1 - h tls-app - - - over tls\n"),
                       ("jsonl", b'{"message": "jsonl over tls"}\n'),
                       ("forward", msgpack.packb(["tls.fwd", 0, {"message": "forward over tls"}]))):
        _, writer = await asyncio.open_connection(HOST, ports[name], ssl=ctx)
        writer.write(data)
        await writer.drain()
        writer.close()
    await wait_until(lambda: len(stored(srv.config.data_dir)) == 3, what="3 events over TLS")
    # Plain TCP to the TLS port: the handshake fails, nothing is stored.
    reader, writer = await asyncio.open_connection(HOST, ports["syslog"])
    writer.write(b"<14>1 - h plain - - - not over tls\n")
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        pass
    writer.close()
    await asyncio.sleep(0.2)
    assert len(stored(srv.config.data_dir)) == 3


@pytest.mark.parametrize("option", ["syslog_port", "forward_port", "jsonl_port"])
def test_a_tokenless_port_beyond_loopback_needs_insecure(tmp_path, option) -> None:
    config = LogsConfig(host="0.0.0.0", port=0, http_port=0, data_dir=tmp_path, distributor=None,
                        security=ServerSecurity(token=TOKEN), **{option: 0})
    with pytest.raises(InsecureConfig, match="carries no token"):
        LogsServer(config)


async def test_balanced_workers_take_tls_connections(tmp_path, pki: PKI) -> None:
    """--workers 2 with TLS: a connection handed to the sibling before its handshake is
    served there whole (the handshake, then its events in that worker's stream)."""
    import contextlib

    from tests.support.logs import book_frame, request_text
    from tests.support.procs import free_port

    port = free_port()
    tls = TLSOptions(cert=pki.cert_file, key=pki.key_file)
    workers = [LogsServer(LogsConfig(host=HOST, port=port, http_port=0, distributor=None,
                                     data_dir=tmp_path / "data", workers=2, worker_id=n,
                                     security=ServerSecurity(tls=tls))) for n in range(2)]
    for w in workers:
        await w.start()
    try:
        conns = await asyncio.gather(*(asyncio.open_connection(HOST, port, ssl=client_context(pki.ca_file))
                                       for _ in range(4)))
        for i, (_, writer) in enumerate(conns):
            writer.write(b"".join(book_frame(request_text(i * 10 + k, "tls")) for k in range(10)))
            await writer.drain()
        await wait_until(lambda: len(stored(tmp_path / "data")) == 40, what="40 events over TLS")
        assert [len(w.guard.conns) for w in workers] == [2, 2]
        assert {len(stored(tmp_path / "data", s)) for s in ("00", "01")} == {20}
        for _, writer in conns:
            writer.close()
    finally:
        for w in workers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(w.stop(), 10)
