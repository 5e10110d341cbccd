#!/usr/bin/env python3
"""A layout for rare words, measured before it is built: the hit rows known (as per-file row
postings would give them), the wide text columns read from a file of their own with small
row groups and a row-number column, the other columns from the Parquet file by the hit's
@timestamp; beside today's search on the same store, in alternating rounds.

    .venv/bin/python bench/query.py --keep --only newest      # builds the 10M store once
    .venv/bin/python bench/rare_word_layout.py [--dir /tmp/logmesh-bench-query] [--word deadlock]

Prints wall and CPU time (DuckDB's threads included) per round for both, where the
prototype's CPU goes (the narrow columns' row groups, the text file's), and the text files'
bytes beside the same columns in today's files. Writes the text files under --dir/text-<level>
(kept for the next run). bench/notes/query.md has what it showed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logmesh.logs.query import kql  # noqa: E402
from logmesh.logs.query.engine import Engine  # noqa: E402
from logmesh.logs.store import layout  # noqa: E402
from logmesh.logs.store.columns import SELECT_LIST, sql_str  # noqa: E402
from logmesh.logs.store.duck import duckdb  # noqa: E402

START = 1_795_539_600_000  # bench/query.py's
HOUR = 3_600_000
WIDE = ('"message"', '"params"', '"error.stack_trace"')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/logmesh-bench-query"))
    ap.add_argument("--word", default="deadlock")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--group-rows", type=int, default=4096, help="rows a group of the text file")
    ap.add_argument("--level", type=int, default=3, help="zstd level of the text file")
    args = ap.parse_args()
    store = args.dir / "store"
    out = args.dir / f"text-{args.group_rows}-{args.level}"
    out.mkdir(exist_ok=True)
    con = duckdb.connect(config={"threads": 2})
    files = sorted(str(p) for p in (store / layout.PARQUET_DIR).glob("*.parquet"))
    listed = "[" + ", ".join(sql_str(f) for f in files) + "]"
    hits = con.execute(  # what the postings would say: found once by a scan
        f"SELECT filename, file_row_number, \"@timestamp\", seq FROM read_parquet({listed}, "
        f"filename=true, file_row_number=true) WHERE regexp_matches(message, ?) "
        "ORDER BY \"@timestamp\" DESC, seq DESC LIMIT 100", [f"(?i)\\b{args.word}\\b"]).fetchall()
    by_file: dict[str, list[tuple[int, int, int]]] = {}
    for f, rn, ts, seq in hits:
        by_file.setdefault(f, []).append((rn, ts, seq))
    print(f"{len(hits)} hits of {args.word!r} in {len(by_file)} of {len(files)} files")
    for f in by_file:
        text = out / (Path(f).name + ".text")
        if not text.exists():
            con.execute(f"COPY (SELECT file_row_number AS rn, {', '.join(WIDE)} FROM read_parquet("
                        f"{sql_str(f)}, file_row_number=true) ORDER BY rn) TO {sql_str(str(text))} "
                        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {args.level}, "
                        f"ROW_GROUP_SIZE {args.group_rows}, PARQUET_VERSION V2)")
    narrow = [c for c in SELECT_LIST.split(", ") if c not in WIDE]
    spent = {"narrow": 0.0, "text": 0.0}

    def prototype() -> int:
        n = 0
        for f, hs in by_file.items():
            c0 = time.process_time()
            a = con.execute(f"SELECT {', '.join(narrow)} FROM read_parquet({sql_str(f)}) WHERE "
                            f"\"@timestamp\" IN ({', '.join(str(h[1]) for h in hs)}) AND "
                            f"seq IN ({', '.join(str(h[2]) for h in hs)})").fetchall()
            c1 = time.process_time()
            b = con.execute(f"SELECT {', '.join(WIDE)} FROM read_parquet("
                            f"{sql_str(str(out / (Path(f).name + '.text')))}) WHERE rn IN "
                            f"({', '.join(str(h[0]) for h in hs)})").fetchall()
            spent["narrow"] += c1 - c0
            spent["text"] += time.process_time() - c1
            assert len(a) == len(b) == len(hs)
            n += len(a)
        return n

    engine = Engine(store)
    engine.refresh()
    node = kql.parse(args.word)
    lo, hi = START - HOUR, START + 25 * HOUR

    def today() -> int:
        return len(engine.search(node, lo, hi, limit=100)[0])

    for r in range(args.rounds):
        for name, fn in ((("today", today), ("layout", prototype)) if r % 2 == 0
                         else (("layout", prototype), ("today", today))):
            t0, c0 = time.perf_counter(), time.process_time()
            n = fn()
            print(f"round {r} {name:6}: {(time.perf_counter() - t0) * 1000:7.0f} ms wall, "
                  f"{(time.process_time() - c0) * 1000:6.0f} ms CPU ({n} events)", flush=True)
    total = sum(spent.values()) or 1.0
    print(f"the layout's CPU: {100 * spent['narrow'] / total:.0f}% the other columns' row groups, "
          f"{100 * spent['text'] / total:.0f}% the text files'")
    text_bytes = sum(os.path.getsize(out / (Path(f).name + ".text")) for f in by_file)
    wide_bytes = sum(con.execute(
        f"SELECT sum(total_compressed_size) FROM parquet_metadata({sql_str(f)}) WHERE path_in_schema "
        "IN ('message', 'params', 'error.stack_trace')").fetchone()[0] for f in by_file)
    print(f"text files {text_bytes:,} bytes; the same columns in today's files {wide_bytes:,} "
          f"({text_bytes / wide_bytes:.3f}x)")
    engine.close()


if __name__ == "__main__":
    main()
