"""What the socket-ingest tests share: a server with the optional ports, `logmesh query` on it,
and the per-protocol counters from /metrics."""

from __future__ import annotations

import asyncio
import json
import socket

from click.testing import CliRunner

from logmesh.cli import cli
from tests.support.logs import HOST, metrics
from tests.support.waiting import wait_for


async def logmesh_query(server, q: str, *extra: str) -> list[dict]:
    """``logmesh query Q --json`` against ``server``'s HTTP port, as a user types it."""
    url = f"http://{HOST}:{server.config.http_port}"
    runner = CliRunner()
    r = await asyncio.get_running_loop().run_in_executor(
        None, lambda: runner.invoke(cli, ["query", q, "--json", "--since", "1d", "--asc", *extra,
                                          "--url", url]))
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


async def ingest_errors(server, protocol: str) -> dict[str, float]:
    """``logmesh_ingest_rejected_total{protocol=...}`` by reason, from /metrics."""
    out: dict[str, float] = {}
    for (name, labels), value in (await metrics(server.config.http_port)).items():
        if name == "logmesh_ingest_rejected_total" and ("protocol", protocol) in labels:
            out[dict(labels)["reason"]] = value
    return out


async def replaced(server) -> dict[str, float]:
    """``logmesh_replaced_events_total`` by reason (summed over workers), from /metrics."""
    out: dict[str, float] = {}
    for (name, labels), value in (await metrics(server.config.http_port)).items():
        if name == "logmesh_replaced_events_total":
            reason = dict(labels)["reason"]
            out[reason] = out.get(reason, 0) + value
    return out


async def ingest_events(server, protocol: str) -> float:
    for (name, labels), value in (await metrics(server.config.http_port)).items():
        if name == "logmesh_ingest_events_total" and ("protocol", protocol) in labels:
            return value
    return 0.0


async def wait_listening(port: int, what: str, timeout: float = 15) -> None:
    """Until something accepts TCP connections on ``port`` (a relay we started: rsyslogd,
    syslog-ng)."""
    def listening() -> bool:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    await asyncio.to_thread(wait_for, listening, timeout, what)
