"""Helpers for logs-service tests: an in-process server on port 0, raw sockets, the store's lines."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from logmesh.logs.event import derive_request, derive_syslog_labels
from logmesh.protocol import encode, loads_exact
from tests.support.waiting import wait_until  # noqa: F401  (re-exported for the tests here)

HOST = "127.0.0.1"


def stored(data_dir: Path, worker: str = "*") -> list[dict]:
    """Every complete line of the segments (readers never see a half-written line), with the
    request's fields derived from ``message`` and syslog's facility and severity labels from
    its priority, as every reader does."""
    out: list[dict] = []
    for path in sorted((Path(data_dir) / "segments").glob(f"w{worker}-*.ndjson")):
        data = path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]
        out.extend(map(_as_read, data.splitlines()))
    return out


def _as_read(line: bytes) -> dict:
    ev = derive_request(loads_exact(line))  # as the store's readers: no integer read as a float
    if "labels" in ev:
        ev["labels"] = derive_syslog_labels(ev["labels"])
    return ev


def book_packet(log: str) -> dict:
    """What the chapter's writeLog sends: the received request packet's text as params."""
    return {"uri": "/logs", "method": "POST", "key": 0, "params": log}


def book_frame(log: str) -> bytes:
    return encode(book_packet(log))


def request_text(i: int, tag: str = "t", **params: Any) -> str:
    return orjson.dumps({"uri": "/goods", "method": "GET", "params": {"key": i, **params},
                         "trace.id": f"{tag}-{i}"}).decode()


class RawClient:
    """A plain TCP client that counts every byte the server sends it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = bytearray()
        self.eof = False

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        return cls(reader, writer)

    @property
    def local_port(self) -> int:
        return self.writer.get_extra_info("sockname")[1]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_for(self, seconds: float) -> bytes:
        """Whatever arrives within ``seconds`` (sets ``eof`` when the server closes)."""
        deadline = time.monotonic() + seconds
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                break
            except ConnectionError:
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            self.received += chunk
        return bytes(self.received)

    async def replies(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Read until ``count`` ¶-framed replies arrived."""
        deadline = time.monotonic() + timeout
        while self.received.count("¶".encode()) < count:
            assert not self.eof, "the server closed the connection"
            assert time.monotonic() < deadline, f"no {count} replies within {timeout}s: {self.received!r}"
            await self.read_for(0.05)
        return [orjson.loads(p) for p in bytes(self.received).split("¶".encode()) if p]

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (TimeoutError, OSError):
            pass


_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


async def metrics(http_port: int) -> dict[tuple[str, frozenset], float]:
    """``/metrics`` as {(name, frozenset of label pairs): value}."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{HOST}:{http_port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    out = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            labels = frozenset(tuple(p.split("=", 1)) for p in re.findall(r'\w+="[^"]*"', m.group(2)))
            labels = frozenset((k, v.strip('"')) for k, v in labels)
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def bad_frames(samples: dict, reason: str) -> float:
    for (name, labels), value in samples.items():
        if name == "logmesh_bad_frames_total" and ("reason", reason) in labels:
            return value
    return 0.0


@contextlib.asynccontextmanager
async def logs_starter(tmp_path: Path, **defaults: Any):
    """``start(**overrides)`` for in-process logs services (port 0); all stopped on exit."""
    from logmesh.logs.server import LogsConfig, LogsServer

    servers: list[LogsServer] = []

    async def start(**overrides: Any) -> LogsServer:
        options = {"data_dir": tmp_path / "data", "distributor": None, **defaults, **overrides}
        server = LogsServer(LogsConfig(host=HOST, port=0, http_port=0, **options))
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            try:
                await asyncio.wait_for(server.stop(), 10)
            except Exception:  # teardown goes on
                pass

