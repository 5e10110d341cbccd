"""An acked batch waits at most GROUP_WINDOW for the others of its group (one write, one
fsync), and not at all once every connection that sent lately has sent to it: the mesh's
shippers send on the same ticks, so its group is whole when its last batch arrives."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from logmesh.logs.ingest import context
from logmesh.logs.ingest.context import GROUP_EXPECTS_SECONDS, GROUP_WINDOW, IngestContext
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


def test_the_window_ends_once_every_recent_connection_has_sent() -> None:
    writer = _Writer()
    ctx = IngestContext(writer)  # type: ignore[arg-type]
    a, b, c = object(), object(), object()
    tick = 0.05
    assert ctx.group_window(a, 0.0) == 0.0  # the first batch of all: nobody else is expected
    writer.hand_over()
    assert ctx.group_window(b, 0.001) == GROUP_WINDOW  # a sent a moment ago
    writer.hand_over()  # the window ended the group
    assert ctx.group_window(a, tick) == GROUP_WINDOW  # b sent within the last two ticks
    assert ctx.group_window(b, tick + 0.001) == 0.0  # whole: written at once
    writer.hand_over()
    # a late batch: b's comes after the window wrote a's, and waits for the window too (never
    # closed on a part of the connections, so never split where the window would not split it)
    assert ctx.group_window(a, 2 * tick) == GROUP_WINDOW
    writer.hand_over()
    assert ctx.group_window(b, 2 * tick + 0.008) == GROUP_WINDOW
    writer.hand_over()
    assert ctx.group_window(a, 3 * tick) == GROUP_WINDOW
    assert ctx.group_window(c, 3 * tick + 0.001) == GROUP_WINDOW  # a newcomer: b is expected
    assert ctx.group_window(b, 3 * tick + 0.002) == 0.0
    writer.hand_over()
    # c goes quiet: it is expected for GROUP_EXPECTS_SECONDS, then no more
    assert ctx.group_window(a, 4 * tick) == GROUP_WINDOW
    assert ctx.group_window(b, 4 * tick + 0.001) == GROUP_WINDOW
    writer.hand_over()
    later = 3 * tick + 0.001 + GROUP_EXPECTS_SECONDS + 0.001
    assert ctx.group_window(a, later) == GROUP_WINDOW  # b is expected
    assert ctx.group_window(b, later + 0.001) == 0.0  # c is not any more


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
        monkeypatch.setattr(context, "GROUP_EXPECTS_SECONDS", 3600.0)  # whatever the load
        monkeypatch.setattr(context, "GROUP_WINDOW", 0.05)
        for service, proto, _ in conns:  # the first tick, in one turn: one group
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
