#!/usr/bin/env python3
"""Run Debian's rsyslogd as an unprivileged, foreground ingest peer.

``rsyslogd -n -f <conf> -i <pidfile>`` with its own work directory, an imptcp
input on a loopback port feeding a ruleset whose queue and omfile settings
come from ``VARIANTS`` (template: ``rsyslog.conf`` next to this file), writing
one line per received line to ``<workdir>/log.txt``.

Library::

    from peers import rsyslog
    with rsyslog.Rsyslog(port, workdir, variant="direct-async") as rs:  # returns when listening
        ...                                                              # send lines to port
    rs.count_lines()                                                     # lines on disk

CLI (foreground until Ctrl-C, then prints the line count)::

    python bench/peers/rsyslog.py --port 5514 --workdir /tmp/rs [--variant NAME] [--render]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "rsyslog.conf"

_ASYNC = 'asyncWriting="on" ioBufferSize="@BUF@" flushOnTXEnd="off" flushInterval="1"'
_SYNC = 'asyncWriting="off" ioBufferSize="@BUF@" flushOnTXEnd="off" flushInterval="1"'
_TX = 'asyncWriting="off" ioBufferSize="@BUF@" flushOnTXEnd="on"'
_ASYNC_TX = 'asyncWriting="on" ioBufferSize="@BUF@" flushOnTXEnd="on" flushInterval="1"'
_LL = ('queue.type="LinkedList" queue.size="500000" queue.workerThreads="1" '
       'queue.dequeueBatchSize="@BATCH@"')

# name -> (imptcp threads, ruleset queue parameters, omfile parameters)
VARIANTS: dict[str, tuple[int, str, str]] = {
    # The brief's shape: Direct ruleset queue, omfile with asynchronous writing.
    "direct-async": (2, 'queue.type="Direct"', _ASYNC.replace("@BUF@", "256k")),
    "direct-async-64k": (2, 'queue.type="Direct"', _ASYNC.replace("@BUF@", "64k")),
    "direct-async-1m": (2, 'queue.type="Direct"', _ASYNC.replace("@BUF@", "1m")),
    "direct-async-t1": (1, 'queue.type="Direct"', _ASYNC.replace("@BUF@", "256k")),
    "direct-async-t4": (4, 'queue.type="Direct"', _ASYNC.replace("@BUF@", "256k")),
    # The input threads write the buffer themselves when it is full; NB the last
    # partial buffer stays in memory until rsyslogd stops (no timed flush).
    "direct-sync": (2, 'queue.type="Direct"', _SYNC.replace("@BUF@", "256k")),
    # rsyslog's default omfile behaviour: write out at the end of every batch.
    "direct-txflush": (2, 'queue.type="Direct"', _TX.replace("@BUF@", "256k")),
    "direct-async-txflush": (2, 'queue.type="Direct"', _ASYNC_TX.replace("@BUF@", "256k")),
    # A real in-memory queue between the input and the action.
    "linkedlist-async": (2, _LL.replace("@BATCH@", "1024"), _ASYNC.replace("@BUF@", "256k")),
    "linkedlist-sync": (2, _LL.replace("@BATCH@", "1024"), _SYNC.replace("@BUF@", "256k")),
    "linkedlist-txflush": (2, _LL.replace("@BATCH@", "1024"), _TX.replace("@BUF@", "256k")),
}
DEFAULT_VARIANT = "direct-async"


def rsyslogd_path() -> str:
    path = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
    if not path:
        raise FileNotFoundError("rsyslogd not found: apt-get install -y rsyslog")
    return path


def render_conf(port: int, workdir: Path, output: Path, variant: str = DEFAULT_VARIANT,
                address: str = "127.0.0.1") -> str:
    threads, queue, omfile = VARIANTS[variant]
    text = TEMPLATE.read_text()
    for k, v in {"@WORKDIR@": str(workdir), "@PORT@": str(port), "@ADDRESS@": address,
                 "@OUTPUT@": str(output), "@IMPTCP_THREADS@": str(threads),
                 "@RULESET_QUEUE@": queue, "@OMFILE@": omfile}.items():
        text = text.replace(k, v)
    return text


def prepare(port: int, workdir: Path | str, variant: str = DEFAULT_VARIANT) -> tuple[list[str], Path]:
    """Write ``<workdir>/rsyslog.conf``; return (the rsyslogd command, the output file)."""
    workdir = Path(workdir).resolve()
    (workdir / "spool").mkdir(parents=True, exist_ok=True)
    output = workdir / "log.txt"
    conf = workdir / "rsyslog.conf"
    conf.write_text(render_conf(port, workdir / "spool", output, variant))
    cmd = [rsyslogd_path(), "-n", "-f", str(conf), "-i", str(workdir / "rsyslogd.pid")]
    return cmd, output


def count_lines(path: Path | str) -> int:
    """Number of '\\n' in a file (0 when it does not exist)."""
    n = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
    except FileNotFoundError:
        return 0
    return n


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0,
                   host: str = "127.0.0.1") -> None:
    """Return once ``host:port`` accepts a connection; raise if ``proc`` exits or on timeout."""
    end = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def stop_process_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the process group led by ``proc`` (started with start_new_session), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout)


class Rsyslog:
    """A running rsyslogd peer; ``start()`` returns when it listens."""

    def __init__(self, port: int, workdir: Path | str, variant: str = DEFAULT_VARIANT) -> None:
        self.port = port
        self.workdir = Path(workdir).resolve()
        self.variant = variant
        self.cmd, self.output = prepare(port, self.workdir, variant)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> Rsyslog:
        err = open(self.workdir / "rsyslogd.stderr", "wb")
        try:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True, cwd=self.workdir)
        finally:
            err.close()
        try:
            wait_listening(self.port, self.proc, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)

    def count_lines(self) -> int:
        return count_lines(self.output)

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="rsyslogd ingest peer (foreground)")
    ap.add_argument("--port", type=int, default=5514)
    ap.add_argument("--workdir", default="bench/out/rsyslog")
    ap.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    ap.add_argument("--render", action="store_true", help="print the configuration and exit")
    a = ap.parse_args(argv)
    if a.render:
        print(render_conf(a.port, Path(a.workdir) / "spool", Path(a.workdir) / "log.txt", a.variant))
        return 0
    rs = Rsyslog(a.port, a.workdir, a.variant)
    try:
        rs.start()
        print(f"rsyslogd {a.variant} listening on 127.0.0.1:{a.port}, writing {rs.output}", flush=True)
        while rs.proc is not None and rs.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        rs.stop()
    print(f"{rs.count_lines()} lines in {rs.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
