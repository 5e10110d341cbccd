"""A node's link to the distributor: register, and keep the latest node list.

Used by services and the gateway alike. The link reconnects by itself, so a
restarted distributor sees every node again within one backoff period.
"""

from __future__ import annotations

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
        self.listeners: list[Callable[[list[Node]], None]] = []
        self.client = ReconnectingClient(host, port, name=f"{name}->distributor",
                                         on_connect=self._register, on_packet=self._on_packet,
                                         token=token, ssl=ssl)

    def start(self) -> None:
        self.client.start()

    async def close(self) -> None:
        await self.client.close()

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
            for listener in self.listeners:
                try:
                    listener(self.parsed)
                except Exception:
                    log.exception("%s: node listener failed", self.name)
