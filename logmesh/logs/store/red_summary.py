"""RED summaries: the gateway's access logs of a Parquet file, counted at compaction.

Why: RED per route over a day (query/red.py) read every access log's ``labels`` JSON
for its upstream and duration, 1.3-1.7 s over 10M events; what it needs of them fits
in a few hundred thousand small rows. Compaction writes those rows beside the Parquet
file (``<name>.red``, Parquet too), and the query reads them for the windows wholly
inside its range instead of the events.

A row is one of (``w`` the 15-minute window, @timestamp // WINDOW_MS; ``m``/``p`` the
route's method and path, ``up`` the upstream)::

    d NULL       n requests, e4 of them with status >= 400, e5 with status >= 500
    d = bucket   n requests whose ``labels.event.duration_ms`` falls in that bucket

Each window's rows are there twice: with these buckets (``s`` = 1) and with SERIES_WIDTH of
them merged into one (``s`` = SERIES_WIDTH), which the series reads. Rows with ``w`` NULL are
the whole file's (~200k a day instead of ~600k), for the files
a range holds whole. Windows, not blocks: a block of 16,384 events holds ~8,000 access logs spread over some
20 routes and ~280 duration buckets, so per block (or minute) the rows were as many as
the events (2.8M for 5M access logs); per file and 15 minutes they are ~600k over a day,
and a query of a day reads them in tens of ms. A window answers a question only when
every block of the file that holds events of that window is answered with it
(query/red.py); the others are read.

Duration buckets are logarithmic, GAMMA wide (bucket d holds [GAMMA^d, GAMMA^(d+1))),
and a bucket stands for the value whose relative distance to both of its ends is the
same, so any duration is known within ``ERROR_BOUND`` (~1%) of its value; percentiles
interpolated between two such values keep that bound. A duration of 0 is its own
bucket (ZERO); one the buckets cannot hold (negative, NaN, infinite or absurd) is BAD:
a window holding one is listed in the index's ``skip`` and read, never summarized, and
a read part holding one makes the question fall back to the exact pass.

Counts merge by addition, so any set of blocks, and rows made the same way from events
read at query time (:func:`rows_sql`), add up to the same answer as one pass over them.

The file is written and fsynced before the block index that names it (compact.py), so
it shares the index's commit point: a crash before the Parquet file's rename leaves the
segment in charge, and the next compaction writes both again.
"""

from __future__ import annotations

import math
from pathlib import Path

from ...fsio import fsync_path
from . import layout
from .columns import TS, ident, sql_str
from .duck import duckdb

VERSION = 4  # of the .red file's rows; an index naming another version is not used
GATEWAY = "gateway"  # the gateway's shipper's service name (cli.py): its access logs
GAMMA = 1.02  # a duration bucket's width: each bucket's upper end is GAMMA x its lower end
ERROR_BOUND = (GAMMA - 1) / (GAMMA + 1)  # the largest relative error of a bucket's value
# The series' p95s merge SERIES_WIDTH buckets into one (~8% wide): a day's series has ~2,000
# (bucket, route) histograms, and with every 2% bucket their percentiles took 3x the CPU
SERIES_WIDTH = 4
SERIES_ERROR_BOUND = (GAMMA ** SERIES_WIDTH - 1) / (GAMMA ** SERIES_WIDTH + 1)
ZERO = -(1 << 30)  # the bucket of a duration of exactly 0
BAD = 1 << 30  # the bucket of a duration no bucket holds: its window is never summarized
MAX_MS = 1e15  # longer than this (31,000 years) is damage, not a duration
WINDOW_MS = 900_000  # a summary row's time: 15 minutes (a day's series has 15-minute buckets)

_SVC, _METHOD, _PATH, _STATUS = (ident(n) for n in ("service.name", "http.request.method", "url.path",
                                                     "http.response.status_code"))
# one JSON parse per access log for both labels (a list of paths: ~2x faster than two calls)
LABELS = """json_extract_string(labels, ['$."upstream"', '$."event.duration_ms"'])"""


def held_sql(raw: str) -> str:
    """SQL of the duration ``raw`` (a DOUBLE) if a bucket holds it (0 up to MAX_MS), else NULL.

    The exact pass takes its percentiles over these: one access log with a duration of
    -1e308 (damage, or a forged log) made /routes' p50 -1e308. The others count in
    ``durations_ignored`` (query/red.py), as the summaries' BAD windows go to that pass.
    DuckDB orders NaN above every number, so ``<= MAX_MS`` refuses it and infinity.
    """
    return f"CASE WHEN {raw} >= 0 AND {raw} <= {MAX_MS} THEN {raw} END"


_BUCKET = (f"CASE WHEN ms IS NULL THEN NULL WHEN ms = 0 THEN {ZERO} "
           f"WHEN ms > 0 AND ms <= {MAX_MS} THEN CAST(floor(ln(ms) / ln({GAMMA})) AS INTEGER) "
           f"ELSE {BAD} END")


def red_path(parquet: Path) -> Path:
    return parquet.with_name(parquet.name[: -len(layout.PARQUET_SUFFIX)] + layout.RED_SUFFIX)


def value(d: int, width: int = 1) -> float:
    """The duration a bucket stands for: its ends' harmonic mean, equally far from both
    (``width``: of buckets merged by :func:`coarse`)."""
    if d == ZERO:
        return 0.0
    return 2 * GAMMA ** (width * (d + 1)) / (1 + GAMMA ** width)


def coarse(width: int) -> str:
    """SQL of the bucket ``d`` as one of buckets ``width`` times as wide (ZERO and BAD stay)."""
    return f"CASE WHEN d IN ({ZERO}, {BAD}) THEN d ELSE CAST(floor(d / {width}) AS INTEGER) END"


