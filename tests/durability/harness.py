"""One real ``logmesh logs --standalone --no-supervise`` on its own data directory, and every
way the durability tests talk to it.

* :class:`LogsService` starts it (free ports, waits for ``/healthz``), stops it gracefully
  (SIGTERM, bounded: a process that does not exit in ``STOP_TIMEOUT`` s fails the caller)
  or with ``kill -9``, and speaks its three ingest paths: ``POST /api/v1/logs`` (acked by a
  200 ``{"accepted": n}``), the TCP batch of ``logmesh.shipper`` (acked by
  ``{"key":K,"errorcode":0,"acked":N}``, logs/ingest/tcp.py) and the book's packets (fire and
  forget).
* Every event a test sends carries a unique marker ``dm<run>n<i>`` in its message, so it is
  found by search (``q=dm<run>*``: a prefix of the marker word) and, independently, in the data directory's bytes
  (:func:`scan_disk`: complete segment lines, and the Parquet files compaction made).

The processes come from tests/support/procs.py, so they are the ones every other
integration test starts.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from logmesh.protocol import DELIMITER, encode
from tests.support.procs import HOST, Proc, Procs, read_store_still, uncompacted_lines
from tests.support.waiting import wait_for

STOP_TIMEOUT = 15.0  # SIGTERM must end the process within this, in every state
REPLY_TIMEOUT = 10.0  # an acked ingest must be answered (ack or refusal) within this
MAX_EPOCH_MS = 253_402_300_799_999  # the API's largest time (query/timerange.py)
MARK_RE = re.compile(r"dm[0-9a-f]{8}n\d+")
SMALL_SEGMENTS = ("--max-segment-size", "16KB")  # segments seal (and compact) within a few steps


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


class NoReply(AssertionError):
    """An acked ingest got no answer within REPLY_TIMEOUT (neither an ack nor a refusal)."""


class LogsService:
    """A logs service on ``data_dir``, restartable with the same data; ports change per start."""

    def __init__(self, workdir: Path, data_dir: Path, *args: str) -> None:
        self.procs = Procs(workdir)
        self.data_dir = Path(data_dir)
        self.args = list(args)
        self.proc: Proc | None = None
        self.tcp_port = self.http_port = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None

    def start(self, *extra: str, timeout: float = 30.0) -> None:
        assert self.proc is None, "already started"
        self.proc, self.tcp_port, self.http_port = self.procs.logs(self.data_dir, *self.args, *extra)
        try:
            wait_for(self.healthy, timeout, "/healthz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM; fails (after killing it) when the process is still there ``timeout`` s later."""
        proc, self.proc = self.proc, None
        assert proc is not None, "not started"
        proc.signal_group(signal.SIGTERM)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.stop(grace=0)
            raise AssertionError(f"logs did not exit within {timeout:.0f}s of SIGTERM\n"
                                 f"{proc.log_text()[-3000:]}") from None
        proc.stop(grace=0)  # closes its log file
        return proc.popen.returncode

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        assert proc is not None, "not started"
        proc.kill9()
        proc.stop(grace=0)

    def restart(self, *extra: str) -> None:
        self.stop()
        self.start(*extra)

    def close(self) -> None:
        """Kill whatever is still running (teardown)."""
        for proc in self.procs.procs:
            if proc.popen.poll() is None:
                proc.signal_group(signal.SIGKILL)
            proc.stop(grace=0)
        self.proc = None

    def log_tail(self, n: int = 3000) -> str:
        return "\n".join(f"--- {p.name} #{i} (exit {p.popen.returncode}) ---\n{p.log_text()[-n:]}"
                         for i, p in enumerate(self.procs.procs[-3:]))

    # -- HTTP --------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None,
                timeout: float = REPLY_TIMEOUT,
                content_type: str = "application/x-ndjson") -> tuple[int, Any]:
        """(status, JSON or text); raises TimeoutError/OSError when there is no answer."""
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=timeout)
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, orjson.loads(data)
        except orjson.JSONDecodeError:
            return resp.status, data.decode("utf-8", "replace")

    def healthy(self) -> bool:
        if not self.running:
            raise AssertionError(f"logs exited with {self.proc.popen.returncode if self.proc else '?'}"
                                 f"\n{self.log_tail()}")
        try:
            status, body = self.request("GET", "/healthz", timeout=2.0)
        except OSError:
            return False
        return status == 200 and isinstance(body, dict) and body.get("ok") is True

    def post(self, lines: list[bytes], timeout: float = REPLY_TIMEOUT) -> tuple[int, Any]:
        """``POST /api/v1/logs`` with NDJSON ``lines``; raises NoReply when unanswered."""
        try:
            return self.request("POST", "/api/v1/logs", b"\n".join(lines) + b"\n", timeout)
        except TimeoutError:
            raise NoReply(f"POST /api/v1/logs: no answer in {timeout:.0f}s") from None

    def search_all(self, q: str, page: int = 10_000) -> list[dict]:
        """Every event matching ``q`` at any time, paged with the cursor."""
        out: list[dict] = []
        cursor = None
        while True:
            path = f"/api/v1/search?q={q}&from=0&to={MAX_EPOCH_MS}&limit={page}&order=asc"
            if cursor:
                path += f"&cursor={cursor}"
            status, body = self.request("GET", path, timeout=30.0)
            assert status == 200, f"search {q!r}: {status} {body}"
            out.extend(body["events"])
            cursor = body.get("next_cursor")
            if not cursor:
                return out

    def stats(self) -> dict:
        status, body = self.request("GET", "/api/v1/stats", timeout=30.0)
        assert status == 200, f"stats: {status} {body}"
        return body

    # -- TCP ---------------------------------------------------------------------------------------
    def tcp_batch(self, events: list[list], *, key: int, instance: str, service: str = "dur",
                  packet: bytes | None = None, timeout: float = REPLY_TIMEOUT) -> dict:
        """Send one shipper batch (``[n, ts, raw, extra]`` events) and return the reply packet.

        ``packet`` sends these exact bytes instead (hostile frames); raises NoReply when
        nothing comes back in ``timeout`` seconds.
        """
        if packet is None:
            packet = encode({"uri": "/logs", "method": "POST", "key": key, "ack": True,
                             "params": {"service": service, "instance": instance, "events": events}})
        with socket.create_connection((HOST, self.tcp_port), timeout=5) as s:
            s.sendall(packet)
            s.settimeout(timeout)
            buf = b""
            deadline = time.monotonic() + timeout
            while DELIMITER not in buf:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    raise NoReply(f"TCP batch key {key}: no reply in {timeout:.0f}s") from None
                if not chunk:
                    raise NoReply(f"TCP batch key {key}: connection closed without a reply")
                buf += chunk
        return orjson.loads(buf[:buf.index(DELIMITER)])

    def book(self, frames: list[bytes]) -> None:
        """Fire and forget: the book's packets, as a Node service's writeLog sends them."""
        with socket.create_connection((HOST, self.tcp_port), timeout=5) as s:
            s.sendall(b"".join(frames))


