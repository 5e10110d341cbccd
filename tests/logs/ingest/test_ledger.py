"""The loss ledger (logmesh/logs/ingest/ledger.py) on its own.

Per shipping instance, from the event numbers alone: how many were received,
which are missing, which were resent (dropped as duplicates); and after a
restart, the numbers already in the store (segments and Parquet files of the
dedupe window) are learned again, so a resend is still stored once.
"""

from __future__ import annotations

import asyncio
import os
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.ingest.ledger import DEDUPE_WINDOW_MS, InstanceLedger, ShipperLedger
from logmesh.logs.store import layout
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.reader import list_segments
from tests.support.store import HOUR, FakeClock, event, write_store

# -- one instance: against a set of numbers -------------------------------------------------


def check_against(led: InstanceLedger, seen: set[int], duplicates: int) -> None:
    watermark = 0
    while watermark + 1 in seen:
        watermark += 1
    highest = max(seen, default=0)
    assert led.received == len(seen)
    assert led.duplicates == duplicates
    assert led.watermark == watermark
    assert led.above == {n for n in seen if n > watermark}
    assert led.highest == highest
    assert led.missing == highest - len(seen) == len(set(range(1, highest + 1)) - seen)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 60), max_size=120))
def test_instance_ledger_is_a_set_of_numbers(numbers):
    led = InstanceLedger()
    seen: set[int] = set()
    duplicates = 0
    for n in numbers:
        new = n not in seen
        assert led.add(n) is new, f"{n} {'new' if new else 'a resend'}"
        seen.add(n)
        duplicates += not new
        check_against(led, seen, duplicates)


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(1, 41))))
def test_every_order_of_the_same_numbers_ends_with_nothing_above_the_watermark(order):
    led = InstanceLedger()
    for n in order:
        assert led.add(n)
    assert led.watermark == 40 and led.above == set() and led.missing == 0


def test_missing_numbers_are_counted_until_they_arrive():
    led = InstanceLedger()
    for n in (1, 2, 5, 9):
        led.add(n)
    assert (led.watermark, led.highest, led.missing) == (2, 9, 5)
    assert not led.add(5) and led.duplicates == 1
    for n in (3, 4):
        led.add(n)
    assert (led.watermark, led.above, led.missing) == (5, {9}, 3)
    for n in (6, 7, 8):
        led.add(n)
    assert (led.watermark, led.above, led.missing, led.received) == (9, set(), 0, 9)


# -- many instances ---------------------------------------------------------------------------


def test_instances_are_counted_apart_with_their_service_and_last_time():
    ledger = ShipperLedger()
    assert ledger.add("a", 1, "goods", ts=10)
    assert ledger.add("b", 1, "members", ts=5)
    assert ledger.add("a", 3, ts=30)
    assert not ledger.add("a", 1, ts=20)  # a resend: counted, and never moves the time back
    assert ledger.summary() == [
        {"instance": "a", "service": "goods", "received": 2, "highest": 3, "missing": 1,
         "duplicates": 1, "last_seen_ms": 30},
        {"instance": "b", "service": "members", "received": 1, "highest": 1, "missing": 0,
         "duplicates": 0, "last_seen_ms": 5},
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(1, 40), max_size=12), max_size=10))
def test_a_run_recorded_at_once_leaves_the_ledger_adding_each_number_would(batches):
    """tcp.py takes a batch whose numbers follow the watermark in one add_run call; any
    other batch (a gap, a resend, numbers above the watermark) is refused whole, unrecorded,
    and added number by number: the same ledger and answers either way."""
    one, run = ShipperLedger(), ShipperLedger()
    for k, ns in enumerate(batches):
        ts = 100 + k
        kept = [one.add("a", n, "goods", ts) for n in ns]
        before = run.summary()
        if run.add_run("a", ns, "goods", ts):
            assert all(kept)
        else:
            assert run.summary() == before  # refused: nothing recorded
            assert [run.add("a", n, "goods", ts) for n in ns] == kept
        assert run.summary() == one.summary()
        assert {i: led.above for i, led in run.instances.items()} == \
            {i: led.above for i, led in one.instances.items()}


