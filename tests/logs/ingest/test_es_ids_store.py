"""The ``_id`` window filled from the store at start (es_ids_store.py): a journal damaged on
disk forgot ids the store still has, and a retry of one was stored twice (outside20)."""

from __future__ import annotations

import time
import tracemalloc

import duckdb
import orjson

from logmesh.logs.ingest import es_ids_store
from logmesh.logs.ingest.es_ids import BulkIds
from logmesh.logs.ingest.es_ids_store import ids_since
from logmesh.logs.store import catalogue, compact, layout


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


def test_a_segment_is_read_a_chunk_at_a_time_with_lines_across_chunks(tmp_path, monkeypatch):
    t = now_ms()
    lines_ = [line(layout.make_seq(n, 0), t, {"es.id": f"id-{n}", "es.index": "app"} if n % 7 == 0 else {"x": n})
              for n in range(1, 400)]
    write_segment(tmp_path, 0, 1, [*lines_, b'{"seq": 9, "labels": {"es.id": "torn'])
    whole = ids_since(tmp_path, t - 1000)
    assert [f[1][1] for f in whole] == [f'"id-{n}"'.encode() for n in range(7, 400, 7)]
    for chunk in (1, 13, 100, 4096):  # a line cut anywhere, a chunk within one line
        monkeypatch.setattr(es_ids_store, "CHUNK", chunk)
        assert ids_since(tmp_path, t - 1000) == whole


def test_a_parquet_file_whose_index_counts_no_id_is_not_read(tmp_path, monkeypatch):
    """Compaction counts the events with an ``_id`` into the block index's ``es_ids``; a start
    reads only the Parquet files of the hour that have some, or whose index cannot say."""
    t = now_ms()
    for worker, labels in ((0, {"es.id": "kept", "es.index": "app"}), (1, {"other": 1})):
        write_segment(tmp_path, worker, 1, [orjson.dumps({
            "seq": layout.make_seq(n, worker), "@timestamp": t, "received_at": t, "message": "m",
            "labels": labels if n == 2 else {"n": n}}) + b"\n" for n in range(1, 5)])
        seg_dir = tmp_path / layout.SEGMENTS_DIR
        [seg] = [s for s in catalogue.list_segments(tmp_path) if s.worker == worker]
        compact.compact_segment(duckdb.connect(), seg, tmp_path / layout.PARQUET_DIR)
        seg.path.unlink()
    assert not list(seg_dir.glob("*.ndjson"))
    asked: list[list[str]] = []
    real = es_ids_store._parquet_ids
    monkeypatch.setattr(es_ids_store, "_parquet_ids", lambda paths, since: asked.append(paths) or real(paths, since))
    assert [f[1] for f in ids_since(tmp_path, t - 1000)] == [("app", b'"kept"')]
    assert [[p.rsplit("/", 1)[1][:3] for p in paths] for paths in asked] == [["w00"]]
    assert {b.name[:3]: orjson.loads(b.read_bytes())["es_ids"]
            for b in (tmp_path / layout.PARQUET_DIR).glob("*" + layout.BLOCKS_SUFFIX)} == {"w00": 1, "w01": 0}
    for blocks in (tmp_path / layout.PARQUET_DIR).glob("w01*" + layout.BLOCKS_SUFFIX):
        index = orjson.loads(blocks.read_bytes())
        assert index["es_ids"] == 0
        del index["es_ids"]  # compacted before the count was kept: read
        blocks.write_bytes(orjson.dumps(index))
    asked.clear()
    assert [f[1] for f in ids_since(tmp_path, t - 1000)] == [("app", b'"kept"')]
    assert len(asked[0]) == 2


def test_a_window_read_back_costs_bytes_an_id_not_kilobytes(tmp_path):
    """orjson.dumps' bytes keep the 4 KiB buffer orjson wrote into: each id read back from the
    journal or the store (or from a body read a document at a time) held 4 KiB, 2 GB a worker
    at the window's cap of 500,000 (found by bench/es_ids_start.py's peak RSS)."""
    t, n = now_ms(), 5000
    keys = [("app", f'"doc-{k:08d}"'.encode()) for k in range(n)]
    seqs = [layout.make_seq(k + 1, 0) for k in range(n)]
    ids = BulkIds(tmp_path)
    ids.open()
    ids.claim(keys, seqs, t)
    ids._finish(keys, seqs, True)
    ids.close()
    write_segment(tmp_path, 0, 1, [line(seq, t, {"es.id": key[1][1:-1].decode(), "es.index": "app"})
                                   for key, seq in zip(keys, seqs, strict=True)])
    for journal in ("whole", "emptied"):
        if journal == "emptied":
            (tmp_path / "es-ids" / "journal").write_bytes(b"")
        tracemalloc.start()
        try:
            again = BulkIds(tmp_path)
            again.open()
            used = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        again.close()
        assert list(again.seen) == keys, journal
        assert used / n < 1000, (journal, used / n)
