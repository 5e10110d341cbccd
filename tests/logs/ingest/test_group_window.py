"""An acked batch waits at most GROUP_WINDOW for the others of its group (one write, one
fsync), and not at all once every connection of the last group has sent: the mesh's
shippers send on the same ticks, so its group is whole when its last batch arrives."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from logmesh.logs.ingest import context
from logmesh.logs.ingest.context import GROUP_WINDOW, IngestContext
from logmesh.logs.ingest.tcp import LogIngestProtocol
from logmesh.logs.store.segment import SegmentWriter
from logmesh.protocol import encode
from tests.support.waiting import wait_until


class _Writer:
    fsync_mode = "batch"
    failure = None

    def __init__(self) -> None:
        self.on_flush: list = []
        self.on_handover: list = []

    def hand_over(self) -> None:
        for hook in self.on_handover:
            hook()


def test_the_window_ends_once_the_last_groups_connections_have_sent() -> None:
    writer = _Writer()
    ctx = IngestContext(writer)  # type: ignore[arg-type]
    a, b, c = object(), object(), object()
    assert [ctx.group_window(a), ctx.group_window(b)] == [GROUP_WINDOW] * 2  # no last group
    writer.hand_over()
    assert [ctx.group_window(b), ctx.group_window(a)] == [GROUP_WINDOW, 0.0]
    writer.hand_over()
    assert ctx.group_window(a) == GROUP_WINDOW  # b sent nothing this tick: the window ends it
    writer.hand_over()
    assert ctx.group_window(a) == 0.0  # the last group was a alone
    assert ctx.group_window(c) == 0.0  # a newcomer joins whatever group is open
    writer.hand_over()
    assert [ctx.group_window(a), ctx.group_window(c)] == [GROUP_WINDOW, 0.0]


def test_other_fsync_modes_have_no_window() -> None:
    writer = _Writer()
    writer.fsync_mode = "off"
    ctx = IngestContext(writer)  # type: ignore[arg-type]
    writer.hand_over()
    assert ctx.group_window(object()) == 0.0


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.replies: list[Any] = []

    def write(self, data: bytes) -> None:
        self.replies.append(orjson.loads(data.rstrip(b"\n").removesuffix("¶".encode())))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0


def _frame(service: str, first: int, key: int) -> bytes:
    return encode({"uri": "/logs", "method": "POST", "key": key, "ack": True,
                   "params": {"service": service, "instance": service + "-1",
                              "events": [[first, 1_700_000_000_000, f"event {first}"]]}})


async def test_a_whole_group_is_written_at_once_and_each_ack_follows_its_fsync(tmp_path,
                                                                              monkeypatch):
    writer = SegmentWriter(tmp_path, fsync="batch", fsync_interval=60.0)
    writer.start()
    try:
        ctx = IngestContext(writer)
        conns = []
        for service in ("gateway", "goods"):
            proto, transport = LogIngestProtocol(ctx), _Transport()
            proto.connection_made(transport)
            conns.append((service, proto, transport))
        monkeypatch.setattr(context, "GROUP_WINDOW", 0.05)
        for service, proto, _ in conns:  # the first tick: no last group, the window ends it
            proto.data_received(_frame(service, 1, 1))
        await wait_until(lambda: all(t.replies for _, _, t in conns), 10, "the first acks")
        assert writer.stats["fsyncs"] == 1
        monkeypatch.setattr(context, "GROUP_WINDOW", 3600.0)  # only a whole group is written now
        (_, first, t1), (_, second, t2) = conns
        first.data_received(_frame("gateway", 2, 2))
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(t1.replies) == 1 and writer.stats["fsyncs"] == 1, "waits for its group"
        second.data_received(_frame("goods", 2, 2))
        await wait_until(lambda: len(t1.replies) == len(t2.replies) == 2, 10, "the group's acks")
        assert writer.stats["fsyncs"] == 2
        assert [r["errorcode"] for r in t1.replies + t2.replies] == [0] * 4
    finally:
        await writer.close()
