"""TLS (issue #9): the ¶ protocol and the HTTP ports over the standard ssl module.

Certificates are made in the test (trustme). Clients verify the server: one
that trusts another CA is refused, and so is a client speaking plain TCP.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from logmesh.mesh.distributor import Distributor
from logmesh.mesh.gateway import Gateway
from logmesh.security import ServerSecurity, TLSOptions, client_context
from logmesh.shipping.shipper import Shipper
from tests.security.conftest import PKI, TOKEN
from tests.support.logs import HOST, book_frame, request_text, stored
from tests.support.mesh import gateway_ready, wait_until


def server_tls(pki: PKI) -> TLSOptions:
    return TLSOptions(cert=pki.cert_file, key=pki.key_file, ca=pki.ca_file)


async def test_shipping_over_tls_with_a_token(start_logs, pki) -> None:
    srv = await start_logs(
        security=ServerSecurity(token=TOKEN, tls=TLSOptions(cert=pki.cert_file, key=pki.key_file)))
    shipper = Shipper("goods", logs_addr=(HOST, srv.config.port), token=TOKEN,
                      ssl=client_context(pki.ca_file))
    shipper.start()
    for i in range(100):
        shipper.ship(request_text(i, "tls").encode())
    try:
        await wait_until(lambda: shipper.stats["acked"] == 100, what="100 acked over TLS")
        assert len(stored(srv.config.data_dir)) == 100
    finally:
        await shipper.close(1)


async def test_a_client_with_the_wrong_ca_is_refused(start_logs, pki, other_pki) -> None:
    srv = await start_logs(security=ServerSecurity(tls=TLSOptions(cert=pki.cert_file, key=pki.key_file)))
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(HOST, srv.config.port, ssl=client_context(other_pki.ca_file))
    # The shipper keeps trying, never sends, and says why in its log.
    shipper = Shipper("goods", logs_addr=(HOST, srv.config.port), ssl=client_context(other_pki.ca_file))
    shipper.start()
    shipper.ship(request_text(1, "wrong-ca").encode())
    try:
        await wait_until(lambda: shipper.client is not None and shipper.client.last_error
                         and "CERTIFICATE_VERIFY_FAILED" in shipper.client.last_error,
                         what="a certificate verification failure")
        assert not shipper.client.is_connected  # type: ignore[union-attr]
        assert stored(srv.config.data_dir) == []
    finally:
        await shipper.close(0.1)


async def test_plain_tcp_to_a_tls_port_stores_nothing(start_logs, pki) -> None:
    srv = await start_logs(security=ServerSecurity(tls=TLSOptions(cert=pki.cert_file, key=pki.key_file)))
    reader, writer = await asyncio.open_connection(HOST, srv.config.port)
    writer.write(book_frame(request_text(1, "plain")))
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(), 5)  # the handshake fails; the server closes
    except ConnectionError:
        pass
    writer.close()
    await asyncio.sleep(0.2)
    assert stored(srv.config.data_dir) == []


async def test_the_http_api_over_tls(start_logs, pki, other_pki) -> None:
    srv = await start_logs(
        security=ServerSecurity(token=TOKEN, tls=TLSOptions(cert=pki.cert_file, key=pki.key_file)))
    url = f"https://{HOST}:{srv.config.http_port}/api/v1/stats"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=auth, ssl=client_context(pki.ca_file)) as r:
            assert r.status == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(url, headers=auth, ssl=client_context(other_pki.ca_file)):
                pass
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
            async with http.get(url.replace("https", "http"), headers=auth):
                pass


async def test_the_whole_mesh_over_tls(mesh, pki, other_pki) -> None:
    tls = server_tls(pki)
    dist = Distributor(HOST, 0, security=ServerSecurity(token=TOKEN, tls=tls))
    await dist.start()
    mesh.stoppers.append(dist.stop)
    mesh.distributor = dist
    await mesh.start_service("goods", {"GET/goods": lambda p, pk: ["over tls"]},
        security=ServerSecurity(token=TOKEN, tls=tls))
    gw = Gateway(HOST, 0, distributor=mesh.distributor_addr,
        security=ServerSecurity(token=TOKEN, tls=tls))
    await gw.start()
    mesh.stoppers.append(gw.stop)
    await gateway_ready(gw, "GET/goods")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"https://{HOST}:{gw.port}/goods", ssl=client_context(pki.ca_file)) as r:
            assert r.status == 200 and (await r.json())["results"] == ["over tls"]
    # A node that trusts another CA cannot even reach the registry.
    stranger = await mesh.start_service("stranger", {},
        security=ServerSecurity(token=TOKEN, tls=TLSOptions(ca=other_pki.ca_file)))
    await wait_until(lambda: stranger.registry is not None and stranger.registry.client.last_error,
                     what="the stranger's TLS failure")
    assert "stranger" not in [n["name"] for n in dist.nodes()]


async def test_the_logging_handler_over_tls_with_a_token(start_logs, pki) -> None:
    import logging

    from logmesh.shipping.handler import LogHandler

    srv = await start_logs(
        security=ServerSecurity(token=TOKEN, tls=TLSOptions(cert=pki.cert_file, key=pki.key_file)))
    handler = LogHandler("script", port=srv.config.port, token=TOKEN, ssl=client_context(pki.ca_file))
    logger = logging.getLogger("tests.security.handler")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("over tls %d", 1)
        await asyncio.to_thread(handler.flush)
        await wait_until(lambda: [e["message"] for e in stored(srv.config.data_dir)] == ["over tls 1"],
                         what="the record stored")
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
