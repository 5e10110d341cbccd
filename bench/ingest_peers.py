#!/usr/bin/env python3
"""Ingest benchmarks against peers: the chapter's Node logs service, rsyslogd, or any server.

One measurement (``measure``): start the server in its own process group,
wait until it listens, run ``bench/loadgen.py`` as a separate process with C
connections and E events, poll the number of events on disk until it reaches E
or stops growing (bounded), stop the server, and report

* ``events_per_s``: events on disk / (time of the last growth on disk - first
  byte sent), on the system-wide monotonic clock; "on disk" means written to
  the file (page cache), not fsync'ed;
* ``cpu_s`` and ``cpu_s_per_M``: utime+stime (+cutime+cstime of reaped
  children) of every process in the server's process group, from
  /proc/<pid>/stat, from "listening" to "done", per million stored events;
* ``peak_rss_mb``: the largest sum of VmHWM (/proc/<pid>/status) over the
  group's processes, sampled every 100 ms (a node cluster is master + worker);
* ``on_disk`` vs ``sent``, ``lost`` and ``loss_pct`` (``held_until_stop``:
  events that reached the file only once the server was stopped), and with ``verify`` the
  number of distinct event numbers found, duplicates and unnumbered lines.

Library use (from bench/, or with bench/ on sys.path)::

    from ingest_peers import measure, node_peer, rsyslog_peer, logmesh_peer, free_port
    p = node_peer("/tmp/w", free_port(), fixed=True, quiet=True)
    r = measure(p.cmd, p.port, p.count, connections=16, events=300_000, cwd=p.cwd)
    # any server: a command, its port, and a callable giving the events on disk
    p = logmesh_peer(["logmesh", "logs", "--port", str(port), "--data-dir", d], port, d)
    r = measure(p.cmd, p.port, p.count, 16, 300_000, verify_paths=p.paths)

CLI::

    python bench/ingest_peers.py       # node-book, node-fixed, rsyslog (brief, best) x 1,4,16 conns
    python bench/ingest_peers.py --peers rsyslog:linkedlist-async -c 16 -n 300000
    python bench/ingest_peers.py --server-cmd 'logmesh logs --port {port} --data-dir {workdir}/data' \\
        --count-glob '{workdir}/data/segments/*.ndjson' --name logmesh
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from loadgen import event_numbers  # noqa: E402
from peers import rsyslog  # noqa: E402
from peers.rsyslog import stop_process_group, wait_listening  # noqa: E402

LOADGEN = HERE / "loadgen.py"
BOOK_LOGS_JS = HERE / "peers" / "book_logs.js"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- counting on disk

class LineCounter:
    """Incremental count of '\\n' over files matching globs (append-only files).

    Reads only the bytes added since the previous call, so polling it every few
    milliseconds costs little; a file that shrank or vanished is recounted.
    Callable: ``counter()`` returns the current total.
    """

    def __init__(self, *patterns: str | os.PathLike) -> None:
        self.patterns = [str(p) for p in patterns]
        self._seen: dict[str, tuple[int, int]] = {}  # path -> (offset, lines)

    def paths(self) -> list[str]:
        out: set[str] = set()
        for p in self.patterns:
            if glob.has_magic(p):
                out.update(glob.glob(p))
            else:
                out.add(p)
        return sorted(out)

    def __call__(self) -> int:
        total = 0
        live = {}
        for path in self.paths():
            off, lines = self._seen.get(path, (0, 0))
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < off:
                        off, lines = 0, 0
                    f.seek(off)
                    while chunk := f.read(1 << 20):
                        lines += chunk.count(b"\n")
                        off += len(chunk)
            except FileNotFoundError:
                continue
            live[path] = (off, lines)
            total += lines
        self._seen = live
        return total


def scan_numbers(paths: Sequence[str | os.PathLike], events: int, first: int = 0) -> dict:
    """Event numbers found in stored lines: distinct ones in range, duplicates, lines without one."""
    seen = bytearray(events)
    distinct = dups = unnumbered = out_of_range = 0
    for path in paths:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            continue
        with f:
            for line in f:
                if not line.strip():
                    continue
                n = event_numbers(line)
                if n is None:
                    unnumbered += 1
                    continue
                i = n - first
                if not 0 <= i < events:
                    out_of_range += 1
                elif seen[i]:
                    dups += 1
                else:
                    seen[i] = 1
                    distinct += 1
    return {"distinct": distinct, "duplicates": dups, "unnumbered": unnumbered,
            "out_of_range": out_of_range}


# ----------------------------------------------------------------- /proc accounting

def _group_stats(pgid: int) -> list[tuple[int, list[bytes]]]:
    """``(pid, /proc/pid/stat fields after the command)`` of each live process of a group."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[2]) == pgid:  # fields[0]=state, [1]=ppid, [2]=pgrp
            out.append((int(name), fields))
    return out


