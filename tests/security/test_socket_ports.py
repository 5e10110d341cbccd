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
