"""Compaction (logmesh/logs/store/compact.py) on its own, over segments the real SegmentWriter wrote.

A sealed segment becomes one Parquet file sorted by (@timestamp, seq), with a
block index whose blocks are the file's row groups; the segment goes only
after the rename that commits the Parquet file, and only when that file holds
its events. A crash before the rename leaves a ``.tmp`` the next pass removes;
a segment with lines no reader can use is compacted from what can be read and
kept whole in quarantine/.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from pathlib import Path

import duckdb
import orjson
import pytest

from logmesh.logs.store import compact, layout, red_summary, tokens
from logmesh.logs.store.columns import COLUMNS, SELECT_LIST, read_ndjson_sql
from logmesh.logs.store.compact import (
    MINUTE_MS,
    SUMMARY_MAX_VALUES,
    Compactor,
    compact_segment,
    new_connection,
    remove_segment,
)
from logmesh.logs.store.reader import SegmentInfo, list_segments
from tests.support.store import DAY, MIN, T0, FakeClock, event, write_store

BLOCK = 2048  # rows a block (row group) in these tests


def parquet_rows(path: Path) -> list[dict]:
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{path}')")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def row_groups(path: Path) -> list[int]:
    return [n for _, n in duckdb.sql(
        f"SELECT row_group_id, any_value(row_group_num_rows) FROM parquet_metadata('{path}') "
        "GROUP BY ALL ORDER BY 1").fetchall()]


def segment_lines(seg: SegmentInfo) -> list[dict]:
    return [orjson.loads(line) for line in seg.path.read_bytes().splitlines()]


def sealed(data_dir: Path) -> list[SegmentInfo]:
    return [s for s in list_segments(data_dir) if s.sealed]


def parquet_files(data_dir: Path) -> list[str]:
    """The files of parquet/ (the compactor's DuckDB spills into a directory there)."""
    return sorted(p.name for p in (data_dir / layout.PARQUET_DIR).glob("*") if p.is_file())


# -- one segment ------------------------------------------------------------------------------


@pytest.fixture
async def big_segment(tmp_path) -> SegmentInfo:
    """5,000 events in one sealed segment, their timestamps shuffled over 50 minutes; the
    latest 30 say "quokka", so only the last block can hold that word."""
    rnd = random.Random(7)
    stamps = sorted(rnd.sample(range(T0, T0 + 50 * MIN), 5000))
    evs = []
    for i, ts in enumerate(stamps):
        word = "quokka" if i >= 4970 else ("deadlock" if i % 7 == 0 else "served")
        evs.append(event(ts, service=("goods", "members", "purchases")[i % 3],
                         level="error" if i % 11 == 0 else "info",
                         status=500 if i % 13 == 0 else 200, path=f"/p{i % 5}",
                         message=f"request {word} {i}"))
    rnd.shuffle(evs)  # stored in arrival order, not in time order
    writer = await write_store(tmp_path, [evs])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    assert seg.sealed and seg.index["count"] == 5000
    return seg


def test_a_segment_becomes_parquet_sorted_by_time_then_seq(big_segment, tmp_path):
    stored = segment_lines(big_segment)
    pq_dir = tmp_path / layout.PARQUET_DIR
    index = compact_segment(new_connection(), big_segment, pq_dir, block_rows=BLOCK)
    final = pq_dir / layout.parquet_name(big_segment.path.name)
    assert parquet_files(tmp_path) == sorted([final.name, layout.blocks_name(final.name),
                                              red_summary.red_path(final).name]), "no .tmp"
    assert big_segment.path.exists(), "compact_segment never deletes: the Compactor does, after it"

    rows = parquet_rows(final)
    keys = [(r["@timestamp"], r["seq"]) for r in rows]
    assert keys == sorted((e["@timestamp"], e["seq"]) for e in stored)
    assert keys != [(e["@timestamp"], e["seq"]) for e in stored], "the segment was not in order"
    by_seq = {r["seq"]: r for r in rows}
    for e in stored[:50]:
        r = by_seq[e["seq"]]
        assert (r["message"], r["service.name"], r["http.response.status_code"], r["url.path"]) == (
            e["message"], e["service.name"], e["http.response.status_code"], e["url.path"])

    assert index == orjson.loads((pq_dir / layout.blocks_name(final.name)).read_bytes())
    assert index["version"] == layout.PARQUET_FORMAT_VERSION
    assert index["segment"] == big_segment.path.name and index["rows"] == 5000
    assert index["block_rows"] == BLOCK and index["bytes"] == final.stat().st_size
    for key in ("min_ts", "max_ts", "first_seq", "last_seq"):
        assert index[key] == big_segment.index[key], key
    assert index["services"] == dict(Counter(e["service.name"] for e in stored))


def test_the_file_holds_what_duckdb_reads_of_the_segment_with_the_stores_types(big_segment, tmp_path):
    """pyarrow writes the file (compact.write_parquet): every value and every column's type
    (params and labels JSON) as a DuckDB read of the NDJSON gives them, so files written
    before (by DuckDB's COPY) and after answer alike."""
    pq_dir = tmp_path / layout.PARQUET_DIR
    compact_segment(new_connection(), big_segment, pq_dir, block_rows=1000)
    final = pq_dir / layout.parquet_name(big_segment.path.name)
    con = duckdb.connect()
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{final}')").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == COLUMNS
    want = con.execute(f"SELECT {SELECT_LIST} FROM {read_ndjson_sql(str(big_segment.path))} "
                       "ORDER BY \"@timestamp\", seq").fetchall()
    assert con.execute(f"SELECT * FROM read_parquet('{final}')").fetchall() == want
    assert row_groups(final) == [1000] * 5  # a row group a block, of any size


def test_the_block_index_describes_each_row_group(big_segment, tmp_path):
    pq_dir = tmp_path / layout.PARQUET_DIR
    index = compact_segment(new_connection(), big_segment, pq_dir, block_rows=BLOCK)
    final = pq_dir / layout.parquet_name(big_segment.path.name)
    rows = parquet_rows(final)
    chunks = [rows[i:i + BLOCK] for i in range(0, len(rows), BLOCK)]
    assert row_groups(final) == [len(c) for c in chunks] == [b[2] for b in index["blocks"]]

    for i, (block, chunk) in enumerate(zip(index["blocks"], chunks, strict=True)):
        ts = [r["@timestamp"] for r in chunk]
        seqs = [r["seq"] for r in chunk]
        assert block == [min(ts), max(ts), len(chunk), min(seqs), max(seqs)]
        per_minute = Counter(t // MINUTE_MS for t in ts)
        first = min(per_minute)
        assert index["minutes"][i] == [first] + [per_minute.get(m, 0)
                                                 for m in range(first, max(per_minute) + 1)]
        for field in ("service.name", "log.level", "url.path", "http.request.method"):
            assert index["values"][field][i] == dict(Counter(r[field] for r in chunk)), field
        assert index["values"]["http.response.status_code"][i] == dict(
            Counter(str(r["http.response.status_code"]) for r in chunk))
        mesh = {}
        for svc in {r["service.name"] for r in chunk}:
            mine = [r for r in chunk if r["service.name"] == svc]
            mesh[svc] = [sum(r["log.level"] != "error" for r in mine),
                         sum(r["log.level"] == "error" or r["http.response.status_code"] >= 500
                             for r in mine), len(mine)]
        assert index["values"]["mesh"][i] == mesh

    blooms = tokens.Blooms.decode(index["tokens"], len(index["blocks"]))
    assert [blooms.has(i, "quokka") for i in range(3)] == [False, False, True]
    assert all(blooms.has(i, "deadlock") for i in range(3))


async def test_a_block_spanning_more_than_a_day_keeps_no_minutes(tmp_path):
    writer = await write_store(tmp_path, [[event(T0), event(T0 + 2 * DAY)], [event(T0)]])
    await writer.close()
    one, _ = list_segments(tmp_path)
    index = compact_segment(new_connection(), one, tmp_path / layout.PARQUET_DIR)
    assert index["minutes"] == [[]], "a wrong clock must not make a list of 2,880 minutes"
    assert index["blocks"][0][:3] == [T0, T0 + 2 * DAY, 2]


async def test_a_block_with_too_many_values_of_a_field_stores_none_for_it(tmp_path):
    many = SUMMARY_MAX_VALUES + 1
    writer = await write_store(tmp_path, [[event(T0 + i, path=f"/item/{i}") for i in range(many)]])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    index = compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR)
    assert index["values"]["url.path"] == [None], "read the block instead of a huge summary"
    assert index["values"]["service.name"] == [{"goods": many}]


# -- the Compactor's passes ---------------------------------------------------------------------


@pytest.fixture
async def three_segments(tmp_path) -> Path:
    """Two sealed segments of 3 and 4 events, and an active one of 2 (still being written)."""
    clock = FakeClock(T0)
    writer = await write_store(tmp_path, [[event(T0 + i, message=f"first {i}") for i in range(3)],
                                          [event(T0 + i, message=f"second {i}") for i in range(4)],
                                          [event(T0, message="live"), event(T0 + 1)]], clock=clock)
    yield tmp_path
    await writer.close()


def later(seconds: float):
    return lambda: time.time() + seconds


async def test_run_once_compacts_sealed_segments_after_their_grace_and_removes_them(three_segments):
    data = three_segments
    first, second = sealed(data)
    ndjson = first.path.stat().st_size + second.path.stat().st_size
    assert Compactor(data, grace=30).run_once() == 0, "sealed moments ago: tails still read it"

    c = Compactor(data, grace=30, clock=later(31))
    assert c.run_once() == 2
    assert [s.sealed for s in list_segments(data)] == [False], "the active segment stays"
    assert not first.path.exists() and not first.path.with_name(
        layout.index_name(first.path.name)).exists()
    names = parquet_files(data)
    assert names == sorted(n for s in (first, second) for n in (
        layout.parquet_name(s.path.name), layout.blocks_name(layout.parquet_name(s.path.name)),
        red_summary.red_path(data / layout.parquet_name(s.path.name)).name))
    messages = [r["message"] for n in names if n.endswith(layout.PARQUET_SUFFIX)
                for r in parquet_rows(data / layout.PARQUET_DIR / n)]
    assert sorted(messages) == sorted([f"first {i}" for i in range(3)] + [f"second {i}" for i in range(4)])
    assert c.stats["segments"] == 2 and c.stats["events"] == 7 and c.stats["errors"] == 0
    assert c.stats["ndjson_bytes"] == ndjson
    assert c.stats["parquet_bytes"] == sum((data / layout.PARQUET_DIR / n).stat().st_size
                                           for n in names if n.endswith(layout.PARQUET_SUFFIX))
    assert c.failure is None
    assert c.run_once() == 0, "nothing left to do"
    c.stop()


@pytest.mark.parametrize("missing", [("service.name", "http.response.status_code"), ("log.level",)])
async def test_statements_of_columns_null_in_every_row_are_skipped_for_the_same_index(tmp_path, missing):
    """Book packets carry no service.name or status code: their summaries' statements would
    find nothing, so they are not run; the index is what running them gives."""
    none = {"service.name": "service", "http.response.status_code": "status", "log.level": "level"}
    evs = [event(T0 + i * 50, message=f"m {i}", path=f"/p{i % 3}", **{none[f]: None for f in missing})
           for i in range(5000)]
    writer = await write_store(tmp_path / "data", [evs])
    await writer.close()
    (seg,) = list_segments(tmp_path / "data")
    con = new_connection()
    table = compact.read_sorted(con, read_ndjson_sql(str(seg.path)), False)
    import numpy as np
    con.register("c", table.append_column(compact.BLOCK, [np.arange(len(table)) // BLOCK]))
    full = compact.summaries(con, tmp_path / "a.parquet")
    skipped = compact.summaries(con, tmp_path / "b.parquet", frozenset(missing))
    assert skipped == full
    assert all(v == {} for f in missing if f in compact.SUMMARY_FIELDS for v in full[1][f])
    index = compact_segment(con, seg, tmp_path / "parquet", BLOCK)
    assert (index["values"], index["services"]) == (full[1], full[3])
    con.close()


def sealed_at(seg: SegmentInfo) -> float:
    return seg.path.with_name(layout.index_name(seg.path.name)).stat().st_mtime


async def test_the_thread_sleeps_until_the_next_segment_is_due_not_a_grace_after_each_pass(
        three_segments, monkeypatch):
    """During a backlog some segment always seals while a pass runs: sleeping the whole grace
    after that wake left the thread idle ~5 s a pass. It sleeps until the next is due."""
    data = three_segments
    first, second = sealed(data)
    now = [min(sealed_at(first), sealed_at(second)) + 10]
    c = Compactor(data, grace=30, interval=600, clock=lambda: now[0])
    assert c.pending() == []
    assert c.next_delay() == pytest.approx(20, abs=0.01), "the first sealed is due 30 s after its seal"
    now[0] += 25
    assert c.next_delay() == 0 and len(c.pending()) == 2, "due: no sleep before the next pass"
    monkeypatch.setattr(compact, "compact_segment", lambda *a, **k: (_ for _ in ()).throw(
        duckdb.IOException("disk on fire")))
    assert c.run_once() == 0
    assert c.next_delay() == pytest.approx(compact.RETRY_SECONDS, abs=0.01), "failed: retried a minute later"
    monkeypatch.undo()
    now[0] += compact.RETRY_SECONDS
    assert c.run_once() == 2
    assert c.next_delay() == 600, "nothing sealed left: the interval (or a seal's wake)"
    c.stop()


async def test_pending_segments_come_longest_sealed_first_whichever_worker(three_segments):
    data = three_segments
    first, second = sealed(data)
    t = time.time() - 100
    os.utime(first.path.with_name(layout.index_name(first.path.name)), (t + 1, t + 1))
    os.utime(second.path.with_name(layout.index_name(second.path.name)), (t, t))
    c = Compactor(data, grace=5)
    assert [s.path.name for s in c.pending()] == [second.path.name, first.path.name]
    c.stop()


class Crash(BaseException):
    """The process dies here (no except clause of the compactor catches it)."""


async def test_a_crash_before_the_rename_leaves_a_tmp_that_the_next_pass_removes(three_segments,
                                                                                monkeypatch):
    data = three_segments
    first, second = sealed(data)
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(layout.PARQUET_SUFFIX + layout.TMP_SUFFIX):
            raise Crash
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        Compactor(data, grace=0).run_once()
    monkeypatch.setattr(os, "replace", real_replace)

    tmp = layout.parquet_name(first.path.name) + layout.TMP_SUFFIX
    assert tmp in parquet_files(data)
    assert not [n for n in parquet_files(data) if n.endswith(layout.PARQUET_SUFFIX)], \
        "no Parquet file before the commit point"
    assert first.path.exists() and second.path.exists(), "the segments are still in charge"

    restarted = Compactor(data, grace=0)
    restarted.clean_tmp()
    assert tmp not in parquet_files(data)
    (data / layout.PARQUET_DIR / tmp).write_bytes(b"half a Parquet file")
    assert restarted.run_once() == 2  # run_once cleans up first, too
    assert not [n for n in parquet_files(data) if n.endswith(layout.TMP_SUFFIX)]
    assert not first.path.exists() and not second.path.exists()
    pq = data / layout.PARQUET_DIR / layout.parquet_name(first.path.name)
    assert [r["message"] for r in parquet_rows(pq)] == [f"first {i}" for i in range(3)]
    restarted.stop()


@pytest.mark.parametrize("how", ["full-disk", "kill"])
async def test_summaries_and_indexes_a_failed_compaction_left_go_once_their_segment_is_gone(
        three_segments, monkeypatch, how):
    """A compaction that fails on a full disk (the Parquet file cannot be written) or is killed
    before its commit point has written the .red summary, and (killed) the block index: once
    retention deleted the segment, nothing replaced them, and --max-disk counted their bytes for
    ever (found from outside). The next pass removes them; a Parquet file's own stay."""
    import errno

    data = three_segments
    first, second = sealed(data)
    real_write, real_replace = compact.write_parquet, os.replace

    def no_room(table, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def killed(src, dst):
        if str(src).endswith(layout.PARQUET_SUFFIX + layout.TMP_SUFFIX):
            raise Crash
        return real_replace(src, dst)

    if how == "full-disk":
        monkeypatch.setattr(compact, "write_parquet", no_room)
        c = Compactor(data, grace=0)
        assert c.run_once() == 0 and c.stats["errors"] == 2
    else:
        monkeypatch.setattr(os, "replace", killed)
        with pytest.raises(Crash):
            Compactor(data, grace=0).run_once()
    monkeypatch.setattr(compact, "write_parquet", real_write)
    monkeypatch.setattr(os, "replace", real_replace)
    left = [n for n in parquet_files(data) if n.endswith((layout.RED_SUFFIX, layout.BLOCKS_SUFFIX))]
    assert left, "the failed compaction wrote its summary before the Parquet file"
    remove_segment(first)  # retention took the segment meanwhile (--max-disk, --retention)

    restarted = Compactor(data, grace=0)
    assert restarted.run_once() == 1
    stems = {n[: -len(layout.PARQUET_SUFFIX)] for n in parquet_files(data) if n.endswith(layout.PARQUET_SUFFIX)}
    assert stems == {layout.parquet_name(second.path.name)[: -len(layout.PARQUET_SUFFIX)]}
    assert sorted(parquet_files(data)) == sorted(stem + suffix for stem in stems for suffix in (
        layout.PARQUET_SUFFIX, layout.BLOCKS_SUFFIX, layout.RED_SUFFIX)), "no file of the first one is left"
    restarted.stop()


async def test_a_crash_after_the_rename_leaves_a_segment_the_next_pass_removes(three_segments):
    data = three_segments
    first, _ = sealed(data)
    compact_segment(new_connection(), first, data / layout.PARQUET_DIR)  # no remove_segment
    c = Compactor(data, grace=0)
    assert c.run_once() == 1, "only the other one is compacted"
    assert not first.path.exists(), "the first one's Parquet file holds its events: it goes"
    assert not c._conflicts
    c.stop()


@pytest.mark.parametrize("damage", ["not-json", "wrong-type"])
async def test_a_damaged_segment_is_compacted_from_what_reads_and_kept_in_quarantine(tmp_path, damage):
    writer = await write_store(tmp_path, [[event(T0 + i, message=f"m{i}") for i in range(10)]])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    lines = seg.path.read_bytes().splitlines(keepends=True)
    if damage == "not-json":
        lines[4] = b"\x00" * (len(lines[4]) - 1) + b"\n"  # a bad block on the disk
    else:
        lines[4] = lines[4].replace(b'"http.response.status_code":200', b'"http.response.status_code":"OK!"')
    original = b"".join(lines)
    seg.path.write_bytes(original)

    c = Compactor(tmp_path, grace=0)
    assert c.run_once() == 1
    assert not list_segments(tmp_path), "the segment and its index left segments/"
    q = tmp_path / layout.QUARANTINE_DIR / f"{seg.path.name}@0{layout.QUARANTINE_SUFFIX}"
    assert q.read_bytes() == original, "the whole original, for a human"
    rows = parquet_rows(tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name))
    if damage == "not-json":
        assert [r["message"] for r in rows] == [f"m{i}" for i in range(10) if i != 4]
    else:  # every line reads; the value that fits no type is left out
        assert [r["message"] for r in rows] == [f"m{i}" for i in range(10)]
        assert rows[4]["http.response.status_code"] is None
        assert [r["http.response.status_code"] for r in rows[5:]] == [200] * 5
    assert c.stats["events"] == len(rows) and c.failure is None
    c.stop()


async def test_a_segment_with_no_readable_line_leaves_no_parquet_file(tmp_path):
    """Its only line damaged: nothing to keep in Parquet. An empty file was written, never read
    by a query (its index has no block), so damage to it later went unseen and it stayed in
    the store, unreadable (the durability machine found it)."""
    writer = await write_store(tmp_path, [[event(T0, message="only")]])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    original = seg.path.read_bytes()
    seg.path.write_bytes(b"\x00" * (len(original) - 1) + b"\n")
    c = Compactor(tmp_path, grace=0)
    assert c.run_once() == 1
    assert not list_segments(tmp_path)
    stem = layout.parquet_name(seg.path.name).rsplit(".", 1)[0]
    assert not list((tmp_path / layout.PARQUET_DIR).glob(f"{stem}.*")), "no Parquet file, no index"
    q = tmp_path / layout.QUARANTINE_DIR / f"{seg.path.name}@0{layout.QUARANTINE_SUFFIX}"
    assert q.exists(), "the damaged original is kept for a human"
    assert c.stats["events"] == 0 and c.failure is None
    c.stop()


async def test_a_segment_named_like_a_parquet_file_of_other_events_is_kept(tmp_path, caplog):
    """Compactor._same_events: a store from before seqs were unique (issue 14) can hold a new
    segment under a compacted one's name; deleting it as "already compacted" would lose it."""
    writer = await write_store(tmp_path, [[event(T0 + i, message=f"old {i}") for i in range(3)]])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    assert Compactor(tmp_path, grace=0).run_once() == 1
    pq = tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name)
    pq_bytes = pq.read_bytes()

    seqs = [seg.first_seq + (i << layout.WORKER_BITS) for i in range(5)]  # same name, more seqs
    seg.path.write_bytes(b"".join(orjson.dumps({"seq": s, "@timestamp": T0 + 10 + i, "message": f"new {i}"})
                                  + b"\n" for i, s in enumerate(seqs)))
    index = {**seg.index, "count": 5, "last_seq": seqs[-1]}
    seg.path.with_name(layout.index_name(seg.path.name)).write_bytes(orjson.dumps(index))

    c = Compactor(tmp_path, grace=0)
    with caplog.at_level(logging.ERROR, logger="logmesh.logs.compact"):
        assert c.run_once() == 0 and c.run_once() == 0
    assert seg.path.exists(), "the segment of other events is kept"
    assert pq.read_bytes() == pq_bytes, "and the Parquet file is left as it was"
    said = [r for r in caplog.records if "holds other events" in r.getMessage()]
    assert len(said) == 1, "said once, not on every pass"
    c.stop()


async def test_a_parquet_file_without_its_block_index_does_not_let_the_segment_go(tmp_path):
    writer = await write_store(tmp_path, [[event(T0, message="only copy")]])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR)
    pq_name = layout.parquet_name(seg.path.name)
    (tmp_path / layout.PARQUET_DIR / layout.blocks_name(pq_name)).unlink()  # copied in by hand?
    c = Compactor(tmp_path, grace=0)
    assert c.run_once() == 0
    assert seg.path.exists(), "nothing says the Parquet file holds these events"
    c.stop()


async def test_a_failed_compaction_is_counted_said_and_retried_a_minute_later(three_segments,
                                                                             monkeypatch):
    data = three_segments
    now = [time.time() + 10]
    real = compact.compact_segment

    def failing(con, seg, *args, **kwargs):
        raise duckdb.IOException("disk on fire")

    monkeypatch.setattr(compact, "compact_segment", failing)
    c = Compactor(data, grace=0, clock=lambda: now[0])
    assert c.run_once() == 0
    assert c.stats["errors"] == 2 and "disk on fire" in c.failure
    monkeypatch.setattr(compact, "compact_segment", real)
    assert c.run_once() == 0 and c.stats["errors"] == 2, "not again within the minute"
    assert c.failure is not None
    now[0] += 61
    assert c.run_once() == 2 and c.failure is None
    assert len(sealed(data)) == 0
    c.stop()


# -- a segment already in order is not sorted again ---------------------------------------------


@pytest.mark.parametrize("disorder", ["none", "late"])
async def test_a_segment_in_order_is_read_as_it_comes_and_checked(tmp_path, disorder):
    """Lines written as they arrived come in (@timestamp, seq) order: compaction reads them
    without sorting (its guess from the first lines), but checks every line and sorts after all
    when the guess was wrong (``late``: only lines past the guess's sample are out of order)."""
    n = 3000
    evs = [event(T0 + i * 10, message=f"request served {i} " + "x" * 120) for i in range(n)]
    if disorder == "late":
        evs[n - 10:] = evs[n - 10:][::-1]
    writer = await write_store(tmp_path, [evs])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    head = seg.path.read_bytes()[:compact.ORDER_SAMPLE_BYTES]
    assert head.count(b"\n") < n - 10, "the disorder must lie past the sample"
    assert compact.in_order(str(seg.path))
    stored = segment_lines(seg)
    compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR, block_rows=BLOCK)
    rows = parquet_rows(tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name))
    keys = [(r["@timestamp"], r["seq"]) for r in rows]
    assert keys == sorted((e["@timestamp"], e["seq"]) for e in stored)
    assert (keys == [(e["@timestamp"], e["seq"]) for e in stored]) == (disorder == "none")