def group_cpu_seconds(pgid: int) -> float:
    """utime+stime+cutime+cstime summed over the live processes of a process group."""
    ticks = sum(sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
                for _, fields in _group_stats(pgid))
    return ticks / CLK_TCK


def group_hwm_kb(pgid: int) -> int:
    """Sum of VmHWM (peak resident set) over the live processes of a process group."""
    kb = 0
    for pid, _ in _group_stats(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kb += int(line.split()[1])
                        break
        except OSError:
            continue
    return kb


class _RssSampler(threading.Thread):
    def __init__(self, pgid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pgid, self.interval = pgid, interval
        self.peak_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_kb = max(self.peak_kb, group_hwm_kb(self.pgid))
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join(2)
        self.peak_kb = max(self.peak_kb, group_hwm_kb(self.pgid))
        return self.peak_kb


# ----------------------------------------------------------------- peers

@dataclass
class Peer:
    """How to run one server: its command, port, events-on-disk counter and files to verify."""
    name: str
    cmd: list[str]
    port: int
    count: Callable[[], int]
    paths: Callable[[], list[str]]
    cwd: str | None = None
    env: dict[str, str] | None = None
    lines: bool = False  # the server reads '\n'-terminated lines, not ¶ packets
    workdir: str | None = None
    extra: dict = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_peer(workdir: str | os.PathLike, port: int, *, fixed: bool = False, quiet: bool = False,
              cluster: bool = True, name: str | None = None) -> Peer:
    """The chapter's Node logs service (bench/peers/book_logs.js) writing <workdir>/log.txt."""
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise FileNotFoundError("node not found: apt-get install -y nodejs")
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    out = wd / "log.txt"
    cmd = [node, str(BOOK_LOGS_JS), "--port", str(port), "--output", str(out)]
    cmd += ["--fixed-framing"] if fixed else []
    cmd += ["--quiet"] if quiet else []
    cmd += [] if cluster else ["--no-cluster"]
    counter = LineCounter(out)
    return Peer(name or ("node-fixed" if fixed else "node-book") + ("-quiet" if quiet and not fixed else ""),
                cmd, port, counter, counter.paths, cwd=str(wd), workdir=str(wd))


def rsyslog_peer(workdir: str | os.PathLike, port: int,
                 variant: str = rsyslog.DEFAULT_VARIANT) -> Peer:
    """rsyslogd (imptcp -> ruleset -> omfile, see bench/peers/rsyslog.py) writing <workdir>/log.txt."""
    wd = Path(workdir).resolve()
    cmd, out = rsyslog.prepare(port, wd, variant)
    counter = LineCounter(out)
    return Peer(f"rsyslog:{variant}", cmd, port, counter, counter.paths, cwd=str(wd), lines=True,
                workdir=str(wd))


def logmesh_peer(cmd: Sequence[str], port: int, data_dir: str | os.PathLike,
                 name: str = "logmesh") -> Peer:
    """The logmesh logs service: events on disk = lines across <data_dir>/segments/*.ndjson."""
    counter = LineCounter(Path(data_dir).resolve() / "segments" / "*.ndjson")
    return Peer(name, list(cmd), port, counter, counter.paths)


def start_peer(peer: Peer, *, ready_timeout: float = 20.0,
               stdout: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start a peer in its own process group; return once its port accepts connections."""
    return start_server(peer.cmd, peer.port, cwd=peer.cwd, env=peer.env, stdout=stdout,
                        stderr=Path(peer.workdir) / "server.stderr" if peer.workdir else None,
                        ready_timeout=ready_timeout)


def stop_peer(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the peer's process group, SIGKILL what is left after ``timeout``."""
    stop_process_group(proc, timeout)


def start_server(cmd: Sequence[str], port: int, *, cwd: str | os.PathLike | None = None,
                 env: dict[str, str] | None = None, stdout: str | os.PathLike | None = None,
                 stderr: str | os.PathLike | None = None,
                 ready_timeout: float = 20.0) -> subprocess.Popen:
    """Popen ``cmd`` in a new session (stdout to ``stdout`` or /dev/null); wait until it listens."""
    out = open(stdout, "ab") if stdout else subprocess.DEVNULL
    err = open(stderr, "w+b") if stderr else tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env={**os.environ, **(env or {})},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
    proc._bench_stderr = err  # type: ignore[attr-defined]
    try:
        wait_listening(port, proc, ready_timeout)
    except BaseException as exc:
        stop_process_group(proc)
        tail = _stderr_text(proc, 1500).strip()
        if tail and isinstance(exc, RuntimeError | TimeoutError):
            raise type(exc)(f"{exc}; {shlex.join(cmd)}; its stderr:\n{tail}") from None
        raise
    return proc


def _stderr_text(proc: subprocess.Popen, limit: int = 4000) -> str:
    err = getattr(proc, "_bench_stderr", None)
    if err is None:
        return ""
    try:
        err.flush()
        err.seek(0)
        data = err.read()
    except (OSError, ValueError):
        return ""
    finally:
        try:
            err.close()
        except OSError:
            pass
    return data.decode(errors="replace")[-limit:] if len(data) > limit else data.decode(errors="replace")


# ----------------------------------------------------------------- one measurement

def measure(start_server_cmd: Sequence[str], port: int, count_on_disk_fn: Callable[[], int],
            connections: int, events: int, *, lines: bool = False,
            cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
            server_stdout: str | os.PathLike | None = None,
            verify_paths: Callable[[], list[str]] | None = None,
            ready_timeout: float = 20.0, loadgen_timeout: float = 120.0,
            settle: float = 2.0, drain_timeout: float = 120.0, poll: float = 0.01,
            batch_bytes: int = 0, rate: float = 0.0, seed: int = 1, name: str = "",
            loadgen_args: Sequence[str] = (), warmup: float = 0.0) -> dict:
    """Start the server, load it, wait for the disk, stop it; return the measurement.

    ``start_server_cmd``: argv of a server that listens on ``127.0.0.1:port``
    (it runs in its own process group, which is killed at the end).
    ``count_on_disk_fn()``: events stored so far (called every ``poll`` s;
    make it incremental, e.g. ``LineCounter``). Done when it reaches
    ``events`` or has not grown for ``settle`` s after the load generator
    finished; never later than ``drain_timeout`` s after that. ``rate``: offered
    load in events/s (0: as fast as the server takes it).

    ``events_per_s`` = on_disk / (last growth - first byte sent);
    ``events_per_s_99`` times 99 % of the final count instead, which leaves out
    the last partial buffer of a writer that flushes on a timer (rsyslog's
    asyncWriting flushes every flushInterval = 1 s). ``on_disk_after_stop``
    counts again after a clean SIGTERM (what a writer flushed on exit);
    ``lost`` is ``sent`` minus that.
    """
    result: dict = {"name": name, "connections": connections, "events": events}
    proc = start_server(start_server_cmd, port, cwd=cwd, env=env, stdout=server_stdout,
                        ready_timeout=ready_timeout)
    time.sleep(warmup)  # e.g. until every worker of a --workers server listens, not only the first
    lg = None
    try:
        pgid = proc.pid
        base_count = count_on_disk_fn()
        cpu0 = group_cpu_seconds(pgid)
        sampler = _RssSampler(pgid)
        sampler.start()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        lg_cmd = [sys.executable, str(LOADGEN), "--port", str(port), "-c", str(connections),
                  "-n", str(events), "--seed", str(seed), "--timeout", str(loadgen_timeout)]
        lg_cmd += ["--lines"] if lines else []
        lg_cmd += ["--batch-bytes", str(batch_bytes)] if batch_bytes else []
        lg_cmd += ["--rate", str(rate)] if rate else []
        lg_cmd += list(loadgen_args)  # e.g. --syslog (bench/ingest_sockets.py)
        lg = subprocess.Popen(lg_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lg_deadline = time.monotonic() + loadgen_timeout + 60  # + payload building
        last = base_count
        t_change = time.monotonic()
        timeline: list[tuple[float, int]] = []
        lg_done_at = None
        timed_out = False
        while True:
            now = time.monotonic()
            if lg_done_at is None and lg.poll() is not None:
                lg_done_at = now
            c = count_on_disk_fn()
            if c != last:
                last, t_change = c, now
                timeline.append((now, c - base_count))
            if last - base_count >= events and lg_done_at is not None:
                break
            if lg_done_at is not None and now - max(t_change, lg_done_at) >= settle:
                break
            if lg_done_at is not None and now - lg_done_at > drain_timeout:
                timed_out = True
                break
            if lg_done_at is None and now > lg_deadline:
                lg.kill()
                timed_out = True
            time.sleep(poll)
        cpu = group_cpu_seconds(pgid) - cpu0
        peak_kb = sampler.stop()
        out, err = lg.communicate(timeout=30)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            lgr = json.loads(out.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f"loadgen failed (rc={lg.returncode}): {err.decode()[-2000:]}") from None
        on_disk = last - base_count
        secs = t_change - lgr["t_start"] if on_disk else None
        t99 = next((t for t, c in timeline if c >= 0.99 * on_disk), None)
        secs99 = t99 - lgr["t_start"] if t99 is not None and on_disk else None
        result.update({
            "sent": lgr["sent"],
            "on_disk": on_disk,
            "seconds": round(secs, 4) if secs else None,
            "events_per_s": round(on_disk / secs) if secs else 0,
            "events_per_s_99": round(0.99 * on_disk / secs99) if secs99 else 0,
            "cpu_s": round(cpu, 3),
            "cpu_s_per_M": round(cpu / (on_disk / 1e6), 2) if on_disk else None,
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "loadgen_send_s": lgr["seconds"],
            "loadgen_cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 3),
            "loadgen_failed_events": lgr["failed_events"],
            "reconnects": lgr["reconnects"],
            "mean_event_bytes": lgr["mean_event_bytes"],
            "drain_timed_out": timed_out,
            "server_alive": proc.poll() is None,
            "offered_rate": rate or None,
        })
    finally:
        if lg is not None and lg.poll() is None:
            lg.kill()
            lg.wait(10)
        stop_process_group(proc)
    if "sent" in result:
        final = count_on_disk_fn() - base_count
        result["on_disk_after_stop"] = final
        # events the server held in memory until told to stop (not on disk when timed)
        result["held_until_stop"] = final - result["on_disk"]
        result["lost"] = result["sent"] - final
        result["loss_pct"] = round(100.0 * result["lost"] / result["sent"], 2) if result["sent"] else 0.0
    stderr = _stderr_text(proc)
    result["server_restarts"] = stderr.count(" died")
    if stderr.strip() and (result["server_restarts"] or not result.get("server_alive", True)):
        result["server_stderr_tail"] = stderr[-600:]
    if verify_paths is not None:
        v = scan_numbers(verify_paths(), events)
        result.update({"verified_distinct": v["distinct"], "duplicates": v["duplicates"],
                       "unnumbered_lines": v["unnumbered"]})
    return result


def measure_peer(peer: Peer, connections: int, events: int, *, verify: bool = True,
                 **kw) -> dict:
    """``measure`` for a ``Peer`` (fresh output assumed: the counter starts from what is there)."""
    r = measure(peer.cmd, peer.port, peer.count, connections, events, lines=peer.lines,
                cwd=peer.cwd, env=peer.env, verify_paths=peer.paths if verify else None,
                name=peer.name, **kw)
    r.update(peer.extra)
    return r


# ----------------------------------------------------------------- CLI

COLUMNS = [("peer", "name", "{}"), ("conns", "connections", "{}"), ("sent", "sent", "{}"),
           ("on disk", "on_disk_after_stop", "{}"), ("loss %", "loss_pct", "{:.2f}"),
           ("events/s", "events_per_s", "{:,}"), ("best ev/s", "events_per_s_best", "{:,}"),
           ("ev/s to 99%", "events_per_s_99", "{:,}"),
           ("held@stop", "held_until_stop", "{}"), ("CPU s/M", "cpu_s_per_M", "{}"),
           ("peak RSS MB", "peak_rss_mb", "{}"), ("restarts", "server_restarts", "{}"),
           ("reconn", "reconnects", "{}"), ("dups", "duplicates", "{}")]


def table(rows: list[dict]) -> str:
    head = [c[0] for c in COLUMNS]
    body = [[("-" if r.get(k) is None else f.format(r[k])) for _, k, f in COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    fmt = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([fmt(head), sep] + [fmt(b) for b in body])


def _make_peer(spec: str, workdir: Path, port: int, a: argparse.Namespace) -> Peer:
    if spec == "node-book":
        return node_peer(workdir, port)
    if spec == "node-book-quiet":
        return node_peer(workdir, port, quiet=True)
    if spec == "node-fixed":
        return node_peer(workdir, port, fixed=True, quiet=True)
    if spec == "node-fixed-print":
        return node_peer(workdir, port, fixed=True, name="node-fixed-print")
    if spec == "rsyslog" or spec.startswith("rsyslog:"):
        return rsyslog_peer(workdir, port, spec.partition(":")[2] or rsyslog.DEFAULT_VARIANT)
    base, _, fsync = spec.partition(":")
    if base in ("logmesh", "logmesh-w2") and fsync in ("", "batch", "off", "always"):
        workers = 2 if base == "logmesh-w2" else 1
        data = workdir / "data"
        cmd = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--port", str(port),
               "--http-port", str(free_port()), "--data-dir", str(data), "--fsync", fsync or "batch",
               "--workers", str(workers),
               # one segment per run: sealing one starts its compaction to Parquet (for search,
               # ~7-10 CPU s per million events: bench/derive.py), a background job no peer has
               "--max-segment-size", "1GB"]
        if workers == 1:
            cmd.append("--no-supervise")  # a supervisor forks only to restart; one process is fairer
        return logmesh_peer(cmd, port, data, name=f"logmesh --workers {workers}"
                            + (f" --fsync {fsync}" if fsync else ""))
    if spec == "custom":
        subst = {"port": port, "workdir": workdir}
        cmd = [x.format(**subst) for x in shlex.split(a.server_cmd)]
        counter = LineCounter(*(g.format(**subst) for g in a.count_glob))
        return Peer(a.name or "custom", cmd, port, counter, counter.paths, lines=a.lines,
                    workdir=str(workdir))
    raise SystemExit(f"unknown peer {spec!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Ingest benchmark of log peers (see module doc).")
    ap.add_argument("--peers", default="node-book,node-fixed,rsyslog,rsyslog:linkedlist-txflush",
                    help="comma list: logmesh[-w2][:batch|off|always] (--fsync), node-book, node-book-quiet, node-fixed, "
                         "node-fixed-print, "
                         f"rsyslog[:variant] (variants: {', '.join(rsyslog.VARIANTS)})")
    ap.add_argument("-c", "--connections", default="1,4,16", help="comma list")
    ap.add_argument("-n", "--events", type=int, default=300_000)
    ap.add_argument("--book-events", type=int, default=300_000,
                    help="events for the chapter's Node service as written (node-book*): at ~15k/s "
                         "and losing most of them, it needs no more to show its loss")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is kept")
    ap.add_argument("--server-cmd", help="a custom server; {port} and {workdir} are substituted")
    ap.add_argument("--count-glob", action="append", default=[],
                    help="files whose lines are the custom server's events ({workdir} substituted)")
    ap.add_argument("--name", help="name of the custom server in the table")
    ap.add_argument("--lines", action="store_true", help="the custom server reads \\n-terminated lines")
    ap.add_argument("--workdir", default=str(HERE / "out" / "ingest"))
    ap.add_argument("--keep", action="store_true", help="keep the servers' output files")
    ap.add_argument("--no-verify", action="store_true", help="skip the per-number check of the files")
    ap.add_argument("--rate", type=float, default=0.0, help="offered events/s (default: saturate)")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--drain-timeout", type=float, default=120.0)
    ap.add_argument("--json", help="also write all runs as JSON to this file")
    a = ap.parse_args(argv)
    # a SIGTERM (e.g. from `timeout`) unwinds through the finally blocks that stop servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    specs = [s for s in a.peers.split(",") if s]
    if a.server_cmd:
        if not a.count_glob:
            ap.error("--server-cmd needs --count-glob")
        specs = ["custom"]
    conns = [int(x) for x in a.connections.split(",")]
    root = Path(a.workdir)
    runs: list[dict] = []
    cells: dict[tuple[str, int], list[dict]] = {(spec, c): [] for spec in specs for c in conns}
    # Round by round, every peer once per round: a slow spell of the shared machine then hits
    # every peer alike, and ratios can be taken within a round (run_all.py does).
    for rep in range(a.repeat):
        for spec in specs:
            for c in conns:
                wd = root / f"{spec.replace(':', '-')}-c{c}-r{rep}"
                shutil.rmtree(wd, ignore_errors=True)
                wd.mkdir(parents=True)
                try:
                    peer = _make_peer(spec, wd, free_port(), a)
                    n = min(a.events, a.book_events) if spec.startswith("node-book") else a.events
                    r = measure_peer(peer, c, n, verify=not a.no_verify, settle=a.settle,
                                     drain_timeout=a.drain_timeout, rate=a.rate)
                finally:
                    if not a.keep:
                        shutil.rmtree(wd, ignore_errors=True)
                r["round"] = rep
                print(json.dumps(r), file=sys.stderr, flush=True)
                runs.append(r)
                cells[(spec, c)].append(r)
    rows: list[dict] = []
    for cell in cells.values():
        if len(cell) == 1:
            rows.append(cell[0])
        else:
            med = dict(min(cell, key=lambda r: abs(
                r["events_per_s"] - statistics.median(x["events_per_s"] for x in cell))))
            med["name"] = f"{med['name']} (median of {len(cell)})"
            med["events_per_s_best"] = max(x["events_per_s"] for x in cell)
            rows.append(med)
    print(table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps({"events": a.events, "runs": runs, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
