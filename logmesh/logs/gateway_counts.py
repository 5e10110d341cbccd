"""The gateway's answers counted as the store takes them: what the health monitor asks of the
last minute (per upstream address and route) and of the hour before it (per route), without a
DuckDB query.

The monitor used to ask DuckDB every 5 s (query/red.py ``by_address``) and once a minute
(``routes``); each question first loads every event written since the last one into DuckDB's
live table, which was 30-40% of the logs service's CPU per request in a mesh under traffic
(issue 22, docs/benchmarks.md). Here the store's writer shows each block of events it takes
to :meth:`GatewayCounts.add`, which keeps, for the gateway's access logs only:

* per second of ``@timestamp``, per (address, route): requests, timeouts (504), of them the
  replies begun and never ended (``labels.upstream.unended_bytes``), the newest
  answer's time and status, and a count per distinct duration (the gateway's are rounded to
  the microsecond: a few hundred values a second) for an exact median, as ``quantile_cont``
  gives it, without sorting every request's duration nor importing numpy (~0.15 s of CPU and
  ~20 MB at the first question);
* per minute, per route: requests and a count per duration bucket of the RED summaries
  (store/red_summary.py: the same buckets, the same estimate within ``ERROR_BOUND``) for the
  route's norm.

Windows are whole seconds (the last minute) and whole minutes (the hour before): at most a
second of the minute's oldest edge is left out, which no rule of health.py can notice.

What it cannot know is what the store held before this process started: the monitor asks
DuckDB as before until the counts cover its window (:meth:`covers`), at once when the store
was quiet long enough at start (:func:`health_monitor.counts_from`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import msgspec
import orjson
from msgspec import UNSET

from .query.red import AddressRoute
from .store import red_summary

log = logging.getLogger("logmesh.logs.health")

GATEWAY = red_summary.GATEWAY
MAX_KEYS = 1_000  # (address, route) pairs in a second, routes in a minute (red.MAX_ROUTES): more
# is no mesh the gateway serves but a flood (a scanner's random paths, each a 404 route); what
# does not fit is not counted, and DuckDB answers until what was lost is out of the windows
SKEW_MS = 60_000  # an event lost now may carry a @timestamp this far ahead of our clock


class _Answers:
    """One second's answers charged to one (address, route)."""

    __slots__ = ("requests", "timeouts", "unended", "newest_ms", "newest_status", "ms")

    def __init__(self) -> None:
        self.requests = 0
        self.timeouts = 0
        self.unended = 0  # of the timeouts, replies begun and never ended (client.UnendedReply)
        self.newest_ms = -1
        self.newest_status: int | None = None
        # duration bucket (_bucket's) -> duration -> requests that took it: a median merges
        # only the buckets of its middle ranks
        self.ms: dict[int, dict[float, int]] = {}


def _duration(value: Any) -> float | None:
    """``labels.event.duration_ms`` as ``TRY_CAST(... AS DOUBLE)`` reads it: a number or a
    numeric string; anything else (absent, a bool, text) is no duration."""
    if value.__class__ is float or value.__class__ is int:
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_BUCKETS: dict[float, int] = {}  # duration -> bucket: a mesh's durations repeat (ms, 3 decimals)
_BUCKETS_MAX = 65_536  # ~5 MB at most; cleared when full


def _bucket(ms: float) -> int:
    """red_summary's duration bucket of ``ms`` (its ``_BUCKET`` SQL), remembered: two logs and
    a floor were a fifth of counting an access log."""
    d = _BUCKETS.get(ms)
    if d is None:
        if len(_BUCKETS) >= _BUCKETS_MAX:
            _BUCKETS.clear()
        d = _BUCKETS[ms] = _bucket_of(ms)
    return d


def _bucket_of(ms: float) -> int:
    if ms == 0:
        return red_summary.ZERO
    if 0 < ms <= red_summary.MAX_MS:
        return math.floor(math.log(ms) / math.log(red_summary.GAMMA))
    return red_summary.BAD


