"""The distributor: the mesh's registry (DESIGN.md §1).

Nodes register with ``POST /distributes``; ``host`` is taken from the
connection. Every new connection is sent the list; every registration and
disconnect is broadcast to all registered nodes. ``GET /distributes``
answers the asker alone.
"""

from __future__ import annotations

import asyncio
import logging

from ..protocol import encode, reply_key
from .connection import FramedConnection

log = logging.getLogger("logmesh.distributor")


class Distributor:
    def __init__(self, host: str = "127.0.0.1", port: int = 9000) -> None:
        self.host, self.port = host, port
        self.connections: list[FramedConnection] = []  # in arrival order
        self.server: asyncio.AbstractServer | None = None

    def nodes(self) -> list[dict]:
        return [c.state["node"] for c in self.connections if "node" in c.state]

    def _list_packet(self) -> dict:
        return {"uri": "/distributes", "method": "GET", "key": 0, "params": self.nodes()}

    def broadcast(self) -> None:
        data = encode(self._list_packet())
        for conn in self.connections:
            if "node" in conn.state:
                conn.write(data)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._make_connection, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("distributor listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        if self.server is not None:
            await self.server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def _make_connection(self) -> FramedConnection:
        conn = _DistributorConnection(self._on_packet, self._on_close, name="distributor")
        conn.distributor = self
        return conn

    def _on_open(self, conn: FramedConnection) -> None:
        self.connections.append(conn)
        conn.send(self._list_packet())  # the current list, to the newcomer alone

    def _on_close(self, conn: FramedConnection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        if "node" in conn.state:
            node = conn.state["node"]
            log.info("node left: %s %s:%s", node.get("name"), node.get("host"), node.get("port"))
            self.broadcast()

    def _on_packet(self, conn: FramedConnection, raw: bytes, packet: dict) -> None:
        if packet.get("uri") != "/distributes":
            conn.send({"key": reply_key(packet), "errorcode": 404,
                       "errormessage": "the distributor serves POST/distributes and GET/distributes"})
            return
        method = packet.get("method")
        if method == "POST":
            params = packet.get("params")
            if not isinstance(params, dict) or not isinstance(params.get("port"), int):
                conn.send({"key": reply_key(packet), "errorcode": 400,
                           "errormessage": "registration needs params {port, name, urls}"})
                return
            node = {"port": params["port"], "name": str(params.get("name", "")),
                    "urls": [u for u in params.get("urls") or [] if isinstance(u, str)],
                    "host": conn.peer[0]}
            conn.state["node"] = node
            log.info("node registered: %s %s:%s %s", node["name"], node["host"], node["port"], node["urls"])
            self.broadcast()
        elif method == "GET":
            conn.send({"uri": "/distributes", "method": "GET", "key": reply_key(packet),
                       "errorcode": 0, "params": self.nodes()})
        else:
            conn.send({"key": reply_key(packet), "errorcode": 405,
                       "errormessage": f"unsupported method {method!r}"})


class _DistributorConnection(FramedConnection):
    distributor: Distributor

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.distributor._on_open(self)
