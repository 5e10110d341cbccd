"""The loss ledger: loss accounting and de-duplication per shipping instance, from ``event.id``.

Each logmesh shipper numbers its events 1, 2, 3, ... per boot; the instance
id changes on every boot. From the numbers alone the logs service knows, per
instance, what it received, what is missing and what was resent: a user can
see that nothing was lost instead of trusting it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

DEDUPE_WINDOW_MS = 3600 * 1000  # resends are recognised this long after the first copy
_HAS_EVENT_ID = b'"event.id":"'


class _IdOnly(msgspec.Struct):
    event_id: str | None = msgspec.field(default=None, name="event.id")


_ids = msgspec.json.Decoder(_IdOnly)


def _event_ids(data: bytes) -> list[str]:
    """The top-level ``event.id`` of each stored line (never a key inside params or labels).

    One msgspec call for the whole segment, in C; a file with a damaged line
    is read line by line instead.
    """
    if _HAS_EVENT_ID not in data:
        return []
    whole = memoryview(data)[:data.rfind(b"\n") + 1]  # a torn last line is no event: not copied
    try:
        events = _ids.decode_lines(whole)
    except (msgspec.DecodeError, RecursionError):
        events = []
        for line in data[:len(whole)].splitlines():
            try:
                events.append(_ids.decode(line))
            except (msgspec.DecodeError, RecursionError):
                continue
    return [e.event_id for e in events if e.event_id]


def _mtime(path: Path) -> float:
    """When ``path`` was written; 0 for a file gone since it was listed (retention, a
    sibling's compaction): nothing to read in it."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@dataclass
class InstanceLedger:
    service: str = ""
    received: int = 0
    duplicates: int = 0
    watermark: int = 0  # every n <= watermark has been received
    above: set[int] = field(default_factory=set)  # received numbers > watermark
    last_seen_ms: int = 0

    @property
    def highest(self) -> int:
        return max(self.above) if self.above else self.watermark

    @property
    def missing(self) -> int:
        return self.highest - self.watermark - len(self.above)

    def add(self, n: int) -> bool:
        """Record number ``n``; False when it was already received (a resend)."""
        if n <= self.watermark or n in self.above:
            self.duplicates += 1
            return False
        self.received += 1
        if n == self.watermark + 1:
            self.watermark = n
            above = self.above
            while self.watermark + 1 in above:
                self.watermark += 1
                above.discard(self.watermark)
        else:
            self.above.add(n)
        return True


class ShipperLedger:
    """All instances seen by this process (re-read from the store at start)."""

    def __init__(self) -> None:
        self.instances: dict[str, InstanceLedger] = {}
        self.data_dir: Path | None = None  # set by rebuild(): where to look up unknown instances
        self.window_ms = DEDUPE_WINDOW_MS

    def add(self, instance: str, n: int, service: str = "", ts: int = 0) -> bool:
        led = self.instances.get(instance)
        if led is None:
            if n > 1 and self.data_dir is not None:
                # An instance we never heard of, not at its first event: it failed over from
                # another logs process (sharing our data directory) or wrote before our start.
                self._scan(self.data_dir, instance)
                led = self.instances.get(instance)
            if led is None:
                led = self.instances[instance] = InstanceLedger(service=service)
        if service and not led.service:
            led.service = service
        if ts > led.last_seen_ms:
            led.last_seen_ms = ts
        return led.add(n)

    def add_event_id(self, event_id: str, service: str = "", ts: int = 0) -> bool:
        instance, _, n = event_id.rpartition(":")
        if not instance or not n.isdigit():
            return True
        return self.add(instance, int(n), service, ts)

    def rebuild(self, data_dir: Path, window_ms: int = DEDUPE_WINDOW_MS) -> int:
        """Re-learn the numbers already stored, so resends after our restart are dropped.

        Reads what every worker stored in the last ``window_ms`` (segments and
        Parquet files); a resend older than that is not recognised.
        """
        self.data_dir = Path(data_dir)
        self.window_ms = window_ms
        seen = self._scan(self.data_dir, None)
        for led in self.instances.values():
            led.duplicates = 0  # what we re-read is not a duplicate
        return seen

    def _scan(self, data_dir: Path, only: str | None) -> int:
        from ..store import catalogue

        cutoff = time.time() - self.window_ms / 1000
        ids: list[tuple[str, int]] = []
        for seg in catalogue.list_segments(data_dir):
            try:
                if seg.path.stat().st_mtime < cutoff:  # by when it was stored, not event time:
                    continue  # old events arrive late (a drained spool, a clock behind)
                data = seg.path.read_bytes()
            except FileNotFoundError:
                continue  # compacted meanwhile: its Parquet file is read below
            for event_id in _event_ids(data):
                inst, _, n = event_id.rpartition(":")
                if n.isdigit() and (only is None or inst == only):
                    ids.append((inst, int(n)))
        parquet = [str(pq.path) for pq in catalogue.parquet_files(data_dir)
                   if _mtime(pq.path) >= cutoff]
        if parquet:
            import duckdb

            sql = 'SELECT "event.id" FROM read_parquet(?) WHERE "event.id" IS NOT NULL'
            args: list = [parquet]
            if only is not None:
                sql += ' AND starts_with("event.id", ?)'
                args.append(only + ":")
            try:
                rows = duckdb.connect().execute(sql, args).fetchall()
            except duckdb.Error:
                rows = []  # a file compacted or removed meanwhile: best effort
            for (event_id,) in rows:
                inst, _, n = event_id.rpartition(":")
                if n.isdigit():
                    ids.append((inst, int(n)))
        for instance, n in ids:
            led = self.instances.get(instance)
            if led is None:
                led = self.instances[instance] = InstanceLedger()
            if not led.add(n):
                led.duplicates -= 1  # the same event seen twice while compaction moved it
        return len(ids)

    def summary(self) -> list[dict]:
        return [{"instance": inst, "service": led.service, "received": led.received,
                 "highest": led.highest, "missing": led.missing, "duplicates": led.duplicates,
                 "last_seen_ms": led.last_seen_ms}
                for inst, led in sorted(self.instances.items())]