def test_the_order_guess(tmp_path):
    def guess(lines: list[bytes]) -> bool:
        path = tmp_path / "seg.ndjson"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return compact.in_order(str(path))

    assert guess([b'{"seq":64,"@timestamp":5}', b'{"seq":128,"@timestamp":5}', b'{"seq":192,"@timestamp":6}'])
    assert not guess([b'{"seq":64,"@timestamp":6}', b'{"seq":128,"@timestamp":5}'])
    assert not guess([b'{"seq":128,"@timestamp":5}', b'{"seq":64,"@timestamp":5}'])
    assert not guess([b'{"seq":64}', b'{"seq":128,"@timestamp":5}'])  # no time: ask ORDER BY
    assert not guess([b'{"seq":64,"@timestamp":"5"}'])
    assert not guess([b'not json'])
    assert not compact.in_order(str(tmp_path / "missing.ndjson"))


PACKETS = ['{"uri":"/goods","method":"GET","params":{"id":"7","key":1}}',
           '{"uri":"/members","method":"POST","key":3,"params":{"username":"kim"},"trace.id":"ab"}',
           '{"uri":"/상품","method":"GET","params":{"이름":"볼펜","key":5}}', '{"unrelated":true}', "{}",
           "plain text", '{"uri":"/goods","method":"POST","params":{"name":"\\ud83d\\ude00","key":6}}']
