"""Build stores for query tests with the real SegmentWriter (no server, a fake clock)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import msgspec
import orjson

from logmesh.logs.event import Event
from logmesh.logs.store import layout
from logmesh.logs.store.segment import SegmentWriter

T0 = 1_795_626_000_000  # 2026-11-25T17:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


class FakeClock:
    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def event(ts: int, *, service: str | None = "goods", message: str | None = None,
          method: str | None = "GET", path: str | None = "/goods", status: int | None = 200,
          level: str | None = "info", trace: str | None = None, params: Any = None,
          labels: dict | None = None, **extra: Any) -> Event:
    ev = Event(timestamp=ts, received_at=ts + 1, service_name=service, method=method, path=path,
               status=status, level=level, message=message, trace_id=trace, labels=labels)
    if params is not None:
        ev.params = msgspec.Raw(orjson.dumps(params))
    for k, v in extra.items():
        setattr(ev, k, v)
    return ev


async def write_store(data_dir: Path, batches: list[list[Event]], *, worker: int = 0,
                      clock: FakeClock | None = None, seal_each: bool = True,
                      hour_step: int = HOUR) -> SegmentWriter:
    """Write each batch to its own segment (the clock moves an hour between batches).

    The last segment stays active (not sealed) unless ``seal_each`` and the writer is closed
    by the caller; returns the open writer.
    """
    clock = clock or FakeClock()
    writer = SegmentWriter(data_dir, worker, fsync="off", clock=clock)
    writer.open()
    writer.start()
    for i, batch in enumerate(batches):
        if i:
            clock.ms += hour_step
        last = writer.append_events(batch)
        await writer.durable(last)
    await asyncio.sleep(0)
    return writer


def compact_sealed(data_dir: Path,
                   block_rows: tuple[int, ...] = (16, 64, layout.PARQUET_ROW_GROUP_ROWS)) -> None:
    """Compact the sealed segments, oldest first, each with blocks (= row groups) of the next
    of ``block_rows`` rows (small ones, and the default an older store's files have), and
    remove them: the rare path, the usual path and the live table all answer."""
    from logmesh.logs.store.catalogue import list_segments
    from logmesh.logs.store.compact import compact_segment, new_connection, remove_segment

    con = new_connection()
    try:
        for seg, rows in zip([s for s in list_segments(data_dir) if s.sealed], block_rows,
                             strict=True):
            compact_segment(con, seg, data_dir / layout.PARQUET_DIR, rows)
            remove_segment(seg)
    finally:
        con.close()


def data_files(data_dir: Path) -> list[Path]:
    """The store's segments and Parquet files (what retention deletes by their age)."""
    return [p for sub in (layout.SEGMENTS_DIR, layout.PARQUET_DIR) if (data_dir / sub).exists()
            for p in (data_dir / sub).iterdir() if p.name.endswith((".ndjson", ".parquet"))]


def written_at(data_dir: Path, ms: int) -> None:
    """Every data file's mtime set to ``ms`` (the fake clock's time they were written at):
    retention deletes a file by age only once the file, too, is older than the retention."""
    for p in data_files(data_dir):
        os.utime(p, (ms / 1000, ms / 1000))
