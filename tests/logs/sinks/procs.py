"""Real processes for the sink tests: ``python -m logmesh logs`` and a fake cluster, from asyncio.

Each process writes stderr to a file; ``start()`` waits for the line that
carries the real port (everything binds port 0) and the test's ``finally``
kills what it started, by pid.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from logmesh.logs.store import layout

ROOT = Path(__file__).resolve().parents[3]
LOGS_LISTENING = re.compile(rb"logs worker \d+: TCP [\d.]+:\d+, HTTP (http://[\d.]+:\d+)")
FAKE_LISTENING = re.compile(rb"fake \w+ on (http://[\d.]+:\d+)")


class Process:
    def __init__(self, argv: list[str], log_path: Path, ready: re.Pattern[bytes]) -> None:
        self.argv, self.log_path, self.ready = argv, log_path, ready
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self, timeout: float = 15.0) -> str:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            m = self.ready.search(self.log_path.read_bytes()[offset:])
            if m:
                self.url = m.group(1).decode()
                return self.url
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.argv[2:4]} did not start:\n{self.tail()}")
            await asyncio.sleep(0.02)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    async def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not end in time; returns the exit code."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: children (workers) too
            return await self.proc.wait()


def logs_process(data_dir: Path, es_url: str | None, log_path: Path, *extra: str) -> Process:
    argv = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--no-supervise",
            "--port", "0", "--http-port", "0", "--data-dir", str(data_dir), *extra]
    if es_url:
        argv += ["--elasticsearch", es_url]
    return Process(argv, log_path, LOGS_LISTENING)


def metric(text: str, name: str) -> float:
    """The value of the first sample of ``name`` in a Prometheus text exposition."""
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    if m is None:
        raise AssertionError(f"{name} not in /metrics")
    return float(m.group(1))


def fake_process(log_path: Path, flavor: str = "elasticsearch", faults: dict | None = None) -> Process:
    """``faults``: fake_es.Faults' fields."""
    return Process([sys.executable, "-m", "tests.logs.sinks.fake_es", "0", flavor,
                    orjson.dumps(faults or {}).decode()], log_path, FAKE_LISTENING)


def stored_events(data_dir: Path) -> dict[int, dict[str, Any]]:
    """Every event in the data directory's segments, by seq."""
    out = {}
    for path in sorted((data_dir / layout.SEGMENTS_DIR).glob("*" + layout.SEGMENT_SUFFIX)):
        for line in path.read_bytes().splitlines():
            ev = orjson.loads(line)
            out[ev["seq"]] = ev
    return out