NOT_JSON = ['{"uri":"/goods","method":"POST","params":{"name":"cut \\ud83d","key":6}}',  # half an emoji
            "{not json", '{"uri":"/goods","method":"GET"} trailing', '{"uri":"/goods"']


def packet_segment(data_dir: Path, texts: list[str]) -> SegmentInfo:
    """A sealed segment of book packets as book ingest stores them (the request in message)."""
    seg_dir = data_dir / layout.SEGMENTS_DIR
    seg_dir.mkdir(parents=True)
    path = seg_dir / layout.segment_name(0, 64)
    path.write_bytes(b"".join(orjson.dumps({"seq": 64 * (i + 1), "@timestamp": T0 + i, "received_at": T0 + i,
                                            "log.level": "info", "message": t}) + b"\n"
                              for i, t in enumerate(texts)))
    path.with_name(layout.index_name(path.name)).write_bytes(orjson.dumps({
        "version": layout.SEGMENT_FORMAT_VERSION, "first_seq": 64, "last_seq": 64 * len(texts),
        "count": len(texts), "min_ts": T0, "max_ts": T0 + len(texts), "bytes": path.stat().st_size,
        "sparse": [[64, T0, 0]]}))
    return sealed(data_dir)[0]


@pytest.mark.parametrize("texts", [PACKETS] + [PACKETS[:3] + [t] + PACKETS[3:] for t in NOT_JSON],
                         ids=["json", "lone-surrogate", "not-json", "trailing", "cut"])