def test_a_run_is_taken_whole_only_when_it_follows_the_watermark():
    ledger = ShipperLedger()
    assert not ledger.add_run("a", [1, 2, 3])  # never heard: add() (it may scan the store)
    ledger.add("a", 1, "goods", ts=10)
    assert ledger.add_run("a", [2, 3, 4], ts=40)
    assert ledger.instances["a"].watermark == 4 and ledger.instances["a"].received == 4
    assert ledger.instances["a"].last_seen_ms == 40
    assert not ledger.add_run("a", [4, 5])  # a resend among them
    assert not ledger.add_run("a", [6, 7])  # a gap
    assert not ledger.add_run("a", [5, 5])  # the same number twice
    ledger.add("a", 7)
    assert not ledger.add_run("a", [5, 6])  # numbers above the watermark: add() joins them
    assert ledger.instances["a"].received == 5


def test_an_instance_seen_first_without_a_service_takes_the_first_one_named():
    ledger = ShipperLedger()
    ledger.add("a", 1)
    ledger.add("a", 2, "goods")
    ledger.add("a", 3, "members")
    assert ledger.instances["a"].service == "goods"


def test_event_ids_are_split_at_the_last_colon():
    ledger = ShipperLedger()
    assert ledger.add_event_id("host:4242:7", "goods")
    assert ledger.instances["host:4242"].above == {7}
    assert not ledger.add_event_id("host:4242:7")
    for foreign in ("no-number", "x:", ":5", "x:5a", "x:-1", ""):
        assert ledger.add_event_id(foreign), f"{foreign!r} is no shipper's id: always stored"
        assert ledger.add_event_id(foreign)
    assert set(ledger.instances) == {"host:4242"}


# -- after a restart: the store is read again ---------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def ids(instance: str, numbers, ts: int) -> list:
    return [event(ts + i, event_id=f"{instance}:{n}", message=f"{instance} {n}")
            for i, n in enumerate(numbers)]


async def test_rebuild_learns_the_numbers_of_sealed_and_active_segments(tmp_path):
    t = now_ms() - 60_000
    clock = FakeClock(t)
    writer = await write_store(tmp_path, [ids("a", [1, 2, 3], t), ids("b", [1, 2, 4], t),
                                          ids("a", [4, 5], t)], clock=clock)
    try:
        segs = list_segments(tmp_path)
        assert [s.sealed for s in segs] == [True, True, False]  # the last one is being written
        ledger = ShipperLedger()
        assert ledger.rebuild(tmp_path) == 8
        a, b = ledger.instances["a"], ledger.instances["b"]
        assert (a.received, a.watermark, a.missing, a.duplicates) == (5, 5, 0, 0)
        assert (b.received, b.watermark, b.above, b.missing, b.duplicates) == (3, 2, {4}, 1, 0)
        assert not ledger.add("a", 3), "a resend after the restart is recognised"
        assert not ledger.add("b", 4)
        assert ledger.add("b", 3) and ledger.add("a", 6)
        assert ledger.instances["b"].missing == 0
    finally:
        await writer.close()


async def test_rebuild_reads_parquet_files_and_a_segment_compacted_twice_counts_once(tmp_path):
    t = now_ms() - 60_000
    writer = await write_store(tmp_path, [ids("a", [1, 2, 3], t), ids("a", [4, 5], t)],
                               clock=FakeClock(t))
    await writer.close()
    seg = list_segments(tmp_path)[0]
    kept = seg.path.read_bytes(), seg.path.with_name(layout.index_name(seg.path.name)).read_bytes()
    assert Compactor(tmp_path, grace=0).run_once() == 2
    assert not list_segments(tmp_path)
    # a crash between the Parquet file's rename and the segment's removal: both are there
    seg.path.write_bytes(kept[0])
    seg.path.with_name(layout.index_name(seg.path.name)).write_bytes(kept[1])

    ledger = ShipperLedger()
    assert ledger.rebuild(tmp_path) == 5, "the Parquet file of a segment read whole is not read"
    a = ledger.instances["a"]
    assert (a.received, a.watermark, a.duplicates) == (5, 5, 0)
    assert not ledger.add("a", 2) and ledger.instances["a"].duplicates == 1


