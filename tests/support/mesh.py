"""Helpers for mesh tests: raw framed peers, bounded waits, servers on port 0 at 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from logmesh.mesh.distributor import Distributor
from logmesh.mesh.gateway import Gateway
from logmesh.mesh.service import Service
from logmesh.protocol import BadFrame, FrameDecoder, encode
from tests.support.waiting import wait_until  # noqa: F401  (re-exported for the tests here)

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Peer:
    """A bare ¶-framed TCP peer, as the book's Node tcpClient would be."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder()
        self.inbox: list[dict] = []
        self.bad: list[BadFrame] = []

    @classmethod
    async def connect(cls, port: int, host: str = HOST) -> Peer:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
        return cls(reader, writer)

    def send(self, packet: Any) -> None:
        self.writer.write(encode(packet))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def _read_more(self, timeout: float) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            raise ConnectionError("peer closed the connection")
        for item in self.decoder.feed(data):
            if isinstance(item, BadFrame):
                self.bad.append(item)
            else:
                self.inbox.append(item[1])

    async def recv(self, timeout: float = 2.0) -> dict:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            await self._read_more(max(0.0, deadline - time.monotonic()))
        return self.inbox.pop(0)

    async def recv_until(self, predicate: Callable[[dict], bool], timeout: float = 2.0) -> dict:
        """The first packet matching ``predicate``; earlier ones are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            packet = await self.recv(max(0.0, deadline - time.monotonic()))
            if predicate(packet):
                return packet

    async def request(self, packet: dict, timeout: float = 2.0) -> dict:
        self.send(packet)
        return await self.recv(timeout)

    async def silent_for(self, seconds: float) -> list[dict]:
        """Everything that arrives within ``seconds`` (the test usually expects nothing)."""
        try:
            while True:
                await self._read_more(seconds)
        except (TimeoutError, ConnectionError):
            pass
        got, self.inbox = self.inbox, []
        return got

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (TimeoutError, OSError):
            pass


def names(nodes: list[dict]) -> list[str]:
    return [n["name"] for n in nodes]


class Mesh:
    """Starts parts of the mesh on free ports and stops them all at teardown."""

    def __init__(self) -> None:
        self.stoppers: list[Callable[[], Any]] = []
        self.distributor: Distributor | None = None

    @property
    def distributor_addr(self) -> tuple[str, int]:
        assert self.distributor is not None, "start a distributor first"
        return (HOST, self.distributor.port)

    async def start_distributor(self, port: int = 0) -> Distributor:
        dist = Distributor(HOST, port)
        await dist.start()
        self.stoppers.append(dist.stop)
        if self.distributor is None:
            self.distributor = dist
        return dist

    async def start_service(self, name: str, routes: dict, *, port: int = 0,
                            register: bool = True, **kwargs: Any) -> Service:
        svc = Service(name, port, routes, host=HOST,
                      distributor=self.distributor_addr if register else None, **kwargs)
        svc.on_request = lambda raw, packet, conn: None  # keep test output quiet
        await svc.start()
        self.stoppers.append(svc.stop)
        return svc

    async def add(self, svc: Service) -> Service:
        await svc.start()
        self.stoppers.append(svc.stop)
        return svc

    async def start_gateway(self, timeout: float = 5.0) -> Gateway:
        gw = Gateway(HOST, 0, distributor=self.distributor_addr, timeout=timeout)
        await gw.start()
        self.stoppers.append(gw.stop)
        return gw

    async def close(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                await asyncio.wait_for(stop(), 5.0)
            except Exception:  # teardown must go on
                pass
        self.stoppers.clear()


async def gateway_ready(gw: Gateway, route: str, instances: int = 1, timeout: float = 5.0) -> None:
    """Wait until the gateway knows ``route`` on ``instances`` nodes and is connected to them."""

    def ready() -> bool:
        addrs = gw.routes.get(route, [])
        return len(addrs) >= instances and all(
            gw.clients.get(a) is not None and gw.clients[a].is_connected for a in addrs)

    await wait_until(ready, timeout, f"gateway route {route} on {instances} node(s)")


@pytest.fixture
async def mesh():
    """A :class:`Mesh` whose parts are all stopped after the test."""
    m = Mesh()
    try:
        yield m
    finally:
        await m.close()
