"""The ``_id`` window filled from the store at start (es_ids_store.py): a journal damaged on
disk forgot ids the store still has, and a retry of one was stored twice (outside20)."""

from __future__ import annotations

import time

import duckdb
import orjson

from logmesh.logs.ingest.es_ids import BulkIds
from logmesh.logs.ingest.es_ids_store import ids_since
from logmesh.logs.store import layout


def now_ms() -> int:
    return int(time.time() * 1000)


def line(seq: int, ts: int, labels: object) -> bytes:
    return orjson.dumps({"seq": seq, "received_at": ts, "message": "m", "labels": labels}) + b"\n"


def write_segment(data_dir, worker: int, first: int, lines: list[bytes]) -> None:
    seg = data_dir / layout.SEGMENTS_DIR
    seg.mkdir(exist_ok=True)
    (seg / layout.segment_name(worker, layout.make_seq(first, worker))).write_bytes(b"".join(lines))


def test_ids_in_segments_and_parquet_files_of_the_window(tmp_path):
    t = now_ms()
    seq = [layout.make_seq(n, 1) for n in range(10)]
    write_segment(tmp_path, 1, 0, [
        line(seq[0], t - 7200_000, {"es.id": "old", "es.index": "app"}),  # before the window
        line(seq[1], t - 10, {"es.id": "a", "es.index": "app"}),
        line(seq[2], t - 20, {"es.id": "b"}),  # no index: the answer's
        line(seq[3], t - 5, {"es.id": 7, "es.index": "app"}),  # not a string: no `_id` made it
        line(seq[4], t - 5, {"other": 1}),
        b'{"seq": 9, "torn',  # a torn end: no event
    ])
    pq = tmp_path / layout.PARQUET_DIR
    pq.mkdir()
    name = layout.parquet_name(layout.segment_name(0, layout.make_seq(3, 0)))
    duckdb.connect().execute(
        f"COPY (SELECT * FROM (VALUES ({layout.make_seq(3, 0)}::BIGINT, {t - 30}::BIGINT, "
        f"""'{{"es.id":"p","es.index":"q"}}'::JSON), ({layout.make_seq(4, 0)}, {t - 1}, NULL)) """
        f"AS v(seq, received_at, labels)) TO '{pq / name}'")
    found = ids_since(tmp_path, t - 3600_000)
    assert found == [(t - 30, ("q", b'"p"'), layout.make_seq(3, 0)), (t - 20, ("logs", b'"b"'), seq[2]),
                     (t - 10, ("app", b'"a"'), seq[1])]


def test_a_damaged_line_is_skipped_and_the_rest_read(tmp_path):
    t = now_ms()
    write_segment(tmp_path, 0, 0, [line(64, t, {"es.id": "a"}), b"\x00\xff{garbage\n",
                                   line(128, t, {"es.id": "b"})])
    assert [f[1][1] for f in ids_since(tmp_path, t - 1000)] == [b'"a"', b'"b"']


def test_an_emptied_journal_is_filled_from_the_store_in_time_order(tmp_path):
    t = now_ms()
    ids = BulkIds(tmp_path, max_ids=3)
    ids.open()
    ids.claim([("app", b'"j1"')], [layout.make_seq(9, 0)], t - 50)  # the journal's own, kept
    ids._finish([("app", b'"j1"')], [layout.make_seq(9, 0)], True)
    ids.close()
    write_segment(tmp_path, 0, 1, [line(layout.make_seq(n, 0), t - 100 + n, {"es.id": f"s{n}", "es.index": "app"})
                                   for n in range(1, 5)])
    again = BulkIds(tmp_path, max_ids=3)
    again.open()
    # s1..s4 at t-99..t-96, j1 at t-50: the three newest stay, oldest first
    assert list(again.seen) == [("app", b'"s3"'), ("app", b'"s4"'), ("app", b'"j1"')]
    assert again.known("app", b'"s4"') == layout.make_seq(4, 0) and again.relearned == 2
    again.claim([("app", b'"n"')], [layout.make_seq(20, 0)], t)  # the window goes on, FIFO
    again._finish([("app", b'"n"')], [layout.make_seq(20, 0)], True)
    assert list(again.seen) == [("app", b'"s4"'), ("app", b'"j1"'), ("app", b'"n"')]
    (tmp_path / "es-ids" / "journal").write_bytes(b"")
    third = BulkIds(tmp_path)
    third.open()
    assert {k[1] for k in third.seen} == {b'"s1"', b'"s2"', b'"s3"', b'"s4"'}  # j1, n: no events


def test_a_whole_journal_needs_nothing_from_the_store(tmp_path):
    t = now_ms()
    ids = BulkIds(tmp_path)
    ids.open()
    ids.claim([("app", b'"a"')], [64], t)
    ids._finish([("app", b'"a"')], [64], True)
    ids.close()
    write_segment(tmp_path, 0, 1, [line(64, t, {"es.id": "a", "es.index": "app"})])
    again = BulkIds(tmp_path)
    again.open()
    assert list(again.seen) == [("app", b'"a"')] and again.relearned == 0


def test_a_rewritten_journal_keeps_each_ids_own_time(tmp_path):
    """Past ``max_journal_bytes`` the journal is rewritten with the window alone: every id was
    stamped with the rewrite's time, and stayed in the window up to an hour too long."""
    t = now_ms()
    ids = BulkIds(tmp_path, max_journal_bytes=1)  # every claim's end rewrites
    ids.open()
    for n, ago in enumerate((3_000_000, 2_000_000, 10)):
        key, seq = [("app", f'"i{n}"'.encode())], [layout.make_seq(n, 0)]
        ids.claim(key, seq, t - ago)
        ids._finish(key, seq, True)
    ids.close()
    again = BulkIds(tmp_path)
    again.open()
    assert [(ts, key[1]) for ts, key, _ in again._entries()] == [
        (t - 3_000_000, b'"i0"'), (t - 2_000_000, b'"i1"'), (t - 10, b'"i2"')]
    shorter = BulkIds(tmp_path, window_ms=2_500_000)  # i0 is older than this window
    shorter.open()
    assert list(shorter.seen) == [("app", b'"i1"'), ("app", b'"i2"')]