async def test_rebuild_reads_parquet_files_written_within_the_window_only(tmp_path):
    t = now_ms() - 60_000
    writer = await write_store(tmp_path, [ids("aged", [1, 2], t), ids("recent", [1, 2], t)],
                               clock=FakeClock(t))
    await writer.close()
    aged = layout.parquet_name(list_segments(tmp_path)[0].path.name)
    assert Compactor(tmp_path, grace=0).run_once() == 2
    before = (t - DEDUPE_WINDOW_MS - HOUR) / 1000
    os.utime(tmp_path / layout.PARQUET_DIR / aged, (before, before))  # written before the window
    ledger = ShipperLedger()
    assert ledger.rebuild(tmp_path) == 2
    assert set(ledger.instances) == {"recent"}


async def test_rebuild_window_applies_to_segments_by_when_they_were_stored(tmp_path):
    t = now_ms()
    writer = await write_store(tmp_path, [ids("old", [1, 2], t - 60_000), ids("new", [1, 2], t - 60_000)],
                               clock=FakeClock(t))
    await writer.close()
    first = list_segments(tmp_path)[0].path
    stored = time.time() - 2 * HOUR / 1000
    os.utime(first, (stored, stored))  # written two hours ago
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, window_ms=HOUR)
    assert set(ledger.instances) == {"new"}
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, window_ms=3 * HOUR)
    assert set(ledger.instances) == {"old", "new"}


async def test_an_unknown_instance_is_looked_up_in_the_store_it_shares(tmp_path):
    """An instance first seen past its first event failed over from another logs process that
    writes to the same data directory: what that one stored is looked up before counting."""
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path)  # an empty store
    t = now_ms() - 60_000
    other = await write_store(tmp_path, [ids("moved", [1, 2, 3], t)], worker=1, clock=FakeClock(t))
    try:
        assert not ledger.add("moved", 2, "goods"), "stored by the other process: a resend"
        led = ledger.instances["moved"]
        assert (led.received, led.watermark, led.duplicates, led.service) == (3, 3, 1, "goods")
        assert ledger.add("moved", 4)
        assert ledger.add("fresh", 1) and ledger.instances["fresh"].received == 1
    finally:
        await other.close()


async def test_rebuild_learns_only_event_ids_not_fields_that_look_like_them_in_parquet(tmp_path):
    t = now_ms() - 60_000
    lookalike = event(t, message="forwarded", params={"event.id": "a:2"}, labels={"event.id": "a:3"})
    writer = await write_store(tmp_path, [[*ids("a", [1], t), lookalike]], clock=FakeClock(t))
    await writer.close()
    assert Compactor(tmp_path, grace=0).run_once() == 1
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path)
    assert ledger.instances["a"].received == 1


async def test_rebuild_learns_only_event_ids_not_fields_that_look_like_them_in_segments(tmp_path):
    t = now_ms() - 60_000
    lookalike = event(t, message="forwarded", params={"event.id": "a:2"}, labels={"event.id": "a:3"})
    writer = await write_store(tmp_path, [[*ids("a", [1], t), lookalike]], clock=FakeClock(t))
    await writer.close()
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path)
    assert ledger.instances["a"].received == 1
    assert ledger.add("a", 2), "event a:2 was never stored: it must not be dropped"


async def test_a_resend_of_old_events_stored_just_before_a_restart_is_recognised(tmp_path):
    t = now_ms()
    spooled_long_ago = t - DEDUPE_WINDOW_MS - 2 * HOUR  # stored now, born three hours ago
    writer = await write_store(tmp_path, [ids("spooled", [1, 2, 3], spooled_long_ago)],
                               clock=FakeClock(t))
    await writer.close()  # the restart (a crash is recovered and sealed the same way)
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path)
    assert not ledger.add("spooled", 2), "stored seconds ago: the resend is a duplicate"


