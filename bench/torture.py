#!/usr/bin/env python3
"""Torture run: the durability machine of tests/durability against real logs processes, for
as long as it is told, in the spirit of SQLite's crash tests and FoundationDB's simulation.

Random steps -- acked ingest over HTTP and TCP batches, book packets, hostile values, graceful
restarts, kill -9, compaction, retention, damaged bytes, a full disk (a tmpfs data dir when
root) -- each followed by the invariants (tests/durability/machine.py). A run is one data
directory for up to ``--steps`` steps, then a fresh one; every run's seed is printed with its
steps, so a finding replays with ``--run-seed``. It ends with one line::

    torture: seed 1234, 600 s, 14 runs, 421 steps: acked 81234 / stored 81200 / damaged 34 /
    lost 0 / duplicated 0, 0 problem(s)

and exits 1 when anything was lost, duplicated or misbehaved::

    .venv/bin/python bench/torture.py [--seconds 600] [--seed N] [--steps 40] [--run-seed N]

``make torture`` runs it for 10 minutes; CI runs the bounded hypothesis version
(tests/durability/test_store_machine.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.durability.machine import (  # noqa: E402
    DAMAGE_FILLS,
    HOSTILE_BOOK,
    HOSTILE_HTTP,
    HOSTILE_TCP,
    DurabilityMachine,
    Report,
    ServiceDown,
)


def hostile(rng: random.Random, kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(rng.choice(kinds) for _ in range(rng.randint(1, 2))) if rng.random() < 0.25 else ()


def random_step(m: DurabilityMachine, rng: random.Random) -> None:
    actions = {"http": 5, "tcp": 5, "book": 3, "restart": 2, "kill9": 2, "compact": 1, "damage": 1}
    if not m.retention:
        actions["retention"] = 0.3
    if m.mounted:
        actions["disk_full"] = 1
    action = rng.choices(list(actions), weights=list(actions.values()))[0]
    rarely = rng.random() < 0.12
    if action == "http":
        m.ingest_http(rng.randint(1, 200), hostile(rng, HOSTILE_HTTP), rng.random() < 0.12, rarely)
    elif action == "tcp":
        m.ingest_tcp(rng.randint(1, 200), hostile(rng, HOSTILE_TCP), rng.random() < 0.12, rarely)
    elif action == "book":
        m.ingest_book(rng.randint(1, 200), hostile(rng, HOSTILE_BOOK))
    elif action == "restart":
        m.restart()
    elif action == "kill9":
        m.kill9(torn=rng.random() < 0.5, mid_stream=rng.uniform(0.05, 2.0) if rng.random() < 0.5 else 0.0)
    elif action == "compact":
        m.compact(seal_first=rng.random() < 0.5)
    elif action == "retention":
        m.enable_retention()
    elif action == "damage":
        m.damage_file(rng.random(), rng.random(), rng.randint(1, 4096), rng.choice(DAMAGE_FILLS))
    elif action == "disk_full":
        m.disk_full(stop_while_full=rng.random() < 0.5)


class Totals:
    def __init__(self) -> None:
        self.acked = self.stored = self.damaged = 0
        self.lost = self.duplicated = 0
        self.problems: list[str] = []
        self.runs = self.steps = 0

    def add_run(self, last: Report | None, lost: int, duplicated: int) -> None:
        self.runs += 1
        if last is not None:
            self.acked += last.acked
            self.stored += last.stored
            self.damaged += last.damaged
        self.lost += lost
        self.duplicated += duplicated


def one_run(seed: int, steps: int, deadline: float, totals: Totals, tmpfs: bool,
            keep: bool = False) -> None:
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="logmesh-torture-"))
    print(f"run {totals.runs + 1}: --run-seed {seed}", flush=True)
    m: DurabilityMachine | None = None
    last: Report | None = None
    lost = duplicated = 0
    seen: set[str] = set()  # problems already counted in this run (a damaged file stays damaged)

    def found(report: Report) -> None:
        nonlocal lost, duplicated
        lost += len(report.lost)
        duplicated += len(report.duplicated)
        if not report.ok:
            print(f"  !! {report.describe()}\n  !! steps so far (run seed {seed}):\n"
                  + "\n".join(f"       {i + 1}. {s}" for i, s in enumerate(m.steps)), flush=True)
            new = [p for p in report.problems if p.split("] ", 1)[-1] not in seen]
            seen.update(p.split("] ", 1)[-1] for p in report.problems)
            totals.problems += [f"run seed {seed}: {p}" for p in new]
            totals.problems += [f"run seed {seed}: lost {x}" for x in report.lost[:3]]
            totals.problems += [f"run seed {seed}: duplicated {x}" for x in report.duplicated[:3]]

    try:
        m = DurabilityMachine(workdir, tmpfs=tmpfs, echo=lambda text: print(text, flush=True),
                              evidence=keep)
        for _ in range(steps):
            if time.monotonic() > deadline:
                break
            random_step(m, rng)
            totals.steps += 1
            for note in m.notes:
                print(f"  note: {note}", flush=True)
            m.notes.clear()
            last = m.check()
            found(last)
    except ServiceDown as exc:
        text = str(exc)
        print(f"  !! {text[:3000]}\n  !! steps (run seed {seed}):\n"
              + "\n".join(f"       {i + 1}. {s}" for i, s in enumerate(m.steps if m else [])),
              flush=True)
        totals.problems.append(f"run seed {seed}: {text.splitlines()[0]}")
    except Exception:  # a failure of the harness itself: shown, counted, and the next run goes on
        print(f"  !! harness error (run seed {seed}):\n{traceback.format_exc()}", flush=True)
        totals.problems.append(f"run seed {seed}: harness error: {traceback.format_exc().splitlines()[-1]}")
    finally:
        if m is not None:
            if m.problems:  # found by the last step, not checked any more
                totals.problems += [f"run seed {seed}: {p}" for p in m.problems]
            m.close()
        if keep:
            print(f"  run {totals.runs + 1} kept its data and logs in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    totals.add_run(last, lost, duplicated)
    if last is not None:
        print(f"  run {totals.runs}: {last.summary()}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="how long to run (default 600)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the whole run (default: random)")
    ap.add_argument("--steps", type=int, default=40, help="steps per data directory (default 40)")
    ap.add_argument("--run-seed", type=int, default=None, help="replay one run (printed as it ran)")
    ap.add_argument("--no-tmpfs", action="store_true", help="no tmpfs data dir, no disk-full steps")
    ap.add_argument("--keep", action="store_true", help="keep each run's directory: service logs, and a copy of the data dir at each loss")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"torture: --seed {seed}, {args.seconds:.0f} s, {args.steps} steps per run", flush=True)
    top = random.Random(seed)
    totals = Totals()
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    if args.run_seed is not None:
        one_run(args.run_seed, args.steps, deadline, totals, not args.no_tmpfs, args.keep)
    else:
        while time.monotonic() < deadline:
            one_run(top.randrange(2**32), args.steps, deadline, totals, not args.no_tmpfs, args.keep)
    for p in totals.problems:
        print(f"problem: {p[:500]}")
    print(f"torture: seed {seed}, {time.monotonic() - t0:.0f} s, {totals.runs} runs, {totals.steps} steps: "
          f"acked {totals.acked} / stored {totals.stored} / damaged {totals.damaged} / "
          f"lost {totals.lost} / duplicated {totals.duplicated}, "
          f"{len(totals.problems)} problem(s)", flush=True)
    return 1 if totals.lost or totals.duplicated or totals.problems else 0


if __name__ == "__main__":
    sys.exit(main())
