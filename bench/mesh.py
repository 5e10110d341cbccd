"""The mesh's request path beside the chapter's Node mesh: wrk through each gateway to goods.

    .venv/bin/python bench/mesh.py [--rounds 3] [--seconds 10] [--json out.json]

Each round starts every mesh afresh, one after the other (the order alternates by round):
a logmesh distributor and logs service, then goods and a gateway, which are logmesh's
(``logmesh service goods``, ``logmesh gateway``, shipping on; ``logmesh-w2``: the gateway with
``--workers 2``, as ``logmesh up`` runs it on two cores; ``logmesh-noship``: both with
``--no-ship``; ``logmesh-base``: as ``logmesh``, its goods and gateway run from the checkout
given by ``--base``, to pair a change with the code it started from in the same rounds; four
diagnostics split shipping's cost, named only when asked for: ``logmesh-gwship`` where only the
gateway ships, ``logmesh-goodsship`` where only goods does, ``logmesh-acker`` where both ship to
bench/ack_only_logs.py, a stand-in logs node that acks each batch at once and stores nothing;
``logmesh-busy``: as ``logmesh-noship`` beside a neighbour that shares nothing with the mesh, a
Python busy loop at the acker's niceness, to tell the machine's share of a part's CPU a request
from the code's; ``logmesh-shipbusy``: as ``logmesh`` beside the same neighbour)
or the chapter's Node ``goods.js`` and ``gate.js`` from tests/interop/node with
their console printing off (bench/node_quiet.js), whose goods ships its packets to the same
logs service as the chapter's ``writeLog`` does. Three rows are posted, then wrk (Debian's)
drives ``GET /goods`` and ``POST /goods`` at each connection count for --seconds each.

Per cell: requests/s, p50 and p99 (wrk --latency), p99.9 and the slowest (a wrk script's
``done``), non-2xx answers and socket errors, CPU
per request of the mesh's request path (utime+stime of gateway and goods, shipping included,
from /proc; the gateway's share in the per-cell lines), the logs service's CPU per request
beside it (in the per-cell lines also its main thread's, the event loop that ingests: the rest
is its other threads, compaction, segment writes, queries), the gateway's sleeps a thousand
requests (its voluntary context switches: its loop waiting in epoll), the whole machine's
rescheduling and function-call IPIs and idle CPU time a request (/proc/interrupts, /proc/stat: on
a VM a vCPU that halts costs the host an exit and its wake-up an IPI), and the peak RSS (VmHWM) of
gateway plus goods. The table gives the median over rounds and, for each logmesh mesh, the median
(and range) of its ratio to the Node mesh taken within each round: the machine is shared,
and a slow spell weighs on both sides of a ratio alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from ingest_peers import free_port, group_cpu_seconds, group_hwm_kb  # noqa: E402

NODE_DIR = ROOT / "tests" / "interop" / "node"
POST_BODY = '{"name":"pen","category":"office","price":1.5}'
MESHES = ("logmesh", "logmesh-w2", "logmesh-noship", "node")  # and logmesh-base with --base
# which parts ship, by mesh kind (gateway, goods); any other logmesh kind: both
SHIPS = {"logmesh-noship": (False, False), "logmesh-busy": (False, False),
         "logmesh-gwship": (True, False), "logmesh-goodsship": (False, True)}


@dataclass
class Mesh:
    kind: str
    url: str
    parts: dict[str, subprocess.Popen]  # name -> process (own session: pgid == pid)
    peaks: dict[str, int] = field(default_factory=dict)
    logs_metrics: str = ""  # the logs service's /metrics: its fsyncs per cell

    def logs_fsyncs(self) -> float:
        """The logs service's fsyncs so far (one per group commit; 0 if it does not answer)."""
        try:
            with urllib.request.urlopen(self.logs_metrics, timeout=2) as r:
                text = r.read().decode()
        except (urllib.error.URLError, OSError, ValueError):
            return 0.0
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("logmesh_fsyncs_total"))

    def cpu(self, *names: str) -> float:
        return sum(group_cpu_seconds(self.parts[n].pid) for n in names if n in self.parts)

    def loop_cpu(self, name: str) -> float:
        """CPU seconds of a part's main thread (its event loop: for the logs service, ingest),
        as distinct from its other threads (the logs service's compaction, segment writes and
        queries); 0 for a part not running."""
        proc = self.parts.get(name)
        if proc is None:
            return 0.0
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return 0.0
        fields = stat[stat.rfind(b")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sleeps(self, name: str) -> int:
        """A part's main thread's voluntary context switches so far (its loop's waits)."""
        proc = self.parts.get(name)
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/status") as f:  # type: ignore[union-attr]
                return next(int(line.split()[1]) for line in f
                            if line.startswith("voluntary_ctxt_switches"))
        except (OSError, AttributeError, StopIteration):
            return 0

    def sample_rss(self) -> None:
        for name, proc in self.parts.items():
            self.peaks[name] = max(self.peaks.get(name, 0), group_hwm_kb(proc.pid))

    def stop(self) -> None:
        for proc in reversed(self.parts.values()):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.parts.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _spawn(argv: list[str], log: Path, root: Path = ROOT, **kw) -> subprocess.Popen:
    """A part in its own session, its stderr kept in ``log`` (shown if the mesh fails to start);
    ``root``: the checkout whose logmesh it runs."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("MESH_EXTRA_PATH"))))}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        return subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL,
                                stderr=err, env=env, cwd=root, **kw)


def _logmesh(log: Path, *args: str, supervise: bool = False,
             nice: int | None = None, root: Path = ROOT) -> subprocess.Popen:
    """``supervise``: under its own supervisor (--workers starts the workers there); the
    process group is the supervisor and its workers. ``nice``: run at that niceness."""
    return _spawn([*(["nice", "-n", str(nice)] if nice is not None else []),
                   sys.executable, "-m", "logmesh", *args,
                   "--supervise" if supervise else "--no-supervise"], log, root,
                  stdout=subprocess.DEVNULL)


def _node(log: Path, script: str, *args: str) -> tuple[subprocess.Popen, int]:
    proc = _spawn([shutil.which("node") or "node", "-r", str(HERE / "node_quiet.js"),
                   str(NODE_DIR / script), *args], log, stdout=subprocess.PIPE)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    return proc, int(json.loads(line)["data"]["port"])


def _http(method: str, url: str, body: str | None = None) -> int:
    req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            r.read()
            return r.status
    except (urllib.error.URLError, OSError):
        return 0


def start_mesh(kind: str, tmp: Path, logs_nice: int | None = None,
               base: Path | None = None) -> Mesh:
    d, lp, hp, gp, sp = (free_port() for _ in range(5))
    dist = f"127.0.0.1:{d}"
    logs = tmp / "stderr"
    parts = {"distributor": _logmesh(logs / "distributor", "distributor", "--port", str(d)),
             "logs": _logmesh(logs / "logs", "logs", "--port", str(lp), "--http-port", str(hp),
                              "--distributor", dist, "--data-dir", str(tmp / "logs"), nice=logs_nice)
             if kind != "logmesh-acker" else
             _spawn([sys.executable, str(HERE / "ack_only_logs.py"), "--port", str(lp),
                     "--distributor", dist], logs / "logs", stdout=subprocess.DEVNULL)}
    if kind in ("logmesh-busy", "logmesh-shipbusy"):  # not counted in the mesh's CPU: parts are read by name
        parts["neighbour"] = _spawn([sys.executable, "-c", "while True: pass"], logs / "neighbour")
    time.sleep(0.5)  # the logs node registered first, as in `logmesh up`
    if kind == "node":
        parts["goods"], _ = _node(logs / "goods", "goods.js", str(d))
        parts["gateway"], gp = _node(logs / "gateway", "gate.js", str(d))
    else:
        gw_ship, goods_ship = ("--ship" if on else "--no-ship" for on in SHIPS.get(kind, (True, True)))
        workers = kind == "logmesh-w2"  # the gateway's two workers, as `logmesh up` runs it
        root = base if kind == "logmesh-base" and base is not None else ROOT
        parts["goods"] = _logmesh(logs / "goods", "service", "goods", "--port", str(sp),
                                  "--distributor", dist, "--data-dir", str(tmp / "goods"), goods_ship,
                                  root=root)
        parts["gateway"] = _logmesh(logs / "gateway", "gateway", "--port", str(gp),
                                    "--distributor", dist, gw_ship,
                                    *(["--workers", "2"] if workers else []), supervise=workers,
                                    root=root)
    mesh = Mesh(kind, f"http://127.0.0.1:{gp}/goods", parts,
                 logs_metrics=f"http://127.0.0.1:{hp}/metrics")
    deadline = time.monotonic() + 30
    while _http("GET", mesh.url) != 200:
        if time.monotonic() > deadline:
            exits = {name: p.poll() for name, p in parts.items()}
            mesh.stop()
            tails = "".join(f"\n-- {name} (exit {exits[name]}):\n"
                            + (logs / name).read_text(errors="replace")[-1500:] for name in parts)
            raise TimeoutError(f"{kind}: GET /goods not routed within 30 s{tails}")
        time.sleep(0.2)
    time.sleep(1.0)  # every part has heard of every other (the logs node included)
    for _ in range(3):
        _http("POST", mesh.url, POST_BODY)
    return mesh


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
# wrk's --latency prints no percentile past 99: a loop stopped now and then (a full collection
# of the garbage collector, a burst of shipping) shows at p99.9 and in the slowest first, with
# wrk's closed loop putting only the requests in flight during a stop in the tail (µs here).
TAIL_LUA = ("done = function(summary, latency, requests)\n"
            "  io.write(string.format('tail p99.9 %d max %d\\n', latency:percentile(99.9), latency.max))\n"
            "end\n")


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    """requests, seconds, rps, p50/p99 (ms), non-2xx, socket errors from wrk --latency, and
    p99.9 and the slowest (ms) from the scripts' ``done`` (``TAIL_LUA``), when printed."""
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if m is None:
        raise ValueError(f"wrk printed no request count:\n{out}")
    seconds = float(m.group(2)) * (60 if m.group(3) == "m" else 1)
    pct = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+(?:us|ms|s))\s*$", out, re.M))
    if "50" not in pct or "99" not in pct:
        raise ValueError(f"wrk printed no 50%/99% latency:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    tail = re.search(r"^tail p99.9 (\d+) max (\d+)$", out, re.M)
    return {"requests": int(m.group(1)), "seconds": seconds,
            "rps": int(m.group(1)) / seconds, "p50_ms": _ms(pct["50"]), "p99_ms": _ms(pct["99"]),
            "p999_ms": float(tail.group(1)) / 1000 if tail else None,
            "max_ms": float(tail.group(2)) / 1000 if tail else None,
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0}


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def _profile(mesh: Mesh, seconds: float, where: Path, name: str) -> list[subprocess.Popen]:
    """py-spy on each Python part of ``mesh`` for the middle of a cell: one collapsed-stack
    file a part (``<name>-<part>.txt``; flamegraph.pl or speedscope read them)."""
    spy = _py_spy()
    where.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([spy, "record", "-r", "250", "--nonblocking", "-f", "raw",
                              "-d", str(max(1, int(seconds) - 2)), "-p", str(proc.pid),
                              "-o", str(where / f"{name}-{part}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for part, proc in mesh.parts.items() if mesh.kind != "node" and part != "distributor"]


def _perf(mesh: Mesh, seconds: float, where: Path, name: str) -> list[subprocess.Popen]:
    """``perf record`` on each part (Node's too) for the middle of a cell: CPU-clock samples,
    so a thread is sampled only while it runs (py-spy counts a preempted thread at its last
    line); ``perf report -i <name>-<part>.data --sort dso,sym`` reads them."""
    where.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen(["perf", "record", "-F", "499", "-q", "-p", str(proc.pid),
                              "-o", str(where / f"{name}-{part}.data"), "--", "sleep",
                              str(max(1, int(seconds) - 2))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for part, proc in mesh.parts.items() if part != "distributor"]


def machine_counts() -> dict[str, int]:
    """The whole machine's rescheduling and function-call IPIs (/proc/interrupts, summed over
    CPUs) and idle jiffies (/proc/stat): a wake-up sent to a halted vCPU is one RES, and on a VM
    each halt and wake-up is a trip through the host."""
    out: dict[str, int] = {}
    for line in Path("/proc/interrupts").read_text().splitlines():
        name, _, rest = line.strip().partition(":")
        if name in ("RES", "CAL"):
            out[name] = sum(int(x) for x in rest.split() if x.isdigit())
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    out["idle"] = int(cpu[4]) + int(cpu[5])
    return out


def cell(mesh: Mesh, method: str, conns: int, seconds: float, scripts: dict[str, Path],
         profile: Path | None = None, perf: Path | None = None) -> dict:
    before = (mesh.cpu("gateway", "goods"), mesh.cpu("logs"), mesh.cpu("gateway"),
              mesh.loop_cpu("logs"), mesh.sleeps("gateway"))
    fsyncs = mesh.logs_fsyncs()
    ipis = machine_counts()
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    argv += ["-s", str(scripts[method])]
    spies = _profile(mesh, seconds, profile, f"{mesh.kind}-{method}-{conns}") if profile else []
    spies += _perf(mesh, seconds, perf, f"{mesh.kind}-{method}-{conns}") if perf else []
    out = subprocess.run([*argv, mesh.url], capture_output=True, text=True, check=True).stdout
    for spy in spies:
        spy.wait()
    after = (mesh.cpu("gateway", "goods"), mesh.cpu("logs"), mesh.cpu("gateway"),
             mesh.loop_cpu("logs"), mesh.sleeps("gateway"))
    fsyncs = mesh.logs_fsyncs() - fsyncs
    ipis = {k: v - ipis[k] for k, v in machine_counts().items()}
    mesh.sample_rss()
    r = parse_wrk(out)
    n = max(r["requests"], 1)
    r.update(mesh=mesh.kind, method=method, connections=conns,
             cpu_us_per_req=(after[0] - before[0]) / n * 1e6,
             logs_cpu_us_per_req=(after[1] - before[1]) / n * 1e6,
             gateway_cpu_us_per_req=(after[2] - before[2]) / n * 1e6,
             logs_loop_cpu_us_per_req=(after[3] - before[3]) / n * 1e6,
             logs_fsyncs_per_s=fsyncs / seconds,
             gateway_sleeps_per_kreq=(after[4] - before[4]) / n * 1000,
             res_ipis_per_req=ipis["RES"] / n, cal_ipis_per_req=ipis["CAL"] / n,
             idle_us_per_req=ipis["idle"] * 1e6 / os.sysconf("SC_CLK_TCK") / n)
    return r


def summarise(runs: list[dict], meshes: list[str]) -> list[str]:
    keys = sorted({(r["method"], r["connections"]) for r in runs}, key=lambda k: (k[0] != "GET", k[1]))
    by = {(r["mesh"], r["method"], r["connections"], r["round"]): r for r in runs}
    rounds = sorted({r["round"] for r in runs})

    def med(mesh: str, k: tuple[str, int], field_: str) -> float | None:
        vals = [by[(mesh, *k, i)][field_] for i in rounds if (mesh, *k, i) in by]
        vals = [v for v in vals if v is not None]  # p99.9: none from a wrk without its script
        return statistics.median(vals) if vals else None

    def ratio(mesh: str, k: tuple[str, int]) -> str:
        per = sorted(by[(mesh, *k, i)]["rps"] / by[("node", *k, i)]["rps"] for i in rounds
                     if (mesh, *k, i) in by and ("node", *k, i) in by)
        if not per:
            return "-"
        return f"{statistics.median(per):.2f}x" + (f" ({per[0]:.2f}-{per[-1]:.2f})" if len(per) > 1 else "")

    head = "| cell | " + " | ".join(f"{m} req/s, p50/p99/p99.9 ms" for m in meshes) + " | " + \
        " | ".join(f"{m} / node" for m in meshes if m != "node") + " | " + \
        " | ".join(f"{m} CPU µs/req (logs)" for m in meshes) + " |"
    lines = [head, "|" + "---|" * (1 + len(meshes) * 2 + sum(m != "node" for m in meshes))]
    for k in keys:
        row = [f"{k[0]} {k[1]} conns"]
        for m in meshes:
            rps = med(m, k, "rps")
            row.append("-" if rps is None else
                       f"{rps:,.0f}, {med(m, k, 'p50_ms'):.2f}/{med(m, k, 'p99_ms'):.2f}/"
                       f"{med(m, k, 'p999_ms') or 0:.2f}")
        row += [ratio(m, k) for m in meshes if m != "node"]
        for m in meshes:
            cpu = med(m, k, "cpu_us_per_req")
            row.append("-" if cpu is None else f"{cpu:.0f} ({med(m, k, 'logs_cpu_us_per_req'):.0f})")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each wrk cell")
    ap.add_argument("--connections", default="16,64")
    ap.add_argument("--methods", default="GET,POST")
    ap.add_argument("--meshes", default=",".join(MESHES))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="py-spy each logmesh part during each cell (its CPU counts in the cell)")
    ap.add_argument("--perf", type=Path, default=None, metavar="DIR",
                    help="perf record each part during each cell (on-CPU samples only)")
    ap.add_argument("--logs-nice", type=int, default=None, metavar="N",
                    help="run every mesh's logs service at niceness N (a diagnostic: how much of "
                         "the tail with shipping on is the logs service's CPU on the same cores)")
    ap.add_argument("--base", type=Path, default=None, metavar="DIR",
                    help="a checkout (of the code a change started from) whose goods and "
                         "gateway run as the mesh logmesh-base, added to --meshes")
    args = ap.parse_args()
    if shutil.which("wrk") is None or shutil.which("node") is None:
        print("needs wrk and node (make bench installs wrk)", file=sys.stderr)
        return 2
    if args.profile and not Path(_py_spy()).exists():
        print("--profile needs py-spy (a dev dependency): make .venv/.dev", file=sys.stderr)
        return 2
    if args.perf and shutil.which("perf") is None:
        print("--perf needs perf: apt-get install linux-perf", file=sys.stderr)
        return 2
    meshes = args.meshes.split(",")
    if args.base is not None and "logmesh-base" not in meshes:
        meshes.insert(1, "logmesh-base")
    conns = [int(c) for c in args.connections.split(",")]
    methods = args.methods.split(",")
    runs: list[dict] = []
    rss: dict[str, list[dict]] = {m: [] for m in meshes}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {"GET": Path(tmp) / "get.lua", "POST": Path(tmp) / "post.lua"}
        scripts["GET"].write_text(TAIL_LUA)
        scripts["POST"].write_text(f"wrk.method = 'POST'\nwrk.body = '{POST_BODY}'\n"
                                   "wrk.headers['Content-Type'] = 'application/json'\n" + TAIL_LUA)
        for rnd in range(args.rounds):
            order = meshes if rnd % 2 == 0 else list(reversed(meshes))
            for kind in order:
                try:
                    mesh = start_mesh(kind, Path(tmp) / f"{kind}-{rnd}", args.logs_nice,
                                      args.base)
                except TimeoutError as exc:  # once in ~50 starts on a quiet machine: say why, retry
                    print(f"round {rnd} {kind}: {exc}\nstarting it again", file=sys.stderr)
                    mesh = start_mesh(kind, Path(tmp) / f"{kind}-{rnd}-again",
                                      args.logs_nice, args.base)
                try:
                    for method in methods:  # GET first: POST grows the table GET answers
                        for c in conns:
                            r = cell(mesh, method, c, args.seconds, scripts, args.profile,
                                     args.perf)
                            r["round"] = rnd
                            runs.append(r)
                            print(f"round {rnd} {kind:15} {method:4} {c:3} conns: {r['rps']:8.0f} "
                                  f"req/s p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} p99.9 "
                                  f"{r['p999_ms'] or 0:.2f} max {r['max_ms'] or 0:.1f} ms, "
                                  f"{r['cpu_us_per_req']:.0f} µs CPU/req (gateway "
                                  f"{r['gateway_cpu_us_per_req']:.0f}, its sleeps/kreq "
                                  f"{r['gateway_sleeps_per_kreq']:.0f}, logs "
                                  f"{r['logs_cpu_us_per_req']:.0f} of which its loop "
                                  f"{r['logs_loop_cpu_us_per_req']:.0f}, its fsyncs/s "
                                  f"{r['logs_fsyncs_per_s']:.0f}), IPIs/req RES "
                                  f"{r['res_ipis_per_req']:.2f} CAL {r['cal_ipis_per_req']:.2f}, "
                                  f"idle {r['idle_us_per_req']:.0f} µs/req, non-2xx "
                                  f"{r['non_2xx']}, errors {r['socket_errors']}", flush=True)
                finally:
                    mesh.sample_rss()
                    rss[kind].append(dict(mesh.peaks))
                    mesh.stop()
    print()
    print(f"wrk -t1 --latency, {args.seconds:.0f} s per cell, median of {args.rounds} round(s); "
          "ratios of req/s taken within each round (median, range); CPU: gateway + goods "
          "(shipping included) per request, the logs service's in brackets:")
    print()
    for line in summarise(runs, meshes):
        print(line)
    print()
    for kind in meshes:
        peak = {n: max(p.get(n, 0) for p in rss[kind]) / 1024 for n in ("gateway", "goods")}
        print(f"peak RSS {kind}: gateway {peak['gateway']:.0f} MB, goods {peak['goods']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "rss_kb": rss,
                                         "table": summarise(runs, meshes)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