def test_a_parquet_file_removed_while_the_ledger_is_rebuilt_is_skipped(tmp_path, monkeypatch):
    """Retention or a sibling's compaction may delete a file between the listing and its read:
    a worker starting then must not fail to start."""
    from logmesh.logs.store import catalogue

    (tmp_path / layout.PARQUET_DIR).mkdir(parents=True)
    gone = catalogue.DataFile(tmp_path / layout.PARQUET_DIR / "w00-0000000000000001.parquet", 0, 1)
    monkeypatch.setattr(catalogue, "parquet_files", lambda data_dir, worker=None: [gone])
    assert ShipperLedger().rebuild(tmp_path) == 0


# -- a shipper back from a sibling worker ------------------------------------------------------


async def test_a_known_instance_back_from_a_sibling_learns_what_the_sibling_stored(tmp_path):
    """outside19: a worker rebuilt its ledger (it knew the instance up to 200); the shipper then
    moved to the sibling, which stored 201..210 and was killed before acking them; the resend
    came back here and was stored twice, because only an instance never received from was
    looked up in the store."""
    t = now_ms() - 60_000
    mine = await write_store(tmp_path, [ids("moved", range(1, 201), t)], worker=0, clock=FakeClock(t))
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, worker=0)
    sibling = await write_store(tmp_path, [ids("moved", range(201, 211), t)], worker=1,
                                clock=FakeClock(t))
    try:
        ledger.joined("moved")  # the resend's connection
        assert not ledger.add("moved", 201), "stored by the sibling: a resend"
        assert ledger.instances["moved"].watermark == 210
        assert ledger.add("moved", 211)
    finally:
        await sibling.close()
        await mine.close()


async def test_a_look_at_the_siblings_reads_only_what_they_wrote_since(tmp_path, monkeypatch):
    from logmesh.logs.ingest import ledger as ledger_module

    read: list[int] = []
    real = ledger_module._event_ids
    monkeypatch.setattr(ledger_module, "_event_ids", lambda data: read.append(len(data)) or real(data))
    t = now_ms() - 60_000
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, worker=0)
    sibling = await write_store(tmp_path, [ids("a", range(1, 51), t)], worker=1, clock=FakeClock(t),
                                seal_each=False)
    try:
        ledger.add("a", 51)  # first heard past its first event: the siblings are read
        first = sum(read)
        assert first and ledger.instances["a"].watermark == 51
        read.clear()
        ledger.joined("a")
        assert sum(read) == 0, "nothing new written by the sibling: nothing read again"
        await sibling.durable(sibling.append_events(ids("a", [52, 53], t)))
        ledger.joined("a")
        assert 0 < sum(read) < first, "only the new lines are read"
        assert not ledger.add("a", 52) and not ledger.add("a", 53)
    finally:
        await sibling.close()


async def test_a_sibling_segment_compacted_before_it_was_read_is_read_from_its_parquet_file(tmp_path):
    t = now_ms() - 60_000
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, worker=0)
    assert ledger.add("c", 1)
    sibling = await write_store(tmp_path, [ids("c", range(2, 31), t)], worker=1, clock=FakeClock(t))
    await sibling.close()
    assert Compactor(tmp_path, grace=0).run_once() == 1
    assert not list_segments(tmp_path)
    ledger.joined("c")
    assert not ledger.add("c", 30) and ledger.instances["c"].watermark == 30


async def test_an_instance_new_here_learns_what_a_sibling_stored_from_its_first_event(tmp_path):
    """The machine's find (tests/durability/test_ledger_machine.py): a shipper's first batch,
    stored by the sibling and not acked, resent here from its event 1: an unknown instance was
    looked up only past its first event."""
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, worker=0)
    t = now_ms() - 60_000
    sibling = await write_store(tmp_path, [ids("first", range(1, 57), t)], worker=1, clock=FakeClock(t))
    try:
        ledger.joined("first")
        assert not ledger.add("first", 1), "stored by the sibling: a resend"
        assert ledger.instances["first"].watermark == 56
    finally:
        await sibling.close()