def test_messages_taken_for_json_unchecked_give_what_the_checked_read_gives(tmp_path, texts):
    """Compaction reads messages as JSON without json_valid first (columns.with_request_fields'
    trust_json); one that is no JSON fails that read and the checked read is taken: the file
    holds the checked read's values either way, and nothing is set aside as damaged."""
    seg = packet_segment(tmp_path, texts)
    con = duckdb.connect()
    want = con.execute(f"SELECT {SELECT_LIST} FROM {read_ndjson_sql(str(seg.path))} ORDER BY seq").fetchall()
    trusting = f"SELECT {SELECT_LIST} FROM {read_ndjson_sql(str(seg.path), trust_json=True)} ORDER BY seq"
    if texts is PACKETS:
        assert con.execute(trusting).fetchall() == want
    else:
        with pytest.raises(duckdb.Error):
            con.execute(trusting).fetchall()
    index = compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR)
    final = tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name)
    assert index["rows"] == len(texts)
    assert con.execute(f"SELECT * FROM read_parquet('{final}') ORDER BY seq").fetchall() == want
    assert sum(r[COLUMNS.index(("url.path", "VARCHAR"))] is not None for r in want) == 4 + (NOT_JSON[0] in texts)
    assert not (tmp_path / layout.QUARANTINE_DIR).exists()


