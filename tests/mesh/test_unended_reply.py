"""A service that streams a reply and never ends it with ``¶`` (found from outside: the gateway
dropped it silently, answered a bare 504 at its timeout, and the stale bytes then swallowed the
instance's next reply, a second 504)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson

from logmesh.protocol import FrameDecoder, encode
from tests.mesh.test_gateway_status import start_gateway, url
from tests.support.mesh import HOST, Peer, gateway_ready


async def test_a_reply_never_ended_is_named_to_client_log_and_access_log_and_the_next_one_reads(
        mesh, caplog):
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(65536):
            for item in decoder.feed(data):
                packet = item[1]
                reply = {"key": packet["key"], "errorcode": 0, "results": packet["params"]["a"]}
                if packet["params"]["a"] == "cut":
                    writer.write(orjson.dumps(reply)[:-1])  # no closing brace, no ¶
                else:
                    writer.write(encode(reply))

    server = await asyncio.start_server(serve, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    await mesh.start_distributor()
    gw, shipper = await start_gateway(mesh, timeout=0.5)
    node = await Peer.connect(mesh.distributor.port)
    node.send({"uri": "/distributes", "method": "POST", "key": 0,
               "params": {"port": port, "name": "raw", "urls": ["GET/raw"]}})
    await gateway_ready(gw, "GET/raw")
    caplog.set_level(logging.WARNING, "logmesh")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(url(gw, "/raw"), params={"a": "cut"}) as resp:
                assert resp.status == 504
                body = await resp.json()
            message = body["errormessage"]
            assert f"raw ({HOST}:{port})" in message and "never ended" in message, message
            assert "bytes" in message and "¶" in message, message
            logged = shipper.records[-1][1]
            assert logged["upstream"] == "raw" and logged["http.response.status_code"] == 504
            assert logged["upstream.unended_bytes"] > 0
            assert any("never ended" in r.getMessage() and f"{HOST}:{port}" in r.getMessage()
                       for r in caplog.records), [r.getMessage() for r in caplog.records]
            # the stale bytes are gone: the next reply on the same connection reads
            async with http.get(url(gw, "/raw"), params={"a": "fine"}) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["results"] == "fine"
    finally:
        await node.close()
        server.close()