def _median(counts: list[dict[int, dict[float, int]]]) -> float | None:
    """``quantile_cont(ms, 0.5)`` over the durations counted (each second's, by bucket), rounded
    as red.by_address rounds it.

    Only the one or two buckets holding the middle ranks are merged and sorted: merging every
    second's durations took 268 ms of the loop every 5 s at 5,000 POSTs a second (300,000
    mostly distinct durations in the minute; docs/benchmarks.md, "Shipping's cost, the logs
    service's side"). A bucket holds a contiguous range of durations (``_bucket`` is monotonic
    from ZERO up); a duration no bucket holds (negative, too long, not a number) is not
    counted (``add``), as the exact pass leaves it out (red_summary.held_sql)."""
    sizes: dict[int, int] = {}
    for c in counts:
        for d, inner in c.items():
            sizes[d] = sizes.get(d, 0) + sum(inner.values())
    found = _at_ranks_by_bucket(counts, sizes)
    if found is None:
        return None
    a, b = found
    return round(a + 0.5 * (b - a), 3)


def _at_ranks_by_bucket(counts: list[dict[int, dict[float, int]]],
                        sizes: dict[int, int]) -> tuple[float, float] | None:
    """``_at_median_ranks`` of the durations in ``counts``, given how many each bucket holds."""
    n = sum(sizes.values())
    if not n:
        return None
    found = []
    seen = 0
    for d in sorted(sizes):
        size = sizes[d]
        for rank in ((n - 1) // 2, n // 2)[len(found):]:
            if rank >= seen + size:
                break
            merged: dict[float, int] = {}
            for c in counts:
                for ms, k in c.get(d, _EMPTY).items():
                    merged[ms] = merged.get(ms, 0) + k
            found.append(_value_at(merged, rank - seen))
        if len(found) == 2:
            return found[0], found[1]
        seen += size
    return None  # not reached: the ranks are below n


_EMPTY: dict[float, int] = {}
_EMPTY_LABELS: dict[str, Any] = {}
_BAD = red_summary.BAD
_NOT = object()  # GatewayCounts.add's last method and path when they were not text


def _value_at(counts: dict[float, int], rank: int) -> float:
    """The value at ``rank`` (from 0) of ``counts`` (value -> how many) in sorted order."""
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen > rank:
            return value
    raise ValueError("rank out of range")


def _at_median_ranks(counts: dict) -> tuple[Any, Any] | None:
    """The values at ranks floor and ceil of (n - 1) / 2 of ``counts`` (value -> how many),
    in sorted order: what a median interpolates between; None when nothing is counted."""
    n = sum(counts.values())
    if not n:
        return None
    ranks = ((n - 1) // 2, n // 2)
    found: list = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(found) < 2 and seen > ranks[len(found)]:
            found.append(value)
        if len(found) == 2:
            break
    return found[0], found[1]


class GatewayCounts:
    """The gateway's answers of the last ``window_ms`` and the ``norm_ms`` before it, counted
    from the events the store takes; ``started_ms``: when counting began."""

    def __init__(self, window_ms: int, norm_ms: int, started_ms: int | None = None) -> None:
        self.window_ms = window_ms
        self.norm_ms = norm_ms
        self.started_ms = int(time.time() * 1000) if started_ms is None else started_ms
        self.seconds: dict[int, dict[tuple[str, str], _Answers]] = {}
        self.minutes: dict[int, dict[str, list]] = {}  # route -> [requests, {bucket: n}]
        # when (our clock, ms) an answer, or a route's request, was last left uncounted
        self.lost_answers_ms: int | None = None
        self.lost_norms_ms: int | None = None
        # the second's and the minute's dicts counted into last (_forget forgets them too)
        self._second: int | None = None
        self._per_key: dict[tuple[str, str], _Answers] = {}
        self._minute: int | None = None
        self._per_route: dict[str, list] = {}

    # -- the store's side --------------------------------------------------------------------
    def add(self, events: list) -> None:
        """Count the gateway's access logs among ``events`` (a block the store took).

        One loop with every step inline, no call an event: the method, ``_duration`` and
        ``_bucket`` calls were ~1,300 of ~11,000 instructions an access log (docs/benchmarks.md
        "with shipping on, tenth part"). A block's access logs mostly repeat the last one's
        route, address and second: the route's text, its minute's counts and the second's
        ``_Answers`` are kept from the last event while those are equal, not formatted and
        looked up again (10,880 -> 9,043 instructions an access log, docs/benchmarks.md
        "twelfth part: the logs service's side")."""
        buckets = _BUCKETS
        # the last event's: method and path (text only: _NOT for any other, which equals nothing),
        # its route; the minute's dict and route counts; the second's dict, address and answers
        method_was = path_was = _NOT
        route = None
        r_per_route = r = a_per_key = address_was = a_route = a = None
        raw = msgspec.Raw
        for ev in events:
            if ev.service_name != GATEWAY:
                continue
            try:
                ts = ev.timestamp
                method, path = ev.method, ev.path
                if method != method_was or path != path_was:
                    route = f"{method or '-'} {path or '-'}"
                    if method.__class__ is str and path.__class__ is str:
                        method_was, path_was = method, path
                    else:
                        method_was = _NOT
                    r = None  # another route: its counts are looked up
                labels = ev.labels or _EMPTY_LABELS
                if labels.__class__ is raw:  # the HTTP bulk paths keep the labels' JSON: read as a dict
                    labels = orjson.loads(memoryview(labels))
                if labels.__class__ is dict:
                    duration, address = labels.get("event.duration_ms"), labels.get("upstream.address")
                    unended = labels.get("upstream.unended_bytes") is not None
                else:  # an acked batch's access log (ingest/shipped.py's AccessLabels): attributes;
                    # never an unended reply's (its label takes ingest's general path)
                    duration, address = labels.duration, labels.address
                    unended = False
                    if duration is UNSET:
                        duration = None
                    if address is UNSET:
                        address = None
                if duration.__class__ is float or duration.__class__ is int:
                    ms = float(duration)
                else:
                    ms = _duration(duration)
                minute = ts // 60_000
                if minute == self._minute:  # most events fall in the minute (and second) of the last
                    per_route = self._per_route
                else:
                    per_route = self.minutes.get(minute)
                    if per_route is None:
                        per_route = self.minutes[minute] = {}
                        self._forget(int(time.time() * 1000))
                    self._minute, self._per_route = minute, per_route
                if ms is None:
                    d = None
                else:
                    d = buckets.get(ms)
                    if d is None:
                        d = _bucket(ms)
                    if d == _BAD:  # negative, too long, not a number: no duration (red.held_sql)
                        d = None
                if r is None or per_route is not r_per_route:
                    r = per_route.get(route)
                    if r is None and len(per_route) < MAX_KEYS:
                        r = per_route[route] = [0, {}]
                    r_per_route = per_route
                if r is None:
                    self.lost_norms_ms = int(time.time() * 1000)
                else:
                    r[0] += 1
                    if d is not None:
                        rd = r[1]
                        rd[d] = rd.get(d, 0) + 1
                if address is None:
                    continue
                if address.__class__ is not str:  # json_extract_string: a value's JSON text
                    address = str(address).lower() if isinstance(address, bool) else str(address)
                second = ts // 1000
                if second == self._second:
                    per_key = self._per_key
                else:
                    per_key = self.seconds.get(second)
                    if per_key is None:
                        per_key = self.seconds[second] = {}
                    self._second, self._per_key = second, per_key
                if a is None or per_key is not a_per_key or address != address_was or \
                        route is not a_route:
                    a = per_key.get((address, route))
                    if a is None:
                        if len(per_key) >= MAX_KEYS:
                            self.lost_answers_ms = int(time.time() * 1000)
                            continue
                        a = per_key[(address, route)] = _Answers()
                    a_per_key, address_was, a_route = per_key, address, route
                a.requests += 1
                status = ev.status
                if status == 504:
                    a.timeouts += 1
                    if unended:
                        a.unended += 1
                if ts >= a.newest_ms:  # a tie: the one stored last
                    a.newest_ms, a.newest_status = ts, status
                if d is not None:
                    inner = a.ms.get(d)
                    if inner is None:
                        inner = a.ms[d] = {}
                    inner[ms] = inner.get(ms, 0) + 1
            except Exception:  # never the store's problem: DuckDB answers meanwhile
                log.exception("gateway counts: an access log could not be counted")
                self.lost_answers_ms = self.lost_norms_ms = int(time.time() * 1000)

    def _forget(self, now: int) -> None:
        """Drop what no window reaches any more (the hour and a minute before ``now``)."""
        oldest = now - self.window_ms - self.norm_ms - 60_000
        for second in [s for s in self.seconds if s * 1000 < now - self.window_ms - 2_000]:
            del self.seconds[second]
        for minute in [m for m in self.minutes if (m + 1) * 60_000 <= oldest]:
            del self.minutes[minute]
        self._second = self._minute = None  # add looks its dicts up again

    # -- the monitor's side ------------------------------------------------------------------
    def covers(self, start: int, since_ms: int, norms: bool = False) -> bool:
        """May [start, now] be answered from the counts (the minute's answers, or with
        ``norms`` the routes' norms)? Only if they began by ``start``, or the store held nothing
        of the range then (``since_ms``: from when the counts are whole, see
        health_monitor.counts_from), and nothing left uncounted can lie in it."""
        lost = self.lost_norms_ms if norms else self.lost_answers_ms
        return start >= since_ms and (lost is None or start > lost + SKEW_MS)

    def by_address(self, now: int) -> list[AddressRoute]:
        """red.by_address over the whole seconds of [now - window_ms, now]."""
        self._forget(now)
        first, last = -(-(now - self.window_ms) // 1000), now // 1000
        merged: dict[tuple[str, str], list] = {}
        for second, per_key in self.seconds.items():
            if not first <= second <= last:
                continue
            for key, a in per_key.items():
                m = merged.get(key)
                if m is None:
                    m = merged[key] = [0, 0, -1, None, [], 0]
                m[0] += a.requests
                m[1] += a.timeouts
                if a.newest_ms >= m[2]:
                    m[2], m[3] = a.newest_ms, a.newest_status
                if a.ms:
                    m[4].append(a.ms)
                m[5] += a.unended
        return [AddressRoute(address, route, n, _median(ms), t, newest, status, u)
                for (address, route), (n, t, newest, status, ms, u) in merged.items()]

    def route_norms(self, now: int) -> dict[str, tuple[int, float | None]]:
        """health_monitor.route_norms over the whole minutes of the ``norm_ms`` before the
        last ``window_ms``: per route, requests and the estimated median (red_summary's)."""
        end = now - self.window_ms - 1
        first, last = -(-(end - self.norm_ms) // 60_000), (end + 1) // 60_000 - 1
        merged: dict[str, list] = {}
        for minute, per_route in self.minutes.items():
            if not first <= minute <= last:
                continue
            for route, (n, buckets) in per_route.items():
                m = merged.setdefault(route, [0, {}])
                m[0] += n
                for d, k in buckets.items():
                    m[1][d] = m[1].get(d, 0) + k
        return {route: (n, _estimated_median(buckets)) for route, (n, buckets) in merged.items()}


def _estimated_median(buckets: dict[int, int]) -> float | None:
    """red_summary.percentile's median over merged duration buckets (None with a duration no
    bucket holds, as the summaries then leave it to an exact pass)."""
    if red_summary.BAD in buckets:
        return None
    found = _at_median_ranks(buckets)
    if found is None:
        return None
    q = red_summary.percentile(0.5, sum(buckets.values()), found[0], found[1])
    return None if q is None else round(q, 3)
