from __future__ import annotations

import asyncio

import pytest

from logmesh.logs.server import LogsConfig, LogsServer

from .helpers import HOST


@pytest.fixture
async def start_logs(tmp_path):
    """Start in-process logs services (port 0, no distributor); all stopped at teardown."""
    servers: list[LogsServer] = []

    async def start(**overrides) -> LogsServer:
        overrides.setdefault("data_dir", tmp_path / "data")
        config = LogsConfig(host=HOST, port=0, http_port=0, distributor=None, **overrides)
        server = LogsServer(config)
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
