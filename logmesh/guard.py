"""Who gets a connection, and for how long: every listener's :class:`ConnectionGuard`.

At most ``max_connections`` connections per listener, counted from the moment
asyncio accepts them (a burst cannot pass the cap); when the port is full, the
oldest connection that has not yet identified itself (no complete first
packet, no good hello) makes room for a newcomer, so a flood of silent sockets
cannot lock shippers out; a budget of bytes held in partial packets across
connections, a cap on unsent bytes per connection, and header/idle timeouts
(slowloris). The limits themselves are :class:`logmesh.security.Limits`.

Every connection refused or cut is counted in ``logmesh_connection_limits_total{reason}``,
a prometheus-client counter of the server's :class:`logmesh.metrics.Metrics` (or of a
registry of the guard's own when none is given).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics, number, value
from .security import Limits, token_matches

log = logging.getLogger("logmesh.security")

SWEEP_INTERVAL = 1.0  # seconds between checks of every connection's timers and buffers
# The listen backlog of every port (the kernel caps it at net.core.somaxconn). asyncio's
# default of 100 overflowed under a reconnecting flood of 1,024 sockets: the kernel dropped
# the SYNs past it, and a shipper's connect waited for its SYN to be sent again, 1 s later.
# Accepted, a connection meets the guard, which makes room or closes it at once.
LISTEN_BACKLOG = 4096
# The connections a server accepts in one turn of the event loop (asyncio's create_server backlog is
# both listen()'s and the accept loop's count, see deep_listen). All of a backlog's in one turn,
# a wave of 3,000 connects held /healthz 116-134 ms; 64 a turn, 29-39 ms, for the same CPU
# (bench/accept_wave.py, docs/benchmarks.md). The workers' shared ingest port (ingest/balance.py)
# accepts as many a wake-up.
ACCEPT_BATCH = 64


def deep_listen(server: asyncio.AbstractServer) -> None:
    """For a server made with ``backlog=ACCEPT_BATCH``: listen again with LISTEN_BACKLOG, so
    the kernel's queue stays deep while the loop accepts ACCEPT_BATCH a turn (through a
    duplicate of each socket's descriptor: the same socket, by public API)."""
    for sock in server.sockets:  # type: ignore[attr-defined]
        with socket.socket(sock.family, sock.type, fileno=os.dup(sock.fileno())) as dup:
            dup.listen(LISTEN_BACKLOG)
# The reasons of logmesh_connection_limits_total: a connection refused or closed by a limit.
LIMIT_REASONS = ("refused_connections", "evicted", "auth_failures", "header_timeouts",
                 "identify_timeouts", "idle_timeouts", "buffer_limit", "slow_readers")


class RateLimitedLog:
    """At most ``per_interval`` lines per ``interval`` seconds; then one line counting the rest.

    A flood of bad input must not become a flood of log lines (and the CPU they cost).
    """

    def __init__(self, logger: logging.Logger, per_interval: int = 20, interval: float = 10.0) -> None:
        self.logger, self.per_interval, self.interval = logger, per_interval, interval
        self._window = 0.0
        self._count = 0
        self._suppressed = 0

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if now - self._window > self.interval:
            if self._suppressed:
                self.logger.warning("... %d similar message(s) suppressed in the last %.0fs",
                                    self._suppressed, self.interval)
            self._window, self._count, self._suppressed = now, 0, 0
        self._count += 1
        if self._count <= self.per_interval:
            self.logger.warning(msg, *args, **kwargs)
        else:
            self._suppressed += 1


class Refused(asyncio.Protocol):
    """What a connection past the limit gets: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


_nofile_raised = False


def raise_nofile_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit (once).

    Each port may hold ``--max-connections`` sockets, but the usual soft limit is
    1,024 files for the whole process: a flood would exhaust it first, and asyncio
    then stops accepting on *every* port for a second at a time (EMFILE). Servers
    commonly do this at start (Go's runtime does it for every program).
    """
    global _nofile_raised
    if _nofile_raised:
        return
    _nofile_raised = True
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            log.info("raised the open-file limit from %d to %d", soft, want)
    except (OSError, ValueError) as exc:  # e.g. macOS caps the soft limit below "infinity"
        log.warning("could not raise the open-file limit: %s", exc)


