#!/usr/bin/env python3
"""Many connections on the same cores hammering the syslog and JSON-lines ports, from C.

Compiles bench/socket_flood.c with ``cc`` (skips, saying so, when there is none), starts
``logmesh logs`` of this tree on free ports, and runs the C generator against each port:
``--conns`` nonblocking connections on one thread write numbered lines as fast as the
service reads them for ``--seconds``, then half-close (the last line of each without its
newline with ``--unterminated``) and wait for the service to close its side. Then it asks
the service how many events each connection has (``/api/v1/stats``, by ``service.name``) and
prints, per port: lines written and stored (each connection's count must match: none lost,
none twice), lines/s from the first write until the service had read every connection to its
end (the socket buffers hold seconds of lines), how evenly the connections were served (min, median, max lines a
connection; max/min), connections the service closed early, and the service's CPU seconds.

    .venv/bin/python bench/socket_flood.py --conns 64 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_healthz(http_port: int, tries: int) -> None:
    """Until the service on ``http_port`` answers /healthz (at most ``tries`` tenths of a second)."""
    for _ in range(tries):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


def per_service(http_port: int, prefix: str) -> dict[str, int]:
    """Events per service.name from /api/v1/stats (the store's own counts: no query)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/stats", timeout=300) as r:
        services = json.load(r)["services"]
    return {k: v for k, v in services.items() if k.startswith(prefix)}


def run(args: argparse.Namespace, binary: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="socket-flood-"))
    http_port, syslog_port, jsonl_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = subprocess.Popen(
        [sys.executable, "-m", "logmesh", "logs", "--standalone", "--no-supervise", "--port", "0",
         "--http-port", str(http_port), "--syslog-port", str(syslog_port), "--jsonl-port",
         str(jsonl_port), "--data-dir", str(work / "data"), "--max-connections",
         str(max(1024, 4 * args.conns))], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=open(work / "logs.log", "wb"), start_new_session=True)
    try:
        wait_healthz(http_port, 300)
        print(f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, {args.conns} connections, "
              f"{args.seconds:g} s a port{', last line unterminated' if args.unterminated else ''}")
        for mode, port in (("syslog", syslog_port), ("jsonl", jsonl_port)):
            cpu0, t0 = cpu_seconds(logs.pid), time.monotonic()
            out = subprocess.run([str(binary), "127.0.0.1", str(port), str(args.conns),
                                  str(args.seconds), mode, mode, "1" if args.unterminated else "0"],
                                 capture_output=True, text=True, timeout=args.seconds + 900)
            wall = time.monotonic() - t0
            if out.returncode != 0:
                raise SystemExit(f"socket_flood {mode}: {out.stderr}")
            written, closed_early = {}, 0
            for line in out.stdout.splitlines():
                _, i, _, n, _, eof = line.split()
                written[f"{mode}-{i}"] = int(n)
                closed_early += eof != "1"
            total = sum(written.values())
            stored: dict[str, int] = {}
            for _ in range(200):  # until the store has caught up (bounded)
                stored = per_service(http_port, f"{mode}-")
                if sum(stored.values()) >= total:
                    break
                time.sleep(0.25)
            cpu = cpu_seconds(logs.pid) - cpu0
            wrong = {k: (n, stored.get(k, 0)) for k, n in written.items() if stored.get(k, 0) != n}
            counts = sorted(written.values())
            print(f"{mode:6} written {total:>9,} stored {sum(stored.values()):>9,} "
                  f"connections with a wrong count {len(wrong)} {dict(list(wrong.items())[:3])}; "
                  f"{total / wall:,.0f} lines/s stored (written in {args.seconds:g} s, stored and closed in {wall:.1f} s); per connection min {counts[0]:,} median "
                  f"{int(statistics.median(counts)):,} max {counts[-1]:,} "
                  f"(max/min {counts[-1] / max(counts[0], 1):.2f}); not closed by the service "
                  f"{closed_early}; service CPU {cpu:.1f} s")
    finally:
        logs.send_signal(signal.SIGTERM)
        try:
            logs.wait(30)
        except subprocess.TimeoutExpired:
            logs.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--unterminated", action="store_true",
                    help="each connection's last line without its newline")
    args = ap.parse_args()
    cc = shutil.which("cc")
    if cc is None:
        print("skipped: no C compiler (cc) on this machine")
        return
    binary = Path(tempfile.mkdtemp(prefix="socket-flood-bin-")) / "socket_flood"
    subprocess.run([cc, "-O2", "-Wall", "-o", str(binary), str(ROOT / "bench" / "socket_flood.c")],
                   check=True)
    run(args, binary)


if __name__ == "__main__":
    main()