# -- the look in a thread (ShipperLedger.look) ---------------------------------------------------


async def test_a_look_in_a_thread_learns_what_the_siblings_stored_and_a_look_in_the_loop_meanwhile_loses_nothing(
        tmp_path, monkeypatch):
    """look() reads and decodes in a thread; an unknown instance's look in the loop (add) may run
    meanwhile and read further: what each read is learned, each segment's further end kept."""
    import threading

    from logmesh.logs.ingest import ledger as ledger_module

    t = now_ms() - 60_000
    ledger = ShipperLedger()
    ledger.rebuild(tmp_path, worker=0)
    sibling = await write_store(tmp_path, [ids("a", range(1, 41), t)], worker=1, clock=FakeClock(t),
                                seal_each=False)
    go, scanning = threading.Event(), threading.Event()
    real = ledger_module._event_ids

    def slow(data):
        if threading.current_thread() is not threading.main_thread():
            scanning.set()
            go.wait(10)
        return real(data)

    monkeypatch.setattr(ledger_module, "_event_ids", slow)
    try:
        look = asyncio.ensure_future(ledger.look())
        while not scanning.is_set():
            await asyncio.sleep(0.01)
        await sibling.durable(sibling.append_events(ids("b", range(1, 11), t)))
        assert not ledger.add("b", 5), "the loop's own look: stored by the sibling"
        go.set()
        await look
        assert ledger.instances["a"].watermark == 40 and ledger.instances["b"].watermark == 10
        assert ledger.instances["a"].duplicates == 0 and ledger.instances["b"].duplicates == 1
        await sibling.durable(sibling.append_events(ids("a", [41], t)))
        await ledger.look()
        assert not ledger.add("a", 41) and ledger.add("a", 42)
    finally:
        go.set()
        await sibling.close()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["i", "j:k", ""]), st.integers(1, 60), st.booleans()),
                max_size=80), st.integers(40, 400))
def test_a_segment_read_in_pieces_gives_the_ids_read_whole(events, piece):
    """_piecewise_event_ids cuts at line ends, a READ_PIECE at a time (a line longer than a
    piece read whole), so each piece's decode lets the event loop run."""
    from logmesh.logs.ingest import ledger as ledger_module

    lines = [(b'{"event.id":"%s:%d","message":"%s"}' % (inst.encode(), n, b"x" * (n * 7 if long else 1)))
             for inst, n, long in events]
    data = b"\n".join(lines) + (b"\n" if lines else b"") + b'{"event.id":"torn:1'
    whole = data.rfind(b"\n") + 1
    before = ledger_module.READ_PIECE
    ledger_module.READ_PIECE = piece
    try:
        assert ledger_module._piecewise_event_ids(data, whole) == ledger_module._event_ids(data[:whole])
    finally:
        ledger_module.READ_PIECE = before


def test_numbers_learned_as_runs_leave_the_ledger_learning_each_would():
    """_learn_numbers takes a run after the watermark in one step: the same ledger as adding
    each number (received, watermark, above, duplicates)."""
    for known, stored in [([], [1, 2, 3]), ([1, 2], [2, 3, 4]), ([1, 5], [2, 3]), ([3], [1, 2, 3, 4]),
                          ([1, 2, 3], [1, 2]), ([], [2, 3]), ([4], [1, 2])]:
        fast, slow = ShipperLedger(), ShipperLedger()
        for led in (fast, slow):
            for n in known:
                led.add("x", n)
        fast._learn_numbers({"x": stored})
        for n in stored:
            if not slow.add("x", n):
                slow.instances["x"].duplicates -= 1
        a, b = fast.instances["x"], slow.instances["x"]
        assert (a.received, a.watermark, a.above, a.duplicates) == \
            (b.received, b.watermark, b.above, b.duplicates), (known, stored)