def book_frame(raw: str, **envelope: Any) -> bytes:
    return encode({"uri": "/logs", "method": "POST", "key": 0, "params": raw, **envelope})


def request_text(marker: str, **params: Any) -> str:
    """A logged request packet whose url.path carries the marker."""
    return orjson.dumps({"uri": f"/d/{marker}", "method": "POST", "params": {"m": marker, **params}}).decode()


# -- the data directory, read directly --------------------------------------------------------------
@dataclass
class DiskScan:
    markers: Counter = field(default_factory=Counter)  # marker -> events holding it
    events: int = 0  # complete segment lines that are JSON objects + Parquet rows
    bad_lines: int = 0  # complete segment lines that are not JSON (damage)
    bad_files: list[str] = field(default_factory=list)  # Parquet files DuckDB cannot read


def scan_disk(data_dir: Path) -> DiskScan:
    """What the store holds, as readers see it: a segment whose Parquet file exists is left out
    (store/reader.read_complete's rule), a segment's bytes after its last newline are not an event yet."""
    return read_store_still(Path(data_dir), _scan, tries=100)


def _scan(data_dir: Path, files: tuple[tuple[str, ...], tuple[str, ...]]) -> DiskScan:
    _, pq = files
    scan = DiskScan()
    for data in uncompacted_lines(data_dir, files):
        for line in data.splitlines():
            if not _is_object(line):  # damage: no event, and its remains may read as another's marker
                scan.bad_lines += 1
                continue
            scan.events += 1
            scan.markers.update(set(MARK_RE.findall(line.decode("utf-8", "replace"))))
    if pq:
        import duckdb

        con = duckdb.connect()
        try:
            for name in pq:
                path = str(data_dir / "parquet" / name)
                try:
                    rows = con.execute("SELECT message FROM read_parquet(?)", [path]).fetchall()
                except (duckdb.Error, OSError) as exc:
                    scan.bad_files.append(f"{name}: {str(exc)[:120]}")
                    continue
                scan.events += len(rows)
                for (message,) in rows:
                    scan.markers.update(set(MARK_RE.findall(message or "")))
        finally:
            con.close()
    return scan


def _is_object(line: bytes) -> bool:
    """A JSON object by orjson, or by msgspec (the writer's encoder; it reads 1e999 as inf)."""
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        pass
    try:
        return isinstance(msgspec.json.decode(line), dict)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False


def file_markers(path: Path) -> list[tuple[int, int, set[str]]]:
    """(start, end, markers) of every line of a segment file (end includes the newline)."""
    data = path.read_bytes()
    out = []
    pos = 0
    for line in data.splitlines(keepends=True):
        out.append((pos, pos + len(line), set(MARK_RE.findall(line.decode("utf-8", "replace")))))
        pos += len(line)
    return out


def parquet_markers(path: Path) -> set[str]:
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute("SELECT message FROM read_parquet(?)", [str(path)]).fetchall()
    except (duckdb.Error, OSError):
        return set()
    finally:
        con.close()
    return {m for (message,) in rows for m in MARK_RE.findall(message or "")}


def damage(path: Path, offset: int, length: int, fill: bytes) -> None:
    """Overwrite ``length`` bytes of ``path`` at ``offset`` with ``fill`` repeated (media damage)."""
    data = (fill * (length // len(fill) + 1))[:length]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def compacted(data_dir: Path) -> bool:
    """No sealed segment (one with an index beside it) is left waiting for compaction."""
    seg_dir = Path(data_dir) / "segments"
    return not any(idx.with_name(idx.name.removesuffix(".idx.json") + ".ndjson").exists()
                   for idx in seg_dir.glob("*.idx.json"))


def active_segments(data_dir: Path) -> list[Path]:
    seg_dir = Path(data_dir) / "segments"
    return [p for p in sorted(seg_dir.glob("*.ndjson"))
            if not p.with_name(p.name.removesuffix(".ndjson") + ".idx.json").exists()]