class Guarded:
    """Fields a guarded connection keeps for its :class:`ConnectionGuard` (mixin)."""

    transport: asyncio.Transport | None = None
    authed = True
    identified = False  # sent a complete first packet (open mode) or a good hello
    opened_at = 0.0
    last_read = 0.0
    partial_since = 0.0  # when the partial packet we hold was started (0: none held)
    held = 0  # bytes of that partial packet, counted in the guard's budget
    paused = False  # reading paused by us (backpressure): its timers do not run


@dataclass
class ConnectionGuard:
    """One TCP listener's limits and token, enforced per connection.

    Connections report in (``opened``/``track``/``closed``); a sweeper task
    closes those past a timeout or holding too many unsent bytes. ``silent``
    holds the connections not yet identified, oldest first: the ones a full
    port closes for a newcomer, and times out while more than half full.

    ``metrics``: the registry its counter goes to (the server's; one of its own if None),
    with ``labels`` on every sample (``{"worker": "0"}``, ``{"service": "goods"}``).
    """

    name: str
    limits: Limits = field(default_factory=Limits)
    tokens: tuple[bytes, ...] = ()
    conns: set = field(default_factory=set)
    silent: dict = field(default_factory=dict)  # not yet identified, oldest first
    buffered: int = 0
    metrics: Metrics | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._task: asyncio.Task | None = None
        self.warn = RateLimitedLog(logging.getLogger(f"logmesh.{self.name}"))
        limits = (self.metrics or Metrics()).counter(
            "logmesh_connection_limits_total", "Connections refused or closed by a limit, by reason.",
            [*self.labels, "reason"])
        self._limited = {reason: limits.labels(*self.labels.values(), reason)
                         for reason in LIMIT_REASONS}

    @property
    def stats(self) -> dict[str, int]:
        """Connections refused or cut, by reason: read from the metric."""
        return {reason: int(number(value(c))) for reason, c in self._limited.items()}

    @property
    def requires_auth(self) -> bool:
        return bool(self.tokens)

    def check(self, token: str | None) -> bool:
        return token_matches(token, self.tokens)

    def _identified(self, conn: Guarded) -> bool:
        if not conn.identified and conn.authed and self.requires_auth:
            conn.identified = True  # a hello with nothing after it never reached track()
        return conn.identified

    def factory(self, make: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.BaseProtocol]:
        """Wrap a protocol factory; the connection counts from here.

        asyncio makes the protocols of a whole burst of accepted sockets before any
        ``connection_made`` runs, so counting there let bursts past the cap. When
        the port is full the oldest silent connection is closed for the new one;
        only a port full of identified connections refuses it.
        """

        def guarded() -> asyncio.BaseProtocol:
            if len(self.conns) >= self.limits.max_connections and not self._make_room():
                self._limited["refused_connections"].inc()
                self.warn.warning("%s: %d connections open, all identified (--max-connections); "
                                  "closing a new one", self.name, len(self.conns))
                return Refused()
            proto = make()
            if isinstance(proto, Guarded):
                proto.opened_at = proto.last_read = time.monotonic()
                self.conns.add(proto)
                self.silent[proto] = None
            return proto

        return guarded

    def _make_room(self) -> bool:
        """Close the oldest connection that has not identified itself; False if there is none
        (protocols whose ``connection_made`` has not run yet cannot be closed)."""
        victim, spoke = None, []
        for conn in self.silent:
            if self._identified(conn):
                spoke.append(conn)
            elif conn.transport is not None and not conn.transport.is_closing():
                victim = conn
                break
        for conn in spoke:
            del self.silent[conn]
        if victim is None:
            return False
        self._drop(victim, "evicted", "sent nothing usable in %.1fs and the port is full "
                   "(--max-connections %d): making room for a new connection",
                   time.monotonic() - victim.opened_at, self.limits.max_connections)
        return True

    # -- what connections report ------------------------------------------------------
    def opened(self, conn: Guarded) -> None:
        if conn not in self.conns:  # made without factory()
            conn.opened_at = conn.last_read = time.monotonic()
            self.conns.add(conn)
            if not conn.identified:
                self.silent[conn] = None
        if self._task is None:
            self.start()

    def closed(self, conn: Guarded) -> None:
        self.conns.discard(conn)
        self.silent.pop(conn, None)
        self.buffered -= conn.held
        conn.held = 0

    def track(self, conn: Guarded, held: int, produced: bool) -> bool:
        """After a read: ``held`` bytes of a partial packet remain; ``produced``: packets completed.

        When the listener's partial packets pass ``max_buffered``, the connections holding the
        *oldest* unfinished packets are cut until a quarter of the budget is free again: a
        working client finishes its packets quickly, so the stale ones are the attackers'.
        False when ``conn`` itself was cut.
        """
        now = time.monotonic()
        conn.last_read = now
        if produced and not conn.identified and conn.authed:
            conn.identified = True
            self.silent.pop(conn, None)
        if held:
            if produced or not conn.partial_since:
                conn.partial_since = now  # a new packet started in this read
        else:
            conn.partial_since = 0.0
        grew = held - conn.held
        if grew:
            self.buffered += grew
            conn.held = held
            if grew > 0 and self.buffered > self.limits.max_buffered:
                return conn not in self._shed()
        return True

    def _shed(self) -> list[Guarded]:
        """Cut the connections with the oldest partial packets until 3/4 of the budget is used."""
        target = self.limits.max_buffered * 3 // 4
        holders = sorted((c for c in self.conns if c.held), key=lambda c: c.partial_since)
        cut = []
        for victim in holders:
            if self.buffered <= target:
                break
            self._drop(victim, "buffer_limit", "holds %d bytes of a packet started %.1fs ago while "
                       "the port's budget for unfinished packets (--max-buffered %d) is spent",
                       victim.held, time.monotonic() - victim.partial_since,
                       self.limits.max_buffered)
            victim.partial_since = 0.0
            cut.append(victim)
        return cut

    def auth_failed(self, conn: Guarded, missing: bool) -> None:
        self._limited["auth_failures"].inc()
        self.warn.warning("%s: refused %s: %s", self.name, _peer(conn),
                          "no token" if missing else "wrong token")

    # -- the sweeper ----------------------------------------------------------------------
    def start(self) -> None:
        raise_nofile_limit()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._sweep(), name=f"guard-{self.name}")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        lim = self.limits
        for conn in list(self.conns):
            transport = conn.transport
            if transport is None:  # accepted, never made: a TLS handshake that failed
                if now - conn.opened_at > lim.header_timeout + SWEEP_INTERVAL:
                    self.closed(conn)
                continue
            if transport.is_closing():
                continue
            if transport.get_write_buffer_size() > lim.max_connection_buffer:
                self._drop(conn, "slow_readers", "does not read its replies (%d bytes unsent, "
                           "--max-connection-buffer)", transport.get_write_buffer_size())
            elif not conn.authed and now - conn.opened_at > lim.header_timeout:
                self._drop(conn, "header_timeouts", "sent no hello within %.0fs (--header-timeout)",
                           lim.header_timeout)
            elif conn.partial_since and not conn.paused \
                    and now - conn.partial_since > lim.header_timeout:
                self._drop(conn, "header_timeouts", "left a packet unfinished for %.0fs "
                           "(--header-timeout)", lim.header_timeout)
            elif lim.idle_timeout and not conn.paused and now - conn.last_read > lim.idle_timeout:
                self._drop(conn, "idle_timeouts", "sent nothing for %.0fs (--idle-timeout)",
                           lim.idle_timeout)
        # While more than half full, silent connections past identify_timeout go, oldest first,
        # until half full. Only then: the book's Node services open their log connection long
        # before their first request and never reopen it, and gateways hold idle links.
        excess = len(self.conns) - lim.max_connections // 2
        for conn in list(self.silent):
            if excess <= 0 or now - conn.opened_at <= lim.identify_timeout:
                break
            if self._identified(conn):
                del self.silent[conn]
            elif conn.transport is not None and not conn.transport.is_closing():
                self._drop(conn, "identify_timeouts", "sent nothing usable in %.1fs while the "
                           "port is more than half full", now - conn.opened_at)
                excess -= 1

    def _drop(self, conn: Guarded, reason: str, why: str, *args: Any) -> None:
        """Close ``conn`` for ``reason`` (counted, logged) and free its slot and bytes now:
        ``connection_lost`` comes later."""
        self._limited[reason].inc()
        self.warn.warning("%s: closing %s: " + why, self.name, _peer(conn), *args)
        self.closed(conn)
        if conn.transport is not None:
            conn.transport.abort()


def _peer(conn: Guarded) -> str:
    peer = conn.transport.get_extra_info("peername") if conn.transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else "a peer"
