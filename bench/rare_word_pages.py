#!/usr/bin/env python3
"""A rare word's hits read a page at a time (DataFusion) against today's row groups (issue 18, fifth pass).

    .venv/bin/pip install datafusion==55.0.0    # not a project dependency (docs/benchmarks.md)
    .venv/bin/python bench/query.py --dir A --keep --only newest      # the 10M store, once
    .venv/bin/python bench/rare_word_pages.py --dir A --out B [--page-rows 1024] [--rounds 3]

B's store is A's with every Parquet file rewritten by ``compact.write_parquet(page_rows=N)``
(the same encodings, pages of at most N rows, a page index), built once (``--out`` kept).
Then, in one process, rounds alternating the order:

- newest 100 for each word: today's engine on A (a 16,384-row group goes to DuckDB), and the
  engine with ``rare.read_groups`` swapped for :func:`read_groups` below on A and on B:
  DataFusion with its filters pushed into the scan, so ``message`` of each kept row group is
  decoded and matched first and the other columns are decoded only in the pages holding a
  match (arrow-rs selects rows by the offset index; without one it decodes the whole chunk);
- known rows: every column of the word's hit rows fetched by (``@timestamp``, ``seq``), one
  DataFusion query per file, A and B, against pyarrow reading the hits' whole row groups: what
  a hit would cost if the rows were known without scanning ``message`` (row postings).

Prints CPU (all threads) and wall medians, whether every side answered the same events, and
the stores' sizes against the NDJSON. The machine is shared: read the ratios within a run.
The swapped reader is a prototype for this measurement, not the engine's: groups are picked by
their ``@timestamp`` ranges, so a row on the edge of a group the index did not keep may come
back with its neighbour (harmless for these answers, which are compared).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

START = 1_795_539_600_000  # bench/query.py's
DAY = 24 * 3_600_000
WORDS = ("segfault", "deadlock", "deadlock and service.name:goods")
KNOWN_WORD = "deadlock"
ROOT = Path(__file__).resolve().parent.parent
_local = threading.local()


def context() -> Any:
    """One DataFusion session per reading thread: filters pushed into the scan, one partition."""
    if getattr(_local, "ctx", None) is None:
        from datafusion import SessionConfig, SessionContext
        _local.ctx = SessionContext(SessionConfig({
            "datafusion.execution.parquet.pushdown_filters": "true",
            "datafusion.execution.parquet.schema_force_view_types": "false",
            "datafusion.execution.target_partitions": "1"}))
        _local.tables = {}
    return _local.ctx


def table(path: Path) -> str:
    """The session's name for a file, registered once (its footer read once)."""
    ctx = context()
    if str(path) not in _local.tables:
        _local.tables[str(path)] = f"f{len(_local.tables)}"
        ctx.register_parquet(_local.tables[str(path)], str(path))
    return _local.tables[str(path)]


def need_sql(need: Any) -> str | None:
    """rare.required's rule in SQL: every required word a substring of ``message``, any case."""
    if need.op == "keys":
        likes = []
        for key in need.keys:
            k = key.lstrip("*").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("'", "''")
            likes.append(f"message ILIKE '%{k}%' ESCAPE '\\'")
        return " AND ".join(likes) or None
    parts = [p for p in (need_sql(c) for c in need.children) if p]
    if not parts:
        return None
    return "(" + (" AND " if need.op == "and" else " OR ").join(f"({p})" for p in parts) + ")"


def read_groups(pf: Any, indexes: list[int], need: Any) -> Any:
    """rare.read_groups by DataFusion: the rows of these row groups whose message may match."""
    name = table(pf.path)
    ranges = " OR ".join(f'"@timestamp" BETWEEN {pf.blocks[g][0]} AND {pf.blocks[g][1]}' for g in indexes)
    word = need_sql(need)
    return context().sql(f"SELECT * FROM {name} WHERE ({ranges})" + (f" AND {word}" if word else "")).to_arrow_table()


