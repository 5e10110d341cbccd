"""Health per instance (issue 17): which processes of the mesh are up, slow, silent, down or
unregistered, and since when.

An *instance* is a process: a node of the distributor's list (name, host, port) and/or a
shipping instance (a shipper's instance id, new at every boot, as the loss ledger sees it:
logs/ingest/ledger.py). A shipper's batches name the node it serves (``node: [host, port]``),
which links the two; a row of the table is one node address (or one unregistered shipping
instance), its instance ids oldest first (a new id on the same address is a restart).

The rules (docs/api.md, "mesh"), worst first:

* ``down``: it left the distributor's list ``DOWN_AFTER_MS`` ago or more, or its shipper's
  connection closed that long ago and nothing came back (a shipper reconnects within 3 s).
  A node that left with a goodbye (a clean stop: the distributor's list names it in
  ``left``) is no row at all, nor are the shipping instances that named it: it was stopped,
  it did not fail; one that vanished without one (a crash, kill -9) is down until forgotten;
* ``silent``: its shipper promised heartbeats and sent no event and no heartbeat for
  ``SILENT_AFTER_MS`` (or three of its heartbeat intervals, if longer), its connection open:
  a process that is frozen (``kill -STOP``), or stuck;
* ``slow``: the gateway's last answer charged to its address in the last minute was a
  timeout (504), and there were some (the reason says how many of them were replies it began
  and never ended with ``¶``: a broken service rather than a slow one); or, over the last minute, its median latency on a
  route is ``SLOW_FACTOR`` times that route's norm (its median over the hour before, all
  instances) and ``SLOW_MIN_EXTRA_MS`` above it, over ``SLOW_MIN_REQUESTS`` requests at
  least (:func:`latency_outliers`; both from the gateway's access log, read from the store);
* ``up``: listed, and none of the above; a node with no logmesh shipper (the book's Node
  services, the logs service itself) cannot be told silent from idle: it is up while listed;
* ``unregistered``: a shipping instance that no node of the list is, alive (it may also be
  ``silent`` or ``down`` by the same rules).

Pure: every function is handed the time it judges at (epoch ms); :class:`HealthTracker`
keeps what must be remembered (the nodes ever listed, each row's state and since) and says
which rows changed. No I/O: logs/health_monitor.py feeds it and stores the changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

UP, SLOW, SILENT, DOWN, UNREGISTERED = "up", "slow", "silent", "down", "unregistered"
STATES = (UP, SLOW, SILENT, DOWN, UNREGISTERED)

SILENT_AFTER_MS = 15_000  # no event and no heartbeat this long: silent (shippers beat every 5 s)
DOWN_AFTER_MS = 5_000  # off the list, or its connection closed, this long: down
LINK_GRACE_MS = 5_000  # a new instance naming no listed node waits this long for the list
FORGET_AFTER_MS = 600_000  # a row down this long leaves the table
SLOW_WINDOW_MS = 60_000  # the gateway's timeouts and an instance's latency: over this window
NORM_WINDOW_MS = 3_600_000  # a route's norm: its median over this window before the last one
SLOW_FACTOR = 5.0  # an instance's median this many times its route's norm is slow ...
SLOW_MIN_EXTRA_MS = 50.0  # ... and this much above it (a 1 ms route at 5 ms is not news)
SLOW_MIN_REQUESTS = 5  # requests of the instance on the route in the window, at least
NORM_MIN_REQUESTS = 20  # requests behind a route's norm, at least
WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # a service bound to every address names one of these


@dataclass(frozen=True)
class Seen:
    """One shipping instance, as the loss ledger(s) heard it (ledger.py's ``health()``)."""

    instance: str
    service: str = ""
    node: tuple[str, int] | None = None
    source: str = ""
    first_seen_ms: int = 0
    heard_ms: int = 0
    last_seen_ms: int = 0
    heartbeat_s: float = 0.0
    connections: int = 0
    dropped_ms: int = 0
    events: int = 0
    errors: int = 0
    missing: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Seen:
        node = d.get("node")
        ints = {k: int(d.get(k) or 0) for k in _INTS}
        return cls(instance=str(d["instance"]), service=str(d.get("service") or ""),
                   node=(str(node[0]), int(node[1])) if node else None,
                   source=str(d.get("source") or ""),
                   heartbeat_s=float(d.get("heartbeat_s") or 0), **ints)


_INTS = ("first_seen_ms", "heard_ms", "last_seen_ms", "connections", "dropped_ms", "events",
         "errors", "missing")


def merge(views: Iterable[Iterable[Mapping[str, Any]]]) -> list[Seen]:
    """Several workers' ledgers (``--workers N``) as one list: an instance ships over one
    connection at a time, but may have moved from one worker to another. Connections and
    errors add up (each worker counts its own); the rest is the worker that heard it last's
    (a worker that takes an instance over re-reads its numbers from the store)."""
    best: dict[str, Seen] = {}
    for view in views:
        for d in view:
            seen = Seen.from_dict(d)
            old = best.get(seen.instance)
            if old is None:
                best[seen.instance] = seen
                continue
            last, other = (seen, old) if seen.heard_ms >= old.heard_ms else (old, seen)
            firsts = [x for x in (last.first_seen_ms, other.first_seen_ms) if x]
            best[seen.instance] = Seen(
                last.instance, last.service or other.service, last.node or other.node, last.source,
                first_seen_ms=min(firsts, default=0), heard_ms=last.heard_ms,
                last_seen_ms=max(last.last_seen_ms, other.last_seen_ms),
                heartbeat_s=last.heartbeat_s, connections=last.connections + other.connections,
                dropped_ms=max(last.dropped_ms, other.dropped_ms), events=last.events,
                errors=last.errors + other.errors, missing=last.missing)
    return list(best.values())


@dataclass
class Listed:
    """A node of the distributor's list, as the tracker remembers it."""

    name: str
    host: str
    port: int
    urls: tuple[str, ...] = ()
    listed: bool = True
    first_listed_ms: int = 0
    left_ms: int = 0  # when it left the list (0 while listed)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.name, self.host, self.port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str = ""


def _ago(now: int, then: int) -> str:
    return f"{max(0, now - then) / 1000:.0f}s"


def silent_after_ms(seen: Seen) -> int:
    """How long an instance may say nothing: 15 s, or three heartbeats if it beats slower."""
    return max(SILENT_AFTER_MS, int(3 * seen.heartbeat_s * 1000))


def _gone(seen: Seen, now: int) -> bool:
    """Its shipper's connection closed DOWN_AFTER_MS ago or more, and nothing came back."""
    return not seen.connections and bool(seen.dropped_ms) and now - seen.dropped_ms >= DOWN_AFTER_MS


def _silent(seen: Seen, now: int) -> bool:
    return bool(seen.heartbeat_s) and seen.connections > 0 and \
        now - seen.heard_ms >= silent_after_ms(seen)


def latency_outliers(recent: Mapping[str, Iterable[tuple[str, int, float | None]]],
                     norm: Mapping[str, tuple[int, float | None]]) -> dict[str, str]:
    """``"host:port"`` -> why it is slow, for each address whose median latency on a route is
    far above that route's norm. ``recent``: per address, (route, requests, p50 ms) over the
    last window; ``norm``: per route, (requests, p50 ms) over the window before it."""
    out: dict[str, str] = {}
    for address, per_route in recent.items():
        worst: tuple[float, str] | None = None
        for route, n, p50 in per_route:
            base = norm.get(route)
            if p50 is None or n < SLOW_MIN_REQUESTS or base is None or base[1] is None \
                    or base[0] < NORM_MIN_REQUESTS:
                continue
            usual = max(base[1], 0.001)
            if p50 >= SLOW_FACTOR * usual and p50 - usual >= SLOW_MIN_EXTRA_MS:
                ratio = p50 / usual
                if worst is None or ratio > worst[0]:
                    worst = (ratio, f"{route}: median {p50:.0f} ms over {n} request(s) in the "
                                    f"last minute, {ratio:.0f}x its usual {usual:.0f} ms")
        if worst is not None:
            out[address] = worst[1]
    return out


def node_verdict(node: Listed, current: Seen | None, timeouts: int, now: int,
                 latency: str | None = None, unended: int = 0) -> Verdict:
    """The state of a (once) listed node whose newest shipping instance is ``current`` (None:
    none known), charged ``timeouts`` gateway timeouts not answered since (0: none), of which
    ``unended`` were replies it began and never ended; ``latency``: why its latency is far
    above its routes' norm (None: it is not)."""
    if not node.listed and now - node.left_ms >= DOWN_AFTER_MS:
        return Verdict(DOWN, f"left the distributor's list {_ago(now, node.left_ms)} ago")
    if current is not None:
        if _gone(current, now):
            return Verdict(DOWN, f"its shipper's connection closed {_ago(now, current.dropped_ms)} "
                                 "ago and nothing came back")
        if _silent(current, now):
            return Verdict(SILENT, f"no event and no heartbeat for {_ago(now, current.heard_ms)}")
    if timeouts > 0:
        why = f"{timeouts} gateway timeout(s) in the last minute, the last answer charged to it " \
              "among them"
        if unended:
            why = f"unended replies: {unended} (began and never ended with ¶); {why}"
        return Verdict(SLOW, why)
    if latency:
        return Verdict(SLOW, latency)
    return Verdict(UP)


def instance_verdict(seen: Seen, now: int) -> Verdict:
    """The state of a shipping instance that is no node of the list."""
    if _gone(seen, now):
        return Verdict(DOWN, f"its connection closed {_ago(now, seen.dropped_ms)} ago and "
                             "nothing came back")
    if _silent(seen, now):
        return Verdict(SILENT, f"no event and no heartbeat for {_ago(now, seen.heard_ms)}")
    return Verdict(UNREGISTERED, "ships logs; no node of the distributor's list is it")


def same_host(host: str) -> str:
    """``host`` as an IPv4 address when it is one mapped into IPv6 (``::ffff:127.0.0.1``): the
    book's Node distributor lists a node by its socket's ``remoteAddress``, which is that form
    when it listens on an IPv6 socket, while the node's shipper names ``127.0.0.1``."""
    if host[:7].lower() == "::ffff:" and "." in host:
        return host[7:]
    return host


def link(nodes: Iterable[Listed], seen: Iterable[Seen]) -> tuple[dict[tuple, list[Seen]], list[Seen]]:
    """Which shipping instances are which node: ``({node key: [instances]}, unlinked)``.

    An instance that names its node (``node: [host, port]``) is the node at that port whose
    host is the one named, the one its connection comes from, or any when it names a
    wildcard (a service bound to 0.0.0.0); of several, one of its service's name, listed now.
    One that names none (an older shipper, the gateway's) is the one node of its service's
    name at the host it ships from, if that node has no instance naming it; else unlinked.
    """
    by_port: dict[int, list[Listed]] = {}
    by_name_host: dict[tuple[str, str], list[Listed]] = {}
    for n in nodes:
        by_port.setdefault(n.port, []).append(n)
        by_name_host.setdefault((n.name, same_host(n.host)), []).append(n)
    linked: dict[tuple, list[Seen]] = {}
    nameless: list[Seen] = []
    unlinked: list[Seen] = []
    for s in seen:
        if s.node is None:
            nameless.append(s)
            continue
        host, port = same_host(s.node[0]), s.node[1]
        fits = [n for n in by_port.get(port, ())
                if same_host(n.host) in (host, same_host(s.source)) or host in WILDCARD_HOSTS]
        if not fits:
            unlinked.append(s)
            continue
        best = max(fits, key=lambda n: (same_host(n.host) == host, n.name == s.service, n.listed))
        linked.setdefault(best.key, []).append(s)
    for s in nameless:
        fits = by_name_host.get((s.service, same_host(s.source)), [])
        if len(fits) == 1 and not any(x.node is not None for x in linked.get(fits[0].key, ())):
            linked.setdefault(fits[0].key, []).append(s)
        else:
            unlinked.append(s)
    return linked, unlinked


@dataclass
class Row:
    """One line of the table: a node address, or an unregistered shipping instance."""

    key: tuple
    name: str
    verdict: Verdict
    host: str | None = None
    port: int | None = None
    registered: bool = False
    instances: list[Seen] = field(default_factory=list)  # oldest first
    first_listed_ms: int = 0
    timeouts: int = 0
    unended: int = 0  # of the timeouts, replies begun and never ended

    @property
    def current(self) -> Seen | None:
        return self.instances[-1] if self.instances else None

    def as_dict(self, since_ms: int) -> dict[str, Any]:
        cur = self.current
        return {
            "name": self.name,
            "instance": cur.instance if cur else None,
            "instances": [s.instance for s in self.instances],
            "address": f"{self.host}:{self.port}" if self.host is not None else None,
            "host": self.host, "port": self.port, "registered": self.registered,
            "state": self.verdict.state, "reason": self.verdict.reason, "since_ms": since_ms,
            "last_seen_ms": max((s.last_seen_ms for s in self.instances), default=None),
            "first_seen_ms": cur.first_seen_ms if cur else (self.first_listed_ms or None),
            "restarts": max(0, len(self.instances) - 1),
            "events": sum(s.events for s in self.instances),
            "errors": sum(s.errors for s in self.instances),
            "missing": sum(s.missing for s in self.instances),
            "heartbeat": bool(cur and cur.heartbeat_s),
            "timeouts": self.timeouts,
            "unended": self.unended,
        }


def rows(nodes: Iterable[Listed], seen: Iterable[Seen], timeouts: Mapping[str, int],
         now: int, latency: Mapping[str, str] | None = None,
         unended: Mapping[str, int] | None = None) -> list[Row]:
    """Every row and its state at ``now``. ``timeouts``: ``"host:port"`` -> gateway timeouts
    not answered since (:func:`logmesh.logs.health_monitor.gateway_timeouts`); ``latency``:
    ``"host:port"`` -> why it is slow (:func:`latency_outliers`); ``unended``: ``"host:port"``
    -> of its timeouts, replies begun and never ended (``gateway_unended``)."""
    latency = latency or {}
    unended = unended or {}
    nodes = list(nodes)
    linked, unlinked = link(nodes, seen)
    out: list[Row] = []
    for n in nodes:
        mine = sorted(linked.get(n.key, ()), key=lambda s: (s.first_seen_ms, s.instance))
        t = timeouts.get(n.address, 0)
        u = unended.get(n.address, 0) if t else 0
        out.append(Row(n.key, n.name, node_verdict(n, mine[-1] if mine else None, t, now,
                                                   latency.get(n.address), u),
                       n.host, n.port, n.listed, mine, n.first_listed_ms, t, u))
    for s in unlinked:
        if now - s.first_seen_ms < LINK_GRACE_MS and s.connections:
            continue  # its node may be in the distributor's next list
        if _gone(s, now) and now - s.dropped_ms >= FORGET_AFTER_MS:
            continue
        out.append(Row(("instance", s.instance), s.service or "?", instance_verdict(s, now),
                       instances=[s]))
    out.sort(key=lambda r: (r.name, r.host or "", r.port or 0, r.current.instance if r.current else ""))
    return out


@dataclass(frozen=True)
class Change:
    """A row whose state (or instance: a restart) changed; ``previous`` None: a new row."""

    row: dict[str, Any]
    previous: str | None
    restarted: bool = False


class HealthTracker:
    """Remembers the nodes ever listed and each row's state and since; :meth:`update` judges
    every row at a time and returns what changed."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str, int], Listed] = {}
        # (host, port) -> when the node there left with a goodbye: its shipping instances are
        # no row either, until it is listed again or FORGET_AFTER_MS passed
        self.goodbyes: dict[tuple[str, int], int] = {}
        self._states: dict[tuple, tuple[str, int, str | None]] = {}  # key -> state, since, instance
        self.table: list[dict[str, Any]] = []

    def observe_nodes(self, nodes: Iterable[Any], now: int,
                      left: Iterable[tuple[str, int]] = ()) -> None:
        """The distributor's list (``protocol.Node``s) as known at ``now``: nodes not in it
        are remembered as left, unless ``left`` (the list's goodbyes: (host, port)) names
        them: those are forgotten at once."""
        present = set()
        goodbyes = self.goodbyes
        for address in left:
            goodbyes.setdefault((same_host(address[0]), address[1]), now)
        for n in nodes:
            key = (n.name, n.host, n.port)
            present.add(key)
            goodbyes.pop((same_host(n.host), n.port), None)
            mem = self.nodes.get(key)
            if mem is None:
                self.nodes[key] = Listed(n.name, n.host, n.port, tuple(n.urls), True, now)
            else:
                mem.listed, mem.left_ms, mem.urls = True, 0, tuple(n.urls)
        for address in [a for a, t in goodbyes.items() if now - t >= FORGET_AFTER_MS]:
            del goodbyes[address]
        for key, mem in list(self.nodes.items()):
            if key in present:
                continue
            if (same_host(mem.host), mem.port) in goodbyes:
                del self.nodes[key]  # stopped cleanly: not down, gone
                continue
            if mem.listed:
                mem.listed, mem.left_ms = False, now
            elif now - mem.left_ms >= FORGET_AFTER_MS:
                del self.nodes[key]

    def update(self, seen: Iterable[Seen], timeouts: Mapping[str, int], now: int,
               latency: Mapping[str, str] | None = None,
               unended: Mapping[str, int] | None = None) -> list[Change]:
        changes: list[Change] = []
        table: list[dict[str, Any]] = []
        states: dict[tuple, tuple[str, int, str | None]] = {}
        goodbyes = self.goodbyes
        if goodbyes:  # the shipping instances of a node that said goodbye: no row either
            seen = [s for s in seen
                    if s.node is None or (same_host(s.node[0]), s.node[1]) not in goodbyes]
        for row in rows(self.nodes.values(), seen, timeouts, now, latency, unended):
            state = row.verdict.state
            cur = row.current.instance if row.current else None
            old = self._states.get(row.key)
            previous = old[0] if old is not None else None
            since = old[1] if old is not None and previous == state else now
            restarted = old is not None and old[2] is not None and cur is not None and cur != old[2]
            states[row.key] = (state, since, cur if cur is not None else (old[2] if old else None))
            d = row.as_dict(since)
            table.append(d)
            if previous != state or restarted:
                changes.append(Change(d, previous, restarted))
        self._states = states
        self.table = table
        return changes
