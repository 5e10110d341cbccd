#!/usr/bin/env python3
"""Syslog over TCP beside the book's TCP path, in one run: events/s and CPU per million.

    .venv/bin/python bench/ingest_sockets.py [-n 1000000] [--rounds 3] [-c 1,4] [--json out.json]
        [--code TREE --code TREE2] [--paths book,syslog]

One ``logmesh logs`` worker (``--fsync batch``, ``--no-supervise``) per
measurement, fed by bench/loadgen.py as a separate process: ~200-byte book
packets on ``--port`` (the book path), or RFC 5424 syslog lines carrying the
same request frames on ``--syslog-port`` (``loadgen.py --syslog``). Rounds
alternate the two (book first in even rounds, syslog first in odd ones) so
that the load of a shared machine falls on both alike; the report gives each
cell's median and the median of the per-round ratios syslog/book. Every
event is counted on disk by its number (bench/ingest_peers.py's ``measure``).
Beside the server's CPU (its event loop's thread apart from the others: the
writer, the live table's DuckDB threads) each run gives the load generator's
sending CPU, which shares the cores, and the bytes stored per event, which
the writer must write (a worker's rate is bounded by them once the loop is
fast enough: docs/benchmarks.md, "Syslog over TCP, fifth pass").

``--code`` runs the server from another checkout (``python -m logmesh`` with
that tree as its working directory); given twice, every cell runs under both
trees in the same round, in alternating order, and the report adds the median
of the per-round CPU ratios of the second tree to the first (a before/after
pairing: ``git archive main | tar -x -C /tmp/base`` then ``--code /tmp/base
--code .``).

``--micro`` measures the syslog hot path alone instead: ``SyslogDecoder.encode_block``
over the same reads (loadgen's syslog lines in 64 KiB reads, split by lines.py), CPU
microseconds per event, in a fresh process per tree and round (alternating), without the
socket, the writer or the query view's threads that the server's figure includes; each read
split by lines.py in the timed loop, as the server splits it; malloc tuned as the tree's
server tunes it (logs/malloc_tuning.py, where the tree has it). ``--read-kib 256``: reads of the
size a loaded server takes (asyncio's 256 KiB; the default is 64).
``--micro --sd`` puts logger's structured data (``[timeQuality ...]``) in every line; a
read encode_block leaves goes through the per-line path, as the server takes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_peers import LineCounter, free_port, measure  # noqa: E402

PATHS = ("book", "syslog")


def command(path: str, port: int, data: Path) -> list[str]:
    cmd = [sys.executable, "-m", "logmesh", "logs", "--standalone", "--no-supervise",
           "--http-port", str(free_port()), "--data-dir", str(data), "--fsync", "batch",
           # one segment per run: sealing starts compaction, a background job no peer has
           # (8 GB: ~14M syslog lines of ~550 stored bytes; 1 GB sealed mid-run past ~1.9M)
           "--max-segment-size", "8GB"]
    if path == "book":
        return [*cmd, "--port", str(port)]
    return [*cmd, "--port", str(free_port()), "--syslog-port", str(port)]


class ThreadCpu:
    """The server's CPU seconds by thread, sampled at each of ``measure``'s polls: the event
    loop's thread (the main one: reading, decoding, appending) apart from all the others (the
    writer's, the query view's DuckDB threads loading the live segment); its minor page
    faults (a buffer malloc hands back to the kernel and maps again: malloc_tuning.py); and
    the time the event loop's thread was ready to run but waited for a core (schedstat's run
    delay: the loadgen's senders, the writer and everyone else on the machine ahead of it).
    The server is found by its data directory in /proc/*/cmdline (Linux).

    Also the load generator's sending CPU (its process's CPU less its main thread's: the
    sender threads start after the main thread has built the payload, and a finished thread's
    CPU stays in the process's), which shares the 2 cores with the server: what the HTTP bench
    prints as its client's CPU."""

    def __init__(self, data: Path, port: int) -> None:
        self.data = str(data).encode()
        self.loadgen = b"loadgen.py\0--port\0%d\0" % port
        self.pid: int | None = None
        self.lg_pid: int | None = None
        self.lg_cpu: float | None = None
        self.first: tuple[float, ...] | None = None
        self.last: tuple[float, ...] | None = None

    def _find(self, needle: bytes) -> int | None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmd:
                return int(pid)
        return None

    def _sample_loadgen(self) -> None:
        if self.lg_pid is None:
            self.lg_pid = self._find(self.loadgen)
            if self.lg_pid is None:
                return
        try:
            total = _cpu_of(Path(f"/proc/{self.lg_pid}/stat").read_text())
            main = _cpu_of(Path(f"/proc/{self.lg_pid}/task/{self.lg_pid}/stat").read_text())
        except OSError:  # finished (and reaped): its last sample stands
            return
        self.lg_cpu = total - main

    def sample(self) -> None:
        self._sample_loadgen()
        if self.pid is None:
            self.pid = self._find(self.data)
            if self.pid is None:
                return
        main = other = 0.0
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            faults = float(stat[stat.rindex(")") + 2:].split()[7])
            waited = int(Path(f"/proc/{self.pid}/task/{self.pid}/schedstat").read_text()
                         .split()[1]) / 1e9
            for tid in os.listdir(f"/proc/{self.pid}/task"):
                secs = _cpu_of(Path(f"/proc/{self.pid}/task/{tid}/stat").read_text())
                if int(tid) == self.pid:
                    main += secs
                else:
                    other += secs
        except OSError:  # a thread gone between the listing and its stat, or the server
            return
        self.first = self.first or (main, other, faults, waited)
        self.last = (main, other, faults, waited)

    def per_million(self, events: int) -> tuple[float | None, ...]:
        """(event loop's CPU s, the other threads' CPU s, minor page faults, the event loop's
        wait for a core in s) per M events."""
        if not (self.first and self.last and events):
            return None, None, None, None
        return tuple(round((b - a) / events * 1e6, 2)  # type: ignore[return-value]
                     for a, b in zip(self.first, self.last, strict=True))


def _cpu_of(stat: str) -> float:
    """utime + stime in seconds of a /proc/.../stat text."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(path: str, connections: int, events: int, workdir: Path, code: Path | None) -> dict:
    data = workdir / "data"
    port = free_port()
    counter = LineCounter(data / "segments" / "*.ndjson")
    threads = ThreadCpu(data, port)

    def count() -> int:  # measure() polls this from before the load to its end
        threads.sample()
        return counter()

    r = measure(command(path, port, data), port, count, connections, events,
                verify_paths=counter.paths, name=path, cwd=code,
                loadgen_args=["--syslog"] if path == "syslog" else [])
    (r["main_cpu_s_per_M"], r["other_cpu_s_per_M"], r["faults_per_M"],
     r["main_wait_s_per_M"]) = threads.per_million(r["on_disk_after_stop"])
    # what the writer writes per event (the disk's bandwidth bounds a worker: syslog stored more)
    r["stored_bytes_per_event"] = (round(sum(Path(p).stat().st_size for p in counter.paths())
                                         / r["on_disk_after_stop"], 1)
                                   if r["on_disk_after_stop"] else None)
    r["loadgen_cpu_s_per_M"] = (round(threads.lg_cpu / r["on_disk_after_stop"] * 1e6, 2)
                                if threads.lg_cpu is not None and r["on_disk_after_stop"] else None)
    return r


# One process per tree: its own logmesh (the working directory comes first on sys.path).
MICRO = """
import sys, time
sys.path.insert(1, {bench!r})
from loadgen import build_batches
from logmesh.logs.ingest.lines import LineSplitter
from logmesh.logs.ingest.syslog import SyslogDecoder
from logmesh.logs.store.segment import _encode_lines
try:  # malloc's thresholds as the server sets them at start (logs/server.py), where it does
    from logmesh.logs.malloc_tuning import keep_freed_heap
    keep_freed_heap()
except ImportError:
    pass
SD = {sd!r}  # logger's structured data in every line (--sd), or none
# the reads as bytes: split in the timed loop, so that their lines are fresh in the cache, as
# the server has them (lines split up front and read back cold made large reads look 1.3x dearer)
reads = [b.replace(b" - - ", b" - " + SD + b" ") if SD else b
         for b, _ in build_batches(0, {events}, lines=True, batch_bytes={read_kib} * 1024, seed=1,
                                   syslog=True)]
decoder, seq, source = SyslogDecoder(), [0], ("127.0.0.1", 40000)
def reserve(n):
    seq[0] += n
    return range(seq[0] - n, seq[0])
def per_line(lines):  # what the server does with a read encode_block leaves (sockets.store)
    events = [decoder.event(line, 1795968000000, source) for line in lines]
    for e, s in zip(events, reserve(len(events))):
        e.seq = s
    return _encode_lines(events)
best = None
for _ in range(3):
    t = time.process_time()
    splitter = LineSplitter(1 << 20)
    for read in reads:
        lines = splitter.feed(read)[0]
        got = decoder.encode_block(lines, 1795968000000, source, reserve)
        assert got or SD, "a plain read left to the per-line path"
        got or per_line(lines)
    best = min(best or 1e9, time.process_time() - t)
print(best / {events} * 1e6)
"""


# util-linux logger's default structured data (--sd)
LOGGER_SD = b'[timeQuality tzKnown="1" isSynced="1" syncAccuracy="12345"]'


def micro(code: Path | None, events: int, sd: bytes = b"", read_kib: int = 64) -> float:
    """encode_block's CPU µs per event in ``code``'s tree (the best of 3 passes); with ``sd``
    in the lines, a read it leaves is timed through the per-line path, as the server takes it."""
    out = subprocess.run([sys.executable, "-c", MICRO.format(bench=str(HERE), events=events,
                                                             sd=sd, read_kib=read_kib)],
                         cwd=code, capture_output=True, text=True, check=True).stdout
    return float(out)


def _median_ratio(tops: list[dict], bottoms: list[dict], key: str) -> float | None:
    """Median over rounds of top[key] / bottom[key] (runs paired by round)."""
    by_round = {r["round"]: r for r in bottoms}
    ratios = [t[key] / by_round[t["round"]][key] for t in tops
              if t["round"] in by_round and t[key] and by_round[t["round"]][key]]
    return round(statistics.median(ratios), 2) if ratios else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--events", type=int, default=1_000_000)
    ap.add_argument("-c", "--connections", default="1,4", help="comma list")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--paths", default=",".join(PATHS), help="comma list of book, syslog")
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="run the server from this checkout; given twice, both in every round "
                         "(alternating), for a before/after pairing")
    ap.add_argument("--micro", action="store_true",
                    help="encode_block alone, in process (CPU µs per event), not the server")
    ap.add_argument("--sd", action="store_true",
                    help="with --micro: logger's structured data in every line")
    ap.add_argument("--read-kib", type=int, default=64,
                    help="with --micro: the size of a read (a loaded server reads 256 KiB)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    conns = [int(c) for c in a.connections.split(",")]
    paths = tuple(p for p in PATHS if p in a.paths.split(","))
    codes: list[Path | None] = [c.resolve() for c in a.code] or [None]
    label = {c: ("" if len(codes) < 2 else f"@{c.name}") for c in codes}  # type: ignore[union-attr]
    if a.micro:
        return report_micro(codes, label, a.rounds, min(a.events, 300_000), a.json,
                            LOGGER_SD if a.sd else b"", a.read_kib)
    runs: list[dict] = []
    for rnd in range(a.rounds):
        order = paths if rnd % 2 == 0 else paths[::-1]
        trees = codes if rnd % 2 == 0 else codes[::-1]
        for c in conns:
            for path in order:
                for code in trees:
                    with tempfile.TemporaryDirectory(prefix=f"logmesh-sock-{path}-") as tmp:
                        r = one(path, c, a.events, Path(tmp), code)
                    r["round"], r["path"], r["name"] = rnd, path, path + label[code]
                    runs.append(r)
                    print(f"round {rnd} {r['name']:14} c={c}: {r['events_per_s']:,} events/s, "
                          f"{r['cpu_s_per_M']} CPU s/M (event loop's thread "
                          f"{r['main_cpu_s_per_M']}, others {r['other_cpu_s_per_M']}; loadgen's senders "
                          f"{r['loadgen_cpu_s_per_M']} s/M; stored {r['stored_bytes_per_event']} bytes/event; page faults per M "
                          f"{r['faults_per_M'] or 0:,.0f}; the loop waited for a core "
                          f"{r['main_wait_s_per_M']} s/M), on disk {r['on_disk_after_stop']:,}/"
                          f"{r['sent']:,}, dups {r.get('duplicates')}", file=sys.stderr, flush=True)
    rows = []
    for c in conns:
        for code in codes:
            cell = {p: [r for r in runs if r["name"] == p + label[code] and r["connections"] == c]
                    for p in paths}
            for p in paths:
                rs = cell[p]
                rows.append({
                    "path": p + label[code], "connections": c,
                    "events_per_s": round(statistics.median(r["events_per_s"] for r in rs)),
                    "events_per_s_all": [r["events_per_s"] for r in rs],
                    "cpu_s_per_M": round(statistics.median(r["cpu_s_per_M"] or 0 for r in rs), 2),
                    "cpu_s_per_M_all": [r["cpu_s_per_M"] for r in rs],
                    "main_cpu_s_per_M": round(statistics.median(r["main_cpu_s_per_M"] or 0 for r in rs), 2),
                    "main_cpu_s_per_M_all": [r["main_cpu_s_per_M"] for r in rs],
                    "other_cpu_s_per_M": round(statistics.median(r["other_cpu_s_per_M"] or 0
                                                                 for r in rs), 2),
                    "loadgen_cpu_s_per_M": round(statistics.median(r["loadgen_cpu_s_per_M"] or 0
                                                                   for r in rs), 2),
                    "faults_per_M": round(statistics.median(r["faults_per_M"] or 0 for r in rs)),
                    "main_wait_s_per_M": round(statistics.median(r["main_wait_s_per_M"] or 0
                                                                 for r in rs), 2),
                    "mean_event_bytes": rs[0]["mean_event_bytes"],
                    "stored_bytes_per_event": rs[0]["stored_bytes_per_event"],
                    "lost": sum(r["lost"] for r in rs),
                    "duplicates": sum(r.get("duplicates") or 0 for r in rs),
                    "syslog_over_book": _median_ratio(rs, cell["book"], "events_per_s")
                    if p == "syslog" and "book" in cell else None,
                    "cpu_over_first_tree": _median_ratio(
                        rs, [r for r in runs if r["name"] == p + label[codes[0]]
                             and r["connections"] == c], "cpu_s_per_M")
                    if code is not codes[0] else None,
                    "main_cpu_over_first_tree": _median_ratio(
                        rs, [r for r in runs if r["name"] == p + label[codes[0]]
                             and r["connections"] == c], "main_cpu_s_per_M")
                    if code is not codes[0] else None,
                })
    print("| path | conns | events/s (median) | runs | CPU s per M (median) | runs | event loop's "
          "thread's CPU s per M (median) | runs | other threads' CPU s per M (median) | loadgen's senders' CPU s per M (median) | page faults per M (median) | loop's wait for a core, s per M (median) | bytes/event sent | stored | lost | dups | syslog/book "
          "events/s | CPU / first tree's | event loop's CPU / first tree's |")
    print("|---|--:|--:|---|--:|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['path']} | {r['connections']} | {r['events_per_s']:,} | "
              f"{', '.join(f'{x:,}' for x in r['events_per_s_all'])} | {r['cpu_s_per_M']} | "
              f"{', '.join(str(x) for x in r['cpu_s_per_M_all'])} | {r['main_cpu_s_per_M']} | "
              f"{', '.join(str(x) for x in r['main_cpu_s_per_M_all'])} | {r['other_cpu_s_per_M']} | "
              f"{r['loadgen_cpu_s_per_M']} | {r['faults_per_M']:,} | "
              f"{r['main_wait_s_per_M']} | "
              f"{r['mean_event_bytes']} | {r['stored_bytes_per_event']} | {r['lost']} | {r['duplicates']} | "
              f"{'' if r['syslog_over_book'] is None else r['syslog_over_book']} | "
              f"{'' if r['cpu_over_first_tree'] is None else r['cpu_over_first_tree']} | "
              f"{'' if r['main_cpu_over_first_tree'] is None else r['main_cpu_over_first_tree']} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"rows": rows, "runs": runs}, indent=1))
    return 0


def report_micro(codes: list[Path | None], label: dict, rounds: int, events: int,
                 out: Path | None, sd: bytes = b"", read_kib: int = 64) -> int:
    got: dict[Path | None, list[float]] = {c: [] for c in codes}
    for rnd in range(rounds):
        for code in codes if rnd % 2 == 0 else codes[::-1]:
            got[code].append(micro(code, events, sd, read_kib))
            print(f"round {rnd} encode_block{label[code]}: {got[code][-1]:.3f} CPU µs/event",
                  file=sys.stderr, flush=True)
    print("| tree | CPU µs per event (median) | runs | / first tree's (median of rounds) |")
    print("|---|--:|---|--:|")
    first = got[codes[0]]
    for code in codes:
        ratio = statistics.median(x / f for x, f in zip(got[code], first, strict=True))
        print(f"| encode_block{label[code]} | {statistics.median(got[code]):.3f} | "
              f"{', '.join(f'{x:.3f}' for x in got[code])} | {ratio:.2f} |")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({str(c): v for c, v in got.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