@pytest.mark.parametrize("long", ['{"uri":"/goods","method":"POST","params":{"description":"%s","key":7}}',
                                  "plain text %s"], ids=["packet", "text"])
def test_a_line_longer_than_the_first_reads_objects_is_compacted_whole(tmp_path, long):
    """Compaction's read sizes DuckDB's buffers for lines of compact.READ_OBJECT_BYTES (fewer page
    faults than 16 MB buffers); a longer line is still read whole, with the values the read of
    16 MB lines gives (and, were it refused, the checked read would be taken, as for a message
    that is no JSON): every row in the file, nothing set aside as damaged."""
    text = long % ("x" * (compact.READ_OBJECT_BYTES + 1000))
    texts = PACKETS[:3] + [text] + PACKETS[3:]
    seg = packet_segment(tmp_path, texts)
    con = duckdb.connect()
    want = con.execute(f"SELECT {SELECT_LIST} FROM {read_ndjson_sql(str(seg.path))} ORDER BY seq").fetchall()
    small = f"{read_ndjson_sql(str(seg.path), True, compact.READ_OBJECT_BYTES)}"
    assert con.execute(f"SELECT {SELECT_LIST} FROM {small} ORDER BY seq").fetchall() == want
    index = compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR)
    final = tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name)
    assert index["rows"] == len(texts)
    assert con.execute(f"SELECT * FROM read_parquet('{final}') ORDER BY seq").fetchall() == want
    assert any(r[COLUMNS.index(("message", "VARCHAR"))] == text for r in want)
    assert not (tmp_path / layout.QUARANTINE_DIR).exists()