def rows_sql(source: str, where: str = "TRUE") -> str:
    """The summary rows of the access logs in ``source`` (a relation with the store's
    columns): w, m, p, up, d, n, e4, e5."""
    return (
        f"WITH g AS (SELECT w, m, p, up, {_BUCKET} AS d, count(*) AS n, "
        "count(*) FILTER (WHERE st >= 400) AS e4, count(*) FILTER (WHERE st >= 500) AS e5 "
        "FROM (SELECT w, m, p, st, j[1] AS up, TRY_CAST(j[2] AS DOUBLE) AS ms "
        f"FROM (SELECT {TS} // {WINDOW_MS} AS w, {_METHOD} AS m, {_PATH} AS p, "
        f"{_STATUS} AS st, {LABELS} AS j FROM {source} WHERE ({where}) AND {_SVC} = '{GATEWAY}')) "
        "GROUP BY ALL) "
        "SELECT w, m, p, up, CAST(NULL AS INTEGER) AS d, sum(n)::BIGINT AS n, sum(e4)::BIGINT AS e4, "
        "sum(e5)::BIGINT AS e5 FROM g GROUP BY w, m, p, up "
        "UNION ALL SELECT w, m, p, up, d, n, 0, 0 FROM g WHERE d IS NOT NULL")


def write(con: duckdb.DuckDBPyConnection, table: str, parquet: Path) -> dict:
    """Write the summary of ``table`` (compaction's events) beside ``parquet``, fsynced;
    returns what the block index keeps of it."""
    path = red_path(parquet)
    tmp = path.with_name(path.name + layout.TMP_SUFFIX)
    con.execute(f"CREATE OR REPLACE TEMP TABLE red_rows AS {rows_sql(table)}")
    skip = sorted(r[0] for r in con.execute(f"SELECT DISTINCT w FROM red_rows WHERE d = {BAD}").fetchall())
    # s = 1: 2% buckets; s = SERIES_WIDTH: the series' wider ones (the same windows, ~40% of the rows);
    # w NULL: the whole file's, for a range that holds all of it, unless a window is skipped
    whole = "" if skip else ("UNION ALL SELECT NULL, m, p, up, d, sum(n)::BIGINT, sum(e4)::BIGINT, "
                             "sum(e5)::BIGINT, 1 FROM red_rows GROUP BY ALL")
    con.execute(f"CREATE OR REPLACE TEMP TABLE red_ok AS SELECT * FROM red_rows "
                f"WHERE w NOT IN (SELECT w FROM red_rows WHERE d = {BAD})")
    con.execute(f"COPY (SELECT *, 1 AS s FROM red_ok UNION ALL SELECT w, m, p, up, {coarse(SERIES_WIDTH)}, "
                f"sum(n)::BIGINT, sum(e4)::BIGINT, sum(e5)::BIGINT, {SERIES_WIDTH} FROM red_ok GROUP BY ALL "
                f"{whole} ORDER BY s, w NULLS FIRST, m, p, up, d NULLS FIRST) TO {sql_str(str(tmp))} "
                "(FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2)")
    con.execute("DROP TABLE red_rows")
    con.execute("DROP TABLE red_ok")
    fsync_path(tmp)
    tmp.replace(path)  # the directory is fsynced with the Parquet file's rename, the commit point
    return {"version": VERSION, "window_ms": WINDOW_MS, "series_width": SERIES_WIDTH, "skip": skip}


def usable(index: dict, parquet: Path) -> set[int] | None:
    """The windows of a file its summary cannot answer, or None when it has no usable summary
    (a file compacted before summaries, or with other windows, or its .red gone: then every
    block is read)."""
    red = index.get("red")
    if (not isinstance(red, dict) or red.get("version") != VERSION or red.get("window_ms") != WINDOW_MS
            or red.get("series_width") != SERIES_WIDTH or not red_path(parquet).exists()):
        return None
    return set(red.get("skip") or ())


def percentile(q: float, total: int, lo_d: int | None, hi_d: int | None, width: int = 1) -> float | None:
    """quantile_cont's interpolation between the ranks floor/ceil(q * (total - 1)), each
    rank's value its bucket's (stats_sql finds the buckets)."""
    if not total or lo_d is None or hi_d is None:
        return None
    r = q * (total - 1)
    a, b = value(lo_d, width), value(hi_d, width)
    return a + (r - math.floor(r)) * (b - a)


def stats_sql(rows: str, keys: str, qs: tuple[float, ...]) -> str:
    """Per ``keys`` over summary rows: requests, e4, e5, requests with a duration, whether a
    BAD duration is among them, and per q the buckets of ranks floor and ceil of q * (n - 1)."""
    w = "CASE WHEN d IS NOT NULL THEN n ELSE 0 END"
    ranks = ", ".join(f"min(d) FILTER (WHERE d IS NOT NULL AND cum > floor({q}::DOUBLE * (nd - 1))), "
                      f"min(d) FILTER (WHERE d IS NOT NULL AND cum > ceil({q}::DOUBLE * (nd - 1)))" for q in qs)
    return (f"SELECT {keys}, sum(n) FILTER (WHERE d IS NULL), sum(e4), sum(e5), any_value(nd), "
            f"bool_or(d = {BAD}), {ranks} FROM (SELECT *, "
            f"sum({w}) OVER (PARTITION BY {keys} ORDER BY d NULLS LAST) AS cum, "
            f"sum({w}) OVER (PARTITION BY {keys}) AS nd FROM (SELECT {keys}, d, sum(n) AS n, sum(e4) AS e4, "
            f"sum(e5) AS e5 FROM {rows} GROUP BY ALL)) GROUP BY ALL")
