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
that answered most of its requests (none for a route only the gateway itself answered: a
404, a 503 with no instance up). A service's numbers from the gateway's view are its
requests by ``labels.upstream``; ``logged_requests`` counts its own request logs.
Errors are statuses >= 400 (``server_errors``: >= 500); percentiles are exact
(``quantile_cont``) over the requests that carry a duration.

Each question is one DuckDB pass over the range, planned as the engine plans its other
questions (plan.source: Parquet files and blocks by time, the live table, cold segments);
without a query, the services' own counts are /mesh's (Engine.service_counts, from the
block index where it can) and the pass reads the access logs only. The block index keeps
no durations, so a day of a busy mesh reads that day's access logs' ``labels``:
docs/benchmarks.md has what that costs (seconds, not the 100 ms the other questions take).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store.columns import REQUEST_SQL, TS, ident
from . import kql, plan

if TYPE_CHECKING:
    from .engine import Engine

GATEWAY = "gateway"  # the gateway's shipper's service name (cli.py)
MAX_ROUTES = 1_000  # routes per answer at most (?limit=)
MAX_SERIES_BUCKETS = 1_000  # buckets of a series (sparklines need no more; x routes x 4 arrays)

_SVC, _METHOD, _PATH, _STATUS = (ident(n) for n in ("service.name", "http.request.method", "url.path",
                                                     "http.response.status_code"))
# one JSON parse per access log for both labels (a list of paths: ~2x faster than two calls)
_LABELS = """json_extract_string(labels, ['$."upstream"', '$."event.duration_ms"'])"""


def _rates(n: int, errors: int, server_errors: int, seconds: float) -> dict[str, Any]:
    return {"requests": n, "rate_per_s": round(n / seconds, 3), "errors": errors,
            "server_errors": server_errors, "error_rate": round(errors / n, 4) if n else 0.0}


def _ms(q: list[float] | None) -> dict[str, float | None]:
    q = q or [None, None, None]  # type: ignore[list-item]
    return {f"p{name}_ms": None if v is None else round(v, 3) for name, v in zip(("50", "95", "99"), q, strict=True)}


def _route_name(method: str | None, path: str | None) -> str:
    return f"{method or '-'} {path or '-'}"


def routes(engine: Engine, node: kql.Node | None, start: int, end: int, *, limit: int = 100,
           now: int) -> dict[str, Any]:
    """Per route and per service over [start, end]: requests, rate, errors, p50/p95/p99."""
    seconds = max((end - start + 1) / 1000, 0.001)
    every = node is None or isinstance(node, kql.MatchAll)
    snap = engine.refresh(max_age=0.05)
    src = plan.source(snap, start, end)
    rows: list[tuple] = []
    if src is not None and src.sql is not None:
        where, params = plan.where(node, now)
        # Grouping sets: routes and upstreams over the access logs, services over their own
        # request logs; the other combinations (a service's log by route, ...) are dropped.
        # Without a query the services' own counts are /mesh's, from the block index where it
        # can (a third of the time of this pass over a day): only access logs are read here.
        logs = f"{_SVC} = '{GATEWAY}'" if every else f"{_SVC} = '{GATEWAY}' OR ({REQUEST_SQL})"
        sets = "(gw, m, p), (gw, up)" if every else "(gw, m, p), (gw, up), (gw, svc)"
        _, rows = engine.db.run(
            f"SELECT GROUPING(m, p) = 0 AS by_route, GROUPING(up) = 0 AS by_upstream, gw, m, p, up, "
            f"{'NULL' if every else 'svc'}, "
            "count(*), count(*) FILTER (WHERE st >= 400), count(*) FILTER (WHERE st >= 500), "
            "quantile_cont(ms, [0.5, 0.95, 0.99]), mode(up) "
            f"FROM (SELECT svc, svc = '{GATEWAY}' AS gw, m, p, st, j[1] AS up, TRY_CAST(j[2] AS DOUBLE) AS ms "
            f"FROM (SELECT {_SVC} AS svc, {_METHOD} AS m, {_PATH} AS p, {_STATUS} AS st, "
            f"CASE WHEN {_SVC} = '{GATEWAY}' THEN {_LABELS} END AS j FROM ({src.sql}) "
            f"WHERE ({where}) AND ({logs}))) GROUP BY GROUPING SETS ({sets})", params)
    if every and src is not None:
        rows.extend((False, False, False, None, None, None, svc, c["requests"], 0, 0, None, None)
                    for svc, c in engine.service_counts(start, end).items()
                    if svc != GATEWAY and c["requests"])
    found: list[dict[str, Any]] = []
    services: dict[str, dict[str, Any]] = {}

    def service(name: str) -> dict[str, Any]:
        s = services.get(name)
        if s is None:
            s = services[name] = {**_rates(0, 0, 0, seconds), **_ms(None), "logged_requests": 0}
        return s

    for by_route, by_upstream, gw, m, p, up, svc, n, e4, e5, q, upstream in rows:
        if by_route and gw:
            found.append({"route": _route_name(m, p), "method": m, "path": p, "upstream": upstream,
                          **_rates(n, e4, e5, seconds), **_ms(q)})
        elif by_upstream and gw and up is not None:
            service(up).update({**_rates(n, e4, e5, seconds), **_ms(q)})
        elif not by_route and not by_upstream and not gw and svc is not None:
            service(svc)["logged_requests"] = n
    found.sort(key=lambda r: (-r["requests"], r["route"]))
    return {"from": start, "to": end, "seconds": round(seconds, 3), "routes": found[:limit],
            "routes_left_off": max(0, len(found) - limit),
            "services": dict(sorted(services.items()))}


def series(engine: Engine, node: kql.Node | None, start: int, end: int, *,
           interval: int | None = None, limit: int = 100, now: int) -> dict[str, Any]:
    """Per route and time bucket: requests, errors, server errors and p95 (sparklines)."""
    interval, first, nb = plan.buckets(start, end, interval, MAX_SERIES_BUCKETS)
    snap = engine.refresh(max_age=0.05)
    src = plan.source(snap, start, end)
    rows: list[tuple] = []
    if src is not None and src.sql is not None:
        where, params = plan.where(node, now)
        _, rows = engine.db.run(
            "SELECT GROUPING(k) = 0, k, m, p, count(*), count(*) FILTER (WHERE st >= 400), "
            "count(*) FILTER (WHERE st >= 500), quantile_cont(ms, 0.95), up, count(up) "
            f"FROM (SELECT ({TS} - ?) // ? AS k, {_METHOD} AS m, {_PATH} AS p, {_STATUS} AS st, "
            "j[1] AS up, TRY_CAST(j[2] AS DOUBLE) AS ms "
            f"FROM (SELECT *, {_LABELS} AS j FROM ({src.sql}) WHERE ({where}) AND {_SVC} = '{GATEWAY}')) "
            "GROUP BY GROUPING SETS ((k, m, p), (m, p, up))", [first, interval] + params)
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
        counts = ups.get((r["method"], r["path"]), {})
        r["upstream"] = min(counts, key=lambda u: (-counts[u], u)) if counts else None
        r["requests_total"] = r.pop("total")
    return {"interval_ms": interval, "from": start, "to": end,
            "buckets": [first + i * interval for i in range(nb)],
            "routes": found[:limit], "routes_left_off": max(0, len(found) - limit)}
