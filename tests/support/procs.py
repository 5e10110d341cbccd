"""Real logmesh processes for integration tests: start on free ports, read the port, always kill.

Each process runs ``python -m logmesh ...`` in its own session (process group)
with stderr going to a file, so a test can wait for the line that carries the
real port (servers take port 0 and log what they bound) and show the log when
something fails. ``Procs.close()`` kills every group it started; tests call it
in ``finally`` (the ``procs`` fixture does).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from logmesh.logs.event import derive_request
from tests.support.waiting import wait_for  # noqa: F401  (re-exported for the tests here)

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]

# What each server logs once it listens (logmesh/mesh/*.py, logmesh/logs/server.py).
LISTENING = {
    "distributor": re.compile(r"distributor listening on [\d.]+:(\d+)"),
    "gateway": re.compile(r"gateway listening on http://[\d.]+:(\d+)"),
    "logs": re.compile(r"logs worker (\d+): TCP [\d.]+:(\d+), HTTP http://[\d.]+:(\d+)"),
}


def run_logmesh(cwd: Path, *args: str, bound: float = 90.0) -> subprocess.CompletedProcess:
    """``python -m logmesh ARGS`` of this tree run to its end, its output kept; killed (its
    whole session) and failed after ``bound`` seconds: a command that should exit but hangs
    is the defect such a test looks for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMESH_")}
    env["PYTHONPATH"] = str(ROOT)  # this tree's code, not the installed one
    proc = subprocess.Popen([sys.executable, "-m", "logmesh", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                            start_new_session=True, text=True)
    try:
        out, err = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {bound:g}s:\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def free_port() -> int:
    """A port nobody listens on now (for a server that must come back on the same port)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, env=env, cwd=log_path.parent,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_line(self, pattern: re.Pattern[str] | str, timeout: float = 15.0,
                  count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` in the log (fails early if the process dies)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern

        def found() -> list[re.Match[str]] | None:
            matches = list(rx.finditer(self.log_text()))
            if len(matches) >= count:
                return matches[:count]
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before "
                                     f"logging {rx.pattern!r}:\n{self.log_text()[-4000:]}")
            return None

        try:
            return wait_for(found, timeout, f"{self.name}: {rx.pattern}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log_text()[-4000:]}") from None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # the group this Popen created (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass

    def kill9(self) -> None:
        """SIGKILL the process itself (a crash: no cleanup runs)."""
        self.popen.kill()
        self.popen.wait(5)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)  # children of a supervisor too
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.popen.returncode


class Procs:
    """Starts logmesh processes in ``workdir``; ``close()`` stops all of them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        for name in list(self.env):
            if name.startswith("LOGMESH_"):
                del self.env[name]  # options come from the test's argv only

    def start(self, name: str, *args: str) -> Proc:
        argv = [sys.executable, "-m", "logmesh", *args]
        log_path = self.workdir / f"{name}.{len(self.procs)}.log"
        proc = Proc(name, argv, log_path, self.env)
        self.procs.append(proc)
        return proc

    def start_script(self, name: str, argv: list[str]) -> Proc:
        log_path = self.workdir / f"{name}.{len(self.procs)}.log"
        proc = Proc(name, argv, log_path, self.env)
        self.procs.append(proc)
        return proc

    # -- the mesh's parts, each on a free port --------------------------------------
    def distributor(self) -> tuple[Proc, int]:
        proc = self.start("distributor", "distributor", "--port", "0", "--no-supervise")
        port = int(proc.wait_line(LISTENING["distributor"])[0].group(1))
        return proc, port

    def logs(self, data_dir: Path, *extra: str, port: int = 0, http_port: int = 0,
             distributor: int | None = None, name: str = "logs") -> tuple[Proc, int, int]:
        args = ["logs", "--port", str(port), "--http-port", str(http_port), "--data-dir", str(data_dir)]
        args += ["--distributor", f"{HOST}:{distributor}"] if distributor else ["--standalone"]
        proc = self.start(name, *args, *extra, "--no-supervise")
        m = proc.wait_line(LISTENING["logs"])[0]
        return proc, int(m.group(2)), int(m.group(3))

    def service(self, name: str, distributor: int, data_dir: Path, *extra: str) -> tuple[Proc, int]:
        proc = self.start(name, "service", name, "--port", "0", "--distributor", f"{HOST}:{distributor}",
                          "--data-dir", str(data_dir), "--no-supervise", *extra)
        port = int(proc.wait_line(rf"{name} listening on [\d.]+:(\d+)")[0].group(1))
        return proc, port

    def gateway(self, distributor: int, *extra: str) -> tuple[Proc, int]:
        proc = self.start("gateway", "gateway", "--port", "0", "--distributor", f"{HOST}:{distributor}",
                          "--no-supervise", *extra)
        port = int(proc.wait_line(LISTENING["gateway"])[0].group(1))
        return proc, port

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def logs_of_all(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_text()[-3000:]}" for p in self.procs)


def store_events(data_dir: Path) -> list[dict]:
    """Every stored event of ``data_dir``, as readers see it: complete segment lines, and the
    Parquet files compaction made of sealed segments (a segment whose Parquet file exists is
    left out, as the query engine does)."""
    return read_store_still(Path(data_dir), _read_store)


class FileWentAway(Exception):
    """A file of the store's listing was gone when it was to be read: the listing no longer
    says where its events are (compaction moved a segment's into Parquet, retention)."""


def read_store_still(data_dir: Path, read: Callable[[Path, tuple], Any], tries: int = 50) -> Any:
    """``read(data_dir, (segments, parquet files))``, retried while a file it listed went
    away before it was read (compaction and retention work under a live service).

    A read gives every event stored before its listing, each once: a segment is read, or
    skipped for its Parquet file of the listing. Files that came meanwhile hold later events,
    and a segment compacted after it was read was counted from its lines, so neither makes
    it read again. Waiting for no file to come or go at all never ended under load: a read
    of a 64 KB-segment store being compacted (tests/integration/test_exact_counts.py) took
    longer than the store stayed still, 50 times over."""
    for _ in range(tries):
        before = _store_files(data_dir)
        try:
            result = read(data_dir, before)
        except FileWentAway:
            time.sleep(0.05)
            continue
        if set(before[1]) <= set(_store_files(data_dir)[1]):  # a Parquet file, not read: retention
            return result
        time.sleep(0.05)
    raise AssertionError(f"{data_dir}: files of the store kept going away while being read")


def _store_files(data_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    segs = tuple(sorted(p.name for p in (data_dir / "segments").glob("*.ndjson")))
    pq = tuple(sorted(p.name for p in (data_dir / "parquet").glob("*.parquet")))
    return segs, pq


def uncompacted_lines(data_dir: Path, files: tuple[tuple[str, ...], tuple[str, ...]]) -> Iterator[bytes]:
    """Each segment without a Parquet file of its name, as its complete lines' bytes (what
    the engine reads of it: bytes after the last newline are no event yet)."""
    segs, pq = files
    compacted = {name.removesuffix(".parquet") for name in pq}
    for name in segs:
        if name.removesuffix(".ndjson") in compacted:
            continue
        try:
            data = (data_dir / "segments" / name).read_bytes()
        except FileNotFoundError:
            raise FileWentAway(name) from None  # compacted meanwhile: read_store_still reads again
        yield data[: data.rfind(b"\n") + 1]


def tagged_per_stream(data_dir: Path, tag: str) -> dict[str, int]:
    """Lines holding ``tag`` in each worker's segments (``w00``, ``w01``, ...)."""
    out: dict[str, int] = {}
    for path in (data_dir / "segments").glob("w*-*.ndjson"):
        n = sum(1 for line in path.read_bytes().splitlines() if tag.encode() in line)
        out[path.name[:3]] = out.get(path.name[:3], 0) + n
    return out


def _read_store(data_dir: Path, files: tuple[tuple[str, ...], tuple[str, ...]]) -> list[dict]:
    _, pq = files
    out = []
    for data in uncompacted_lines(data_dir, files):
        out.extend(derive_request(orjson.loads(line)) for line in data.splitlines())
    if pq:
        import duckdb

        con = duckdb.connect()
        try:
            cur = con.execute("SELECT * FROM read_parquet(?)", [[str(data_dir / "parquet" / n) for n in pq]])
        except duckdb.IOException:
            return out
        cols = [d[0] for d in cur.description]
        for row in cur.fetchall():
            ev = {c: v for c, v in zip(cols, row, strict=True) if v is not None}
            for key in ("params", "labels"):
                if isinstance(ev.get(key), str):
                    ev[key] = orjson.loads(ev[key])
            out.append(ev)
        con.close()
    return out


def http_json(http_port: int, path: str, **params: str) -> Any:
    """GET a logs service's JSON API on 127.0.0.1."""
    url = f"http://{HOST}:{http_port}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=30) as resp:
        return orjson.loads(resp.read())


def post_ndjson(http_port: int, body: bytes | list[dict], timeout: float = 30) -> Any:
    """POST NDJSON lines (or events, one line each) to a logs service's /api/v1/logs on
    127.0.0.1; its JSON answer."""
    if not isinstance(body, bytes):
        body = b"".join(orjson.dumps(e) + b"\n" for e in body)
    req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return orjson.loads(resp.read())


def metric_total(http_port: int, name: str) -> float:
    """The sum of a metric's labelled series on a logs service's /metrics."""
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))