def paged_copy(src: Path, dst: Path, page_rows: int) -> float:
    """``src``'s store with its Parquet files rewritten with bounded pages; the write's CPU s."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from logmesh.logs.store.compact import write_parquet
    (dst / "parquet").mkdir(parents=True, exist_ok=True)
    (dst / "segments").mkdir(exist_ok=True)
    cpu = 0.0
    for p in sorted((src / "parquet").iterdir()):
        if p.suffix != ".parquet":
            shutil.copy2(p, dst / "parquet" / p.name)
            continue
        t = pq.read_table(p)  # JSON columns back to their storage: write_parquet types them again
        t = pa.table([c.cast(c.type.storage_type) if hasattr(c.type, "storage_type") else c
                      for c in t.columns], names=t.column_names)
        c = time.process_time()
        write_parquet(t, dst / "parquet" / p.name, 16384, page_rows=page_rows)
        cpu += time.process_time() - c
    return cpu


def newest(stores: dict[str, Path], rounds: int) -> None:
    from logmesh.logs.query import kql, rare
    from logmesh.logs.query.engine import Engine
    usual_read, usual_max = rare.read_groups, rare.MAX_GROUP_ROWS
    engines = {name: Engine(path, threads=2) for name, path in stores.items()}
    a, b = list(stores)
    sides = {f"today's engine, {a}": (a, False), f"DataFusion reader, {a}": (a, True),
             f"DataFusion reader, {b}": (b, True)}
    got: dict[tuple[str, str], list[tuple[float, float]]] = {}
    answers: dict[str, list] = {}
    same = True
    for r in range(rounds + 1):  # round 0 warms up (footers, sessions, imports)
        order = list(sides.items()) if r % 2 == 0 else list(sides.items())[::-1]
        for word in WORDS:
            node = kql.parse(word)
            for side, (store, swapped) in order:
                rare.read_groups = read_groups if swapped else usual_read
                rare.MAX_GROUP_ROWS = 1 << 30 if swapped else usual_max
                t, c = time.perf_counter(), time.process_time()
                events, _ = engines[store].search(node, START, START + DAY, limit=100)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                keys = [[e["@timestamp"], e["seq"]] for e in events]
                same &= answers.setdefault(word, keys) == keys
                if r:
                    got.setdefault((word, side), []).append((1000 * wall, 1000 * cpu))
    rare.read_groups, rare.MAX_GROUP_ROWS = usual_read, usual_max
    print(f"newest 100, median of {rounds} rounds (every side answered the same events: {same})")
    for word in WORDS:
        print(f"  {word} ({len(answers[word])} hits)")
        for side in sides:
            runs = got[(word, side)]
            print(f"    {side:<40} wall {statistics.median(w for w, _ in runs):8.1f} ms"
                  f"   CPU {statistics.median(c for _, c in runs):8.1f} ms")


def known_rows(stores: dict[str, Path], rounds: int) -> None:
    import duckdb
    import pyarrow.parquet as pq
    a = next(iter(stores.values()))
    hits = duckdb.sql(f"SELECT filename, \"@timestamp\", seq, file_row_number FROM read_parquet("
                      f"'{a / 'parquet' / '*.parquet'}', filename=true, file_row_number=true) "
                      f"WHERE message ILIKE '%{KNOWN_WORD}%'").fetchall()
    by_file: dict[str, list[tuple[int, int, int]]] = {}
    for f, ts, seq, row in hits:
        by_file.setdefault(Path(f).name, []).append((ts, seq, row))

    def fetch(store: Path) -> None:
        n = 0
        for name, rows in by_file.items():
            keys = " OR ".join(f'("@timestamp" = {ts} AND seq = {seq})' for ts, seq, _ in rows)
            n += context().sql(f"SELECT * FROM {table(store / 'parquet' / name)} WHERE {keys}").to_arrow_table().num_rows
        assert n == len(hits), (n, len(hits))

    files = {name: pq.ParquetFile(a / "parquet" / name) for name in by_file}

    def groups() -> None:
        for name, rows in by_file.items():
            files[name].read_row_groups(sorted({r // 16384 for *_, r in rows}), use_threads=False)

    cases = {**{f"DataFusion, the rows, {name}": (lambda s=s: fetch(s)) for name, s in stores.items()},
             f"pyarrow, their whole row groups, {next(iter(stores))}": groups}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(2 * rounds + 1):
        for k, f in (list(cases.items()) if r % 2 == 0 else list(cases.items())[::-1]):
            c = time.process_time()
            f()
            if r:
                cpu[k].append(1000 * (time.process_time() - c))
    print(f"known rows: every column of the {len(hits)} '{KNOWN_WORD}' rows in {len(by_file)} files, "
          f"median of {2 * rounds} rounds")
    for k, v in cpu.items():
        print(f"    {k:<44} CPU {statistics.median(v):7.1f} ms ({statistics.median(v) / len(hits):.2f} ms a hit)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True, help="bench/query.py's --dir (its store is read, never changed)")
    ap.add_argument("--out", type=Path, required=True, help="where the paged copy of the store is built (kept)")
    ap.add_argument("--page-rows", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    try:
        import datafusion  # noqa: F401
    except ImportError:
        sys.exit("this benchmark needs DataFusion: .venv/bin/pip install datafusion==55.0.0")
    src, dst = args.dir / "store", args.out / "store"
    if not (dst / "parquet").is_dir():
        cpu = paged_copy(src, dst, args.page_rows)
        print(f"paged copy written: {cpu:.1f} CPU s for the Parquet writes")
    raw = sum(p.stat().st_size for p in (args.dir / "raw").rglob("*") if p.is_file())
    stores = {"today's files": src, f"pages of {args.page_rows} rows": dst}
    for name, s in stores.items():
        size = sum(p.stat().st_size for p in (s / "parquet").iterdir() if p.is_file())
        print(f"store, {name}: {size:,} bytes, {100 * size / raw:.2f}% of the NDJSON")
    newest(stores, args.rounds)
    known_rows(stores, args.rounds)


if __name__ == "__main__":
    main()
