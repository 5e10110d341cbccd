"""RED per route and per service: request rate, errors and duration (docs/api.md, /routes).

Read from what the mesh logs about each request:

    the gateway's access log     one event per HTTP request (service.name ``gateway``):
                                 ``http.request.method``, ``url.path``,
                                 ``http.response.status_code``, ``labels.upstream`` (the
                                 service that answered, or failed to in time) and
                                 ``labels.event.duration_ms`` (mesh/gateway.py)
    a service's request log      one event per request it received (``columns.REQUEST_SQL``:
                                 a method, and not the error record that repeats it); no
                                 status, no duration

A route is ``METHOD /path`` as the gateway was asked it; its ``upstream`` is the service
that answered most of its requests (ties: the first by name; none for a route only the
gateway itself answered: a 404, a 503 with no instance up). A service's numbers from the
gateway's view are its requests by ``labels.upstream``; ``logged_requests`` counts its own
request logs. Errors are statuses >= 400 (``server_errors``: >= 500).

Two ways to an answer, the same counts either way:

* from summaries (without a query): compaction counted each Parquet file's access logs per
  15-minute window, route, upstream and duration bucket (store/red_summary.py). The windows
  whose blocks all lie inside the range are answered from those rows; the rest (the range's
  edges up to their windows' ends, live and cold segments, files without a summary) is read
  and counted the same way, and both are added up. Percentiles are then estimates from the
  merged duration buckets, within red_summary.ERROR_BOUND (~1%) of the exact ones. The series
  needs an interval of whole windows for it (15 minutes and its multiples: a day's 100
  buckets are 15 minutes each).
* the exact pass: one DuckDB pass over the range, planned as the engine plans its other
  questions (plan.source), with exact percentiles (``quantile_cont``). Taken for a query
  (KQL) the summaries cannot answer, when no block of the range is summarized, when a
  duration no bucket holds is read, or when ``exact=True`` (the benchmark's peer).

Without a query the services' own counts are /mesh's (Engine.service_counts, from the
block index where it can), so only access logs are read. docs/benchmarks.md has what each
way costs over a day of 10M events.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from ..store import red_summary
from ..store.blocks import ParquetFile
from ..store.columns import REQUEST_SQL, TS, ident, sql_str
from ..store.duck import duckdb
from . import kql, plan
from .errors import DamagedFile, FileGone, QueryError

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("logmesh.logs.query")

GATEWAY = red_summary.GATEWAY  # the gateway's shipper's service name (cli.py)
MAX_ROUTES = 1_000  # routes per answer at most (?limit=)
MAX_SERIES_BUCKETS = 1_000  # buckets of a series (sparklines need no more; x routes x 4 arrays)

_SVC, _METHOD, _PATH, _STATUS = (ident(n) for n in ("service.name", "http.request.method", "url.path",
                                                     "http.response.status_code"))
_LABELS = red_summary.LABELS
_ADDRESS_LABELS = ("""json_extract_string(labels, ['$."upstream.address"', '$."event.duration_ms"', """
                   """'$."upstream.unended_bytes"'])""")
_QS = (0.5, 0.95, 0.99)


def _rates(n: int, errors: int, server_errors: int, seconds: float) -> dict[str, Any]:
    return {"requests": n, "rate_per_s": round(n / seconds, 3), "errors": errors,
            "server_errors": server_errors, "error_rate": round(errors / n, 4) if n else 0.0}


def _ms(q: list[float] | None) -> dict[str, float | None]:
    q = q or [None, None, None]  # type: ignore[list-item]
    return {f"p{name}_ms": None if v is None else round(v, 3) for name, v in zip(("50", "95", "99"), q, strict=True)}


def _route_name(method: str | None, path: str | None) -> str:
    return f"{method or '-'} {path or '-'}"


_ROUTE_NAME_SQL = "coalesce(m, '-') || ' ' || coalesce(p, '-')"  # _route_name's, in SQL


class Rest(NamedTuple):
    """The routes past an answer's ``limit``: how many, their requests and errors added up,
    and whether a BAD duration is among them (then the exact pass answers)."""

    routes: int
    requests: int
    errors: int
    server_errors: int
    bad: bool


def _busiest(engine: Engine, sql: str, params: list[Any], cols: str, *, route: str, pair: str,
             limit: int, bad: str = "false") -> tuple[list[tuple], Rest]:
    """The rows of ``sql`` (columns named ``cols``; among them m, p, n, e4, e5) with the rows
    of the ``route`` and ``pair`` predicates kept for the ``limit`` busiest routes only (by
    their ``route`` rows' n summed; ties by name, as the answer sorts), other rows all; and
    the rest added up. Why: a flood of distinct paths (60k routes) spent 5-9 s in Python
    building rows the answer then left off (docs/benchmarks.md, "Routes, bounded")."""
    route, pair = f"coalesce({route}, false)", f"coalesce({pair}, false)"
    top = int(limit)
    # x: the caller's rows, computed once (read by both parts below)
    rows_cte = f"x AS MATERIALIZED (SELECT * FROM ({sql}) AS x({cols}))"
    # t: one row a route (its ``route`` rows summed), ranked busiest first, ties by name
    ranked = (f"t AS (SELECT m AS tm, p AS tp, "
              f"row_number() OVER (ORDER BY sum(n) DESC, {_ROUTE_NAME_SQL}) AS rk, sum(n) AS tn, "
              f"sum(e4) AS te4, sum(e5) AS te5, bool_or({bad}) AS tbad FROM x WHERE {route} GROUP BY m, p)")
    # every row that is no route's or pair's, and those of the ``limit`` busiest routes;
    # the rest_* columns NULL mark them as kept rows
    kept_rows = (f"SELECT x.*, NULL::BIGINT AS rest_routes, NULL::HUGEINT AS rest_n, "
                 f"NULL::HUGEINT AS rest_e4, NULL::HUGEINT AS rest_e5, NULL::BOOLEAN AS rest_bad "
                 f"FROM x LEFT JOIN t ON ({route} OR {pair}) AND m IS NOT DISTINCT FROM tm "
                 f"AND p IS NOT DISTINCT FROM tp WHERE NOT ({route} OR {pair}) OR rk <= {top}")
    # one last row: the routes left off, added up (its rest_* never NULL)
    rest_row = (f"SELECT count(*) AS rest_routes, coalesce(sum(tn), 0) AS rest_n, "
                f"coalesce(sum(te4), 0) AS rest_e4, coalesce(sum(te5), 0) AS rest_e5, "
                f"coalesce(bool_or(tbad), false) AS rest_bad FROM t WHERE rk > {top}")
    _, rows = engine.db.run(f"WITH {rows_cte}, {ranked} {kept_rows} UNION ALL BY NAME {rest_row}", params)
    kept = [r[:-5] for r in rows if r[-5] is None]
    routes_, n, e4, e5, is_bad = next(r[-5:] for r in rows if r[-5] is not None)
    return kept, Rest(int(routes_), int(n), int(e4), int(e5), bool(is_bad))


def _other(rest: Rest, seconds: float) -> dict[str, Any]:
    """What an answer says of the routes it leaves off (``other``)."""
    return {"routes": rest.routes, **_rates(rest.requests, rest.errors, rest.server_errors, seconds)}


def _windows(pf: ParquetFile, i: int) -> range:
    lo, hi = pf.blocks[i][:2]
    return range(lo // red_summary.WINDOW_MS, hi // red_summary.WINDOW_MS + 1)


def _answerable(pf: ParquetFile, start: int, end: int, not_counted: set[int]) -> set[int]:
    """The blocks of ``pf`` its summary answers over [start, end]: inside the range, and
    every window they touch free of blocks that are read (outside the range, or in
    ``not_counted``) and of durations no bucket holds."""
    skip = red_summary.usable(pf.index, pf.path)
    if skip is None:
        return set()
    spoiled = set(skip)
    inside = set()
    for i, (lo, hi, *_) in enumerate(pf.blocks):
        if start <= lo and hi <= end and i not in not_counted:
            inside.add(i)
        else:
            spoiled.update(_windows(pf, i))
    return {i for i in inside if not spoiled.intersection(_windows(pf, i))}


def _summary_rows(snap: plan.Snapshot, start: int, end: int,
                  series: bool) -> tuple[str, list[ParquetFile]] | None:
    """The summary rows over [start, end] (red_summary.rows_sql's columns): the windows
    summarized and wholly answerable from their .red files (a file's own rows when it is
    all answered, unless for a ``series``), the rest counted from its events; and the files
    whose .red it reads. None when no window of the range answers."""
    not_counted: dict[str, set[int]] = {}
    while True:
        ok = {pf.path.name: _answerable(pf, start, end, not_counted.get(pf.path.name, set()))
              for pf in snap.parquet if pf.max_ts >= start and pf.min_ts <= end}
        src = plan.source(snap, start, end, from_index=lambda pf, i: i in ok.get(pf.path.name, ()))  # noqa: B023
        if src is None or not src.counted:
            return None
        counted: dict[str, tuple[ParquetFile, set[int]]] = {}
        for pf, i in src.counted:
            counted.setdefault(pf.path.name, (pf, set()))[1].add(i)
        # plan.source reads a block that shares a timestamp with a block it reads: then the
        # windows of that block are no longer whole, and their other blocks are read too
        dropped = {name: ok[name] - counted[name][1] if name in counted else ok[name] for name in ok}
        dropped = {name: blocks for name, blocks in dropped.items() if blocks}
        if not dropped:
            break
        for name, blocks in dropped.items():
            not_counted.setdefault(name, set()).update(blocks)
    cols = "w, m, p, up, d, n, e4, e5"
    scale = red_summary.SERIES_WIDTH if series else 1
    parts, whole = [], []
    for pf, blocks in counted.values():
        path = sql_str(str(red_summary.red_path(pf.path)))
        if len(blocks) == len(pf.blocks):  # all of it: read with the others (one scan of a list
            whole.append(path)              # of files takes a third of the time of one per file)
            continue
        windows = sorted({w for i in blocks for w in _windows(pf, i)})
        ranges = plan.merge_ranges([(w, w) for w in windows], len(windows))  # exact: never a superset
        cond = " OR ".join(f"(w BETWEEN {a} AND {z})" for a, z in ranges)
        parts.append(f"SELECT {cols} FROM read_parquet({path}) WHERE s = {scale} AND ({cond})")
    if whole:
        parts.insert(0, f"SELECT {cols} FROM read_parquet([{', '.join(whole)}]) "
                        + (f"WHERE s = {scale} AND w IS NOT NULL" if series else "WHERE w IS NULL"))
    if src.sql is not None:
        d = red_summary.coarse(scale) if series else "d"
        parts.append(f"SELECT w, m, p, up, {d} AS d, n, e4, e5 FROM ({red_summary.rows_sql(f'({src.sql})')})")
    return " UNION ALL ".join(parts), [pf for pf, _ in counted.values()]


def _from_summaries(engine: Engine, snap: plan.Snapshot, start: int, end: int, k: str,
                    qs: tuple[float, ...], params: list[Any], series: bool,
                    limit: int) -> tuple[list[tuple], Rest] | None:
    """Per route (tag 0: k, m, p), per upstream (tag 1: k, up; not for a ``series``) and
    per route and upstream (tag 2: requests only) from the summary rows, with ``k`` the
    time bucket's SQL over the window ``w``: rows of (tag, k, m, p, up, n, e4, e5, n with a
    duration, a BAD duration read, then per q two buckets; a series' SERIES_WIDTH wide).
    None: the exact pass must answer (nothing summarized, a duration no bucket holds, a
    .red that cannot be read). Rows of the ``limit`` busiest routes only (:func:`_busiest`)."""
    found = _summary_rows(snap, start, end, series)
    if found is None:
        return None
    rows_sql, files = found
    nq = 2 * len(qs)
    stats = red_summary.stats_sql
    ups = (f"SELECT 2, NULL, m, p, up, sum(n), 0, 0, 0, false, {', '.join(['NULL'] * nq)} "
           "FROM r WHERE d IS NULL AND up IS NOT NULL GROUP BY ALL")
    if series:  # ~250k rows a day, and as many after merging: read twice, not kept
        sql = (f"WITH r AS ({rows_sql}) SELECT 0, k, m, p, NULL, * EXCLUDE (k, m, p) FROM "
               f"({stats(f'(SELECT {k} AS k, m, p, d, n, e4, e5 FROM r)', 'k, m, p', qs)}) "
               f"UNION ALL {ups}")
    else:  # merged over the range first: a few thousand rows
        sql = (f"WITH r AS MATERIALIZED (SELECT {k} AS k, m, p, up, d, sum(n) AS n, sum(e4) AS e4, "
               f"sum(e5) AS e5 FROM ({rows_sql}) GROUP BY ALL) "
               f"SELECT 0, k, m, p, NULL, * EXCLUDE (k, m, p) FROM ({stats('r', 'k, m, p', qs)}) "
               f"UNION ALL SELECT 1, k, NULL, NULL, up, * EXCLUDE (k, up) FROM "
               f"({stats('(SELECT * FROM r WHERE up IS NOT NULL)', 'k, up', qs)}) UNION ALL {ups}")
    cols = ", ".join(["tag", "k", "m", "p", "up", "n", "e4", "e5", "nd", "bad", *(f"q{i}" for i in range(nq))])
    try:
        rows, rest = _busiest(engine, sql, params, cols, route="tag = 0", pair="tag = 2", limit=limit, bad="bad")
    except (QueryError, DamagedFile, duckdb.Error):  # plain duckdb.Error: a damaged footer
        _set_aside_unreadable(engine, files)
        return None
    if rest.bad or any(r[9] for r in rows):
        return None
    return rows, rest


def _set_aside_unreadable(engine: Engine, files: list[ParquetFile]) -> None:
    """A question over summaries failed: the files whose .red cannot be read are answered by
    reading their events from now on (said in the log); the exact pass answers this one."""
    for pf in files:
        path = red_summary.red_path(pf.path)
        try:
            engine.db.run(f"SELECT sum(n), sum(e4), sum(e5), max(d), max(w), count(m), count(p), count(up) "
                          f"FROM read_parquet({sql_str(str(path))})", [])
        except (QueryError, DamagedFile, FileGone, duckdb.Error) as exc:
            log.warning("%s: its RED summary cannot be read (%s); its events are read instead", path.name, exc)
            pf.index.pop("red", None)


def _how(summed: object) -> str:
    """What the answer's percentiles are: ``exact``, or ``estimated`` from summaries (within
    red_summary.ERROR_BOUND of the exact ones; docs/api.md)."""
    return "exact" if summed is None else "estimated"


def _pick_upstream(counts: dict[str, int]) -> str | None:
    """The service that answered most of a route's requests (ties: the first by name)."""
    return min(counts, key=lambda u: (-counts[u], u)) if counts else None


def _ms_from(q_buckets: tuple, total: int, qs: tuple[float, ...]) -> list[float | None]:
    return [red_summary.percentile(q, total, q_buckets[2 * j], q_buckets[2 * j + 1]) for j, q in enumerate(qs)]


def routes(engine: Engine, node: kql.Node | None, start: int, end: int, *, limit: int = 100,
           now: int, exact: bool = False) -> dict[str, Any]:
    """Per route and per service over [start, end]: requests, rate, errors, p50/p95/p99.
    ``exact``: the exact pass even where summaries could answer (the benchmark's peer)."""
    seconds = max((end - start + 1) / 1000, 0.001)
    every = node is None or isinstance(node, kql.MatchAll)
    snap = engine.refresh(max_age=0.05)
    found: list[dict[str, Any]] = []
    services: dict[str, dict[str, Any]] = {}

    def service(name: str) -> dict[str, Any]:
        s = services.get(name)
        if s is None:
            s = services[name] = {**_rates(0, 0, 0, seconds), **_ms(None), "logged_requests": 0}
        return s

    summed = _from_summaries(engine, snap, start, end, "0", _QS, [], False, limit) if every and not exact else None
    src = plan.source(snap, start, end)
    ups: dict[tuple, dict[str, int]] = {}
    rest = Rest(0, 0, 0, 0, False)
    if summed is not None:
        rows, rest = summed
        for tag, _, m, p, up, n, e4, e5, nd, _, *qb in rows:
            if tag == 2:
                ups.setdefault((m, p), {})[up] = int(n)
                continue
            q = _ms_from(tuple(qb), int(nd or 0), _QS)
            if tag == 0:  # a window holding a duration no bucket holds is never summarized: none
                found.append({"route": _route_name(m, p), "method": m, "path": p,
                              **_rates(int(n), int(e4), int(e5), seconds), **_ms(q), "durations_ignored": 0})
            else:
                service(up).update({**_rates(int(n), int(e4), int(e5), seconds), **_ms(q)})
    elif src is not None and src.sql is not None:
        where, params = plan.where(node, now)
        # Grouping sets: routes, routes by upstream and upstreams over the access logs, services
        # over their own request logs; the other combinations (a service's log by route, ...)
        # are dropped. Without a query the services' own counts are /mesh's, from the block
        # index where it can (a third of the time of this pass over a day): only access logs
        # are read here.
        logs = f"{_SVC} = '{GATEWAY}'" if every else f"{_SVC} = '{GATEWAY}' OR ({REQUEST_SQL})"
        sets = "(gw, m, p), (gw, m, p, up), (gw, up)" + ("" if every else ", (gw, svc)")
        rows, rest = _busiest(engine,
            f"SELECT GROUPING(m, p) = 0 AS by_route, GROUPING(up) = 0 AS by_upstream, gw, m, p, up, "
            f"{'NULL' if every else 'svc'}, "
            "count(*), count(*) FILTER (WHERE st >= 400), count(*) FILTER (WHERE st >= 500), "
            f"quantile_cont(ms, [0.5, 0.95, 0.99]), count(raw) - count(ms) "
            f"FROM (SELECT *, {red_summary.held_sql('raw')} AS ms "
            f"FROM (SELECT svc, svc = '{GATEWAY}' AS gw, m, p, st, j[1] AS up, TRY_CAST(j[2] AS DOUBLE) AS raw "
            f"FROM (SELECT {_SVC} AS svc, {_METHOD} AS m, {_PATH} AS p, {_STATUS} AS st, "
            f"CASE WHEN {_SVC} = '{GATEWAY}' THEN {_LABELS} END AS j FROM ({src.sql}) "
            f"WHERE ({where}) AND ({logs})))) GROUP BY GROUPING SETS ({sets})", params,
            "by_route, by_upstream, gw, m, p, up, svc, n, e4, e5, q, ignored",
            route="by_route AND NOT by_upstream AND gw",
            pair="by_route AND (by_upstream OR NOT gw)", limit=limit)  # services' own logs by route: dropped below
        for by_route, by_upstream, gw, m, p, up, svc, n, e4, e5, q, ignored in rows:
            if by_route and by_upstream and gw:
                if up is not None:
                    ups.setdefault((m, p), {})[up] = n
            elif by_route and gw:
                found.append({"route": _route_name(m, p), "method": m, "path": p,
                              **_rates(n, e4, e5, seconds), **_ms(q), "durations_ignored": ignored})
            elif by_upstream and gw and up is not None:
                service(up).update({**_rates(n, e4, e5, seconds), **_ms(q)})
            elif not by_route and not by_upstream and not gw and svc is not None:
                service(svc)["logged_requests"] = n
    if every and src is not None:
        for svc, c in engine.service_counts(start, end).items():
            if svc != GATEWAY and c["requests"]:
                service(svc)["logged_requests"] = c["requests"]
    for r in found:
        r["upstream"] = _pick_upstream(ups.get((r["method"], r["path"]), {}))
    found.sort(key=lambda r: (-r["requests"], r["route"]))
    return {"from": start, "to": end, "seconds": round(seconds, 3), "routes": found,
            "routes_left_off": rest.routes, "other": _other(rest, seconds),
            "services": dict(sorted(services.items())), "percentiles": _how(summed)}


class AddressRoute(NamedTuple):
    """The gateway's answers charged to one upstream address on one route (:func:`by_address`)."""

    address: str
    route: str
    requests: int
    p50_ms: float | None
    timeouts: int  # answered 504: the upstream did not answer in time
    newest_ms: int  # the newest answer's time, and its status
    newest_status: int | None
    unended: int = 0  # of the timeouts, replies the upstream began and never ended (the
    # access log's ``upstream.unended_bytes``: mesh/client.py's UnendedReply)


def by_address(engine: Engine, start: int, end: int) -> list[AddressRoute]:
    """Per upstream address and route, the gateway's access logs over [start, end]: one exact
    pass that both of the health monitor's rules read (logs/health_monitor.py: timeouts and
    latency). A pass per address cost as many passes as addresses."""
    src = plan.source(engine.refresh(max_age=0.05), start, end)
    if src is None or src.sql is None:
        return []
    _, rows = engine.db.run(
        f"SELECT j[1], m, p, count(*), quantile_cont({red_summary.held_sql('TRY_CAST(j[2] AS DOUBLE)')}, 0.5), "
        f"count(*) FILTER (WHERE st = 504), max(ts), arg_max(st, ts), "
        f"count(*) FILTER (WHERE st = 504 AND j[3] IS NOT NULL) "
        f"FROM (SELECT {TS} AS ts, {_METHOD} AS m, {_PATH} AS p, {_STATUS} AS st, "
        f"{_ADDRESS_LABELS} AS j FROM ({src.sql}) WHERE {_SVC} = '{GATEWAY}') "
        f"WHERE j[1] IS NOT NULL GROUP BY ALL", [])
    return [AddressRoute(a, _route_name(m, p), int(n), None if q is None else round(q, 3),
                         int(t), int(newest), st, int(u)) for a, m, p, n, q, t, newest, st, u in rows]


def series(engine: Engine, node: kql.Node | None, start: int, end: int, *,
           interval: int | None = None, limit: int = 100, now: int, exact: bool = False) -> dict[str, Any]:
    """Per route and time bucket: requests, errors, server errors and p95 (sparklines).
    ``exact``: the exact pass even where summaries could answer (the benchmark's peer)."""
    interval, first, nb = plan.buckets(start, end, interval, MAX_SERIES_BUCKETS)
    snap = engine.refresh(max_age=0.05)
    every = node is None or isinstance(node, kql.MatchAll)
    summed = None
    if every and not exact and interval % red_summary.WINDOW_MS == 0:  # a window is in one bucket
        summed = _from_summaries(engine, snap, start, end, f"(w * {red_summary.WINDOW_MS} - ?) // ?", (0.95,),
                                 [first, interval], True, limit)
    rows: list[tuple] = []
    rest = Rest(0, 0, 0, 0, False)
    if summed is not None:
        summary_rows, rest = summed
        for tag, k, m, p, up, n, e4, e5, nd, _, *qb in summary_rows:
            if tag == 0:
                p95 = red_summary.percentile(0.95, int(nd or 0), qb[0], qb[1], red_summary.SERIES_WIDTH)
                rows.append((True, k, m, p, int(n), int(e4), int(e5), p95, None, None))
            elif tag == 2:
                rows.append((False, None, m, p, None, None, None, None, up, int(n)))
    else:
        src = plan.source(snap, start, end)
        if src is not None and src.sql is not None:
            where, params = plan.where(node, now)
            rows, rest = _busiest(engine,
                "SELECT GROUPING(k) = 0, k, m, p, count(*), count(*) FILTER (WHERE st >= 400), "
                "count(*) FILTER (WHERE st >= 500), quantile_cont(ms, 0.95), up, count(up) "
                f"FROM (SELECT ({TS} - ?) // ? AS k, {_METHOD} AS m, {_PATH} AS p, {_STATUS} AS st, "
                f"j[1] AS up, {red_summary.held_sql('TRY_CAST(j[2] AS DOUBLE)')} AS ms "
                f"FROM (SELECT *, {_LABELS} AS j FROM ({src.sql}) WHERE ({where}) AND {_SVC} = '{GATEWAY}')) "
                "GROUP BY GROUPING SETS ((k, m, p), (m, p, up))", [first, interval] + params,
                "by_bucket, k, m, p, n, e4, e5, p95, up, n_up", route="by_bucket", pair="NOT by_bucket",
                limit=limit)
    by_route: dict[tuple, dict[str, Any]] = {}
    ups: dict[tuple, dict[str, int]] = {}
    for by_bucket, k, m, p, n, e4, e5, p95, up, n_up in rows:
        if not by_bucket:  # the (route, upstream) set: whom the route's requests went to
            if up is not None:
                ups.setdefault((m, p), {})[up] = n_up
            continue
        r = by_route.get((m, p))
        if r is None:
            r = by_route[(m, p)] = {"route": _route_name(m, p), "method": m, "path": p, "total": 0,
                                    "requests": [0] * nb, "errors": [0] * nb,
                                    "server_errors": [0] * nb, "p95_ms": [None] * nb}
        r["total"] += n
        r["requests"][k], r["errors"][k], r["server_errors"][k] = n, e4, e5
        r["p95_ms"][k] = None if p95 is None else round(p95, 3)
    found = sorted(by_route.values(), key=lambda r: (-r["total"], r["route"]))
    for r in found:
        r["upstream"] = _pick_upstream(ups.get((r["method"], r["path"]), {}))
        r["requests_total"] = r.pop("total")
    return {"interval_ms": interval, "from": start, "to": end,
            "buckets": [first + i * interval for i in range(nb)],
            "routes": found, "routes_left_off": rest.routes,
            "other": _other(rest, max((end - start + 1) / 1000, 0.001)), "percentiles": _how(summed)}