def test_a_line_longer_than_duckdb_reads_at_16_mb_is_compacted_whole(tmp_path):
    """DuckDB fails a read (the lenient one too) for a line past ~2x its maximum_object_size:
    an OTLP body of control characters makes one within the default limits. Its segment's
    compaction failed every minute for ever (found from outside); it is read again with room
    for the longest line, found in the file when the index does not say (a segment sealed
    before indexes kept ``longest``)."""
    text = "long " + "x" * (40 * 1024 * 1024)
    seg = packet_segment(tmp_path, PACKETS[:2] + [text] + PACKETS[2:4])
    assert "longest" not in seg.index
    index = compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR)
    final = tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name)
    assert index["rows"] == 5
    assert text in [r["message"] for r in parquet_rows(final)]
    assert not (tmp_path / layout.QUARANTINE_DIR).exists()


def test_bounded_pages_keep_every_value_and_add_a_page_index(big_segment, tmp_path):
    """write_parquet(page_rows=N), which bench/rare_word_pages.py measures a page reader on:
    the same values as the default write, and an offset index for every column chunk (the
    default write has none)."""
    import pyarrow.parquet as pq
    con = duckdb.connect()
    table = con.sql(f"SELECT {SELECT_LIST} FROM {read_ndjson_sql(str(big_segment.path))} "
                    "ORDER BY \"@timestamp\", seq").to_arrow_table()
    default, paged = tmp_path / "default.parquet", tmp_path / "paged.parquet"
    compact.write_parquet(table, default, 1000)
    compact.write_parquet(table, paged, 1000, page_rows=100)
    read = "SELECT * FROM read_parquet('{}')"
    assert con.execute(read.format(paged)).fetchall() == con.execute(read.format(default)).fetchall()
    for path, indexed in ((default, False), (paged, True)):
        md = pq.read_metadata(path)
        assert md.num_row_groups == 5
        assert {md.row_group(g).column(c).has_offset_index for g in range(md.num_row_groups)
                for c in range(md.num_columns)} == {indexed}
