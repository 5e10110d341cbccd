"""A node's link to the distributor: register, and keep the latest node list.

Used by services and the gateway alike. The link reconnects by itself, so a
restarted distributor sees every node again within one backoff period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..protocol import Node, parse_nodes
from .client import ReconnectingClient

log = logging.getLogger("logmesh.mesh.registry")


class RegistryLink:
    def __init__(self, host: str, port: int, *, name: str, node_port: Callable[[], int],
                 urls: Callable[[], list[str]], token: str | None = None,
                 ssl: Any = None) -> None:
        self.name = name
        self._node_port = node_port
        self._urls = urls
        self.nodes: list[dict] = []  # as the distributor sent them (GET /distributes relays them)
        self.parsed: list[Node] = []
        # (host, port) of the nodes the distributor's last list says left with a goodbye (a
        # clean stop): the mesh view drops them instead of showing them down
        self.left: set[tuple[str, int]] = set()
        self.listeners: list[Callable[[list[Node]], None]] = []
        self.client = ReconnectingClient(host, port, name=f"{name}->distributor",
                                         on_connect=self._register, on_packet=self._on_packet,
                                         token=token, ssl=ssl)

    def start(self) -> None:
        self.client.start()

    async def close(self) -> None:
        """Leave the mesh: a goodbye first (a clean stop unregisters; the distributor tells the
        others so), then the connection. The book's distributor ignores the goodbye and sees
        the connection close, as before; a logmesh distributor from before it answers 405 to
        a node that is leaving anyway."""
        if self.client.is_connected:
            self.client.send(self.goodbye())
        await self.client.close()

    def goodbye(self) -> dict:
        return {"uri": "/distributes", "method": "DELETE", "key": 0,
                "params": {"port": self._node_port(), "name": self.name}}

    def registration(self) -> dict:
        return {"uri": "/distributes", "method": "POST", "key": 0,
                "params": {"port": self._node_port(), "name": self.name, "urls": self._urls()}}

    def _register(self, client: ReconnectingClient) -> None:
        client.send(self.registration())
        log.info("%s registered with distributor %s:%d", self.name, client.host, client.port)

    def _on_packet(self, packet: dict) -> None:
        if packet.get("uri") == "/distributes" and isinstance(packet.get("params"), list):
            self.nodes = [n for n in packet["params"] if isinstance(n, dict)]
            self.parsed = parse_nodes(self.nodes)
            self.left = {(n.host, n.port) for n in parse_nodes(packet.get("left"))}
            for listener in self.listeners:
                try:
                    listener(self.parsed)
                except Exception:
                    log.exception("%s: node listener failed", self.name)


async def listed_nodes(host: str, port: int, *, token: str | None = None, ssl: Any = None,
                       timeout: float = 2.0) -> list[Node] | None:
    """The distributor's list now, or None when none came within ``timeout`` (the distributor
    is down, or not up yet: a caller goes on as if nothing were listed). A distributor sends
    its list to every new connection, the book's too (which has no ``GET /distributes``)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[list] = loop.create_future()

    def on_packet(packet: dict) -> None:
        if packet.get("uri") == "/distributes" and isinstance(packet.get("params"), list) \
                and not got.done():
            got.set_result(packet["params"])

    client = ReconnectingClient(host, port, name="distributor-check", on_packet=on_packet,
                                token=token, ssl=ssl, backoff_min=timeout, backoff_max=timeout)
    client.start()
    try:
        deadline = loop.time() + timeout
        while not got.done():  # one try: a refused connection says so at once
            if loop.time() >= deadline or (client.last_error is not None
                                           and not client.is_connected):
                return None
            await asyncio.wait([got], timeout=0.02)
        return parse_nodes(got.result())
    finally:
        await client.close()
