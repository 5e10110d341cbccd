"""Shared by the sink tests: a store written like the logs writer writes it, events, waits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from logmesh.logs.store import layout
from tests.support.waiting import wait_until as _wait_until


def event(i: int, **extra: Any) -> dict[str, Any]:
    """A stored event as the HTTP/TCP ingest makes them (ECS names, epoch ms)."""
    now = 1_760_000_000_000 + i
    return {"@timestamp": now, "received_at": now, "service.name": ("goods", "members", "purchases")[i % 3],
            "http.request.method": "GET", "url.path": f"/goods/{i % 50}", "log.level": "info",
            "message": f"request {i}", "params": {"id": i, f"key{i % 997}": "v"}, **extra}


def poison(i: int) -> dict[str, Any]:
    """An event Elasticsearch refuses for its content: params nested deeper than depth_limit."""
    deep: Any = "bottom"
    for _ in range(25):
        deep = {"d": deep}
    return event(i, params=deep)


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """tests/support/waiting.py's, with a longer default: a sink waits out backoffs."""
    return await _wait_until(predicate, timeout, what)


@dataclass
class Store:
    """Writes a data directory's segments the way the logs writer does (for sink tests)."""

    data_dir: Path
    worker: int = 0
    counter: int = 1
    segments: list[str] = field(default_factory=list)

    def write(self, events: list[dict], *, seal: bool = True) -> list[int]:
        """One segment holding ``events`` (each gets its seq); returns the seqs."""
        seg_dir = self.data_dir / layout.SEGMENTS_DIR
        seg_dir.mkdir(parents=True, exist_ok=True)
        seqs = [layout.make_seq(self.counter + i, self.worker) for i in range(len(events))]
        name = layout.segment_name(self.worker, seqs[0])
        lines = [orjson.dumps({"seq": s, **ev}) + b"\n" for s, ev in zip(seqs, events, strict=True)]
        (seg_dir / name).write_bytes(b"".join(lines))
        if seal:
            self.seal(name, seqs, events, sum(map(len, lines)))
        self.counter += len(events)
        self.segments.append(name)
        return seqs

    def seal(self, name: str, seqs: list[int], events: list[dict], size: int) -> None:
        ts = [e.get("@timestamp", 0) for e in events]
        index = {"version": layout.SEGMENT_FORMAT_VERSION, "first_seq": seqs[0], "last_seq": seqs[-1],
                 "count": len(seqs), "min_ts": min(ts), "max_ts": max(ts), "bytes": size, "sparse": []}
        (self.data_dir / layout.SEGMENTS_DIR / layout.index_name(name)).write_bytes(orjson.dumps(index))

    def append(self, name: str, events: list[dict]) -> list[int]:
        """More events at the end of an unsealed segment."""
        seqs = [layout.make_seq(self.counter + i, self.worker) for i in range(len(events))]
        with open(self.data_dir / layout.SEGMENTS_DIR / name, "ab") as f:
            f.write(b"".join(orjson.dumps({"seq": s, **ev}) + b"\n" for s, ev in zip(seqs, events, strict=True)))
        self.counter += len(events)
        return seqs

    @property
    def last_seq(self) -> int:
        return layout.make_seq(self.counter - 1, self.worker) if self.counter > 1 else -1
