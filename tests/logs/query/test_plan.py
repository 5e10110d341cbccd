"""query/plan.py as tables: which files and blocks a question reads, and the SQL over them.

No disk and no DuckDB: Parquet files are block indexes written out by hand, and the
SQL is read back into a short description (``shape``) that the tables compare.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from logmesh.logs.query import kql, plan
from logmesh.logs.query.plan import LiveSegment, Snapshot, Unit
from logmesh.logs.store.blocks import ParquetFile
from logmesh.logs.store.catalogue import SegmentInfo
from logmesh.logs.store.tokens import Blooms, Need

DEADLOCK = Need("keys", ("deadlock",))


def pq(name: str, blocks: list[list[int]], worker: int = 0, filters: Blooms | None = None,
       **index) -> ParquetFile:
    """A Parquet file of [min_ts, max_ts, rows, first_seq, last_seq] blocks."""
    return ParquetFile(Path("/d/parquet") / name, worker, {
        "min_ts": min(b[0] for b in blocks), "max_ts": max(b[1] for b in blocks),
        "rows": sum(b[2] for b in blocks), "first_seq": min(b[3] for b in blocks),
        "last_seq": max(b[4] for b in blocks), "blocks": blocks, **index}, filters or False)


A = pq("a.parquet", [[100, 199, 10, 0, 9], [200, 299, 10, 10, 19], [300, 399, 10, 20, 29]],
       filters=Blooms.of([{"goods"}, {"deadlock", "*dead"}, set()]))
B = pq("b.parquet", [[400, 499, 5, 30, 34]], worker=1)
COLD = SegmentInfo(Path("/d/segments/c.ndjson"), 2, 40,
                   {"min_ts": 500, "max_ts": 599, "count": 7, "last_seq": 46})
LIVE = LiveSegment(1, Path("/d/segments/l.ndjson"), 3, 50, rows=4, min_ts=600, max_ts=699)
EMPTY_LIVE = LiveSegment(2, Path("/d/segments/e.ndjson"), 3, 60)
SNAP = Snapshot((A, B), (LIVE, EMPTY_LIVE), 1, (COLD,))

_PART = re.compile(
    r"SELECT .* FROM (?:read_parquet\((?P<files>.*?)\)(?: WHERE (?P<ranges>.*))?"
    r"|live WHERE _seg IN \((?P<live>[^)]*)\) AND .* BETWEEN (?P<lo>-?\d+) AND (?P<hi>-?\d+)"
    r"|\(SELECT .*'(?P<cold>[^']+\.ndjson)'.* BETWEEN (?P<clo>-?\d+) AND (?P<chi>-?\d+))$")


def shape(src: plan.Source | None) -> object:
    """Each part of the FROM as a tuple, then the rows estimate and the blocks left to the caller."""
    if src is None:
        return None
    parts: list[tuple] = []
    for part in src.sql.split(" UNION ALL ") if src.sql is not None else []:
        m = _PART.match(part)
        assert m, part
        if m["files"] is not None:
            names = tuple(Path(p).name for p in re.findall(r"'([^']+)'", m["files"]))
            ranges = tuple((int(a), int(b)) for a, b in
                           re.findall(r"BETWEEN (-?\d+) AND (-?\d+)", m["ranges"] or ""))
            parts.append(("parquet", names, ranges) if ranges else ("whole", names))
        elif m["live"] is not None:
            parts.append(("live", m["live"], int(m["lo"]), int(m["hi"])))
        else:
            parts.append(("cold", Path(m["cold"]).name, int(m["clo"]), int(m["chi"])))
    counted = tuple((f.path.name, i) for f, i in src.counted)
    return parts, src.rows, counted


def inside(start: int, end: int):
    def from_index(f: ParquetFile, i: int) -> bool:
        lo, hi = f.blocks[i][:2]
        return start <= lo and hi <= end
    return from_index


@pytest.mark.parametrize("start, end, kwargs, want", [
    # everything in range: the files whole, one read_parquet; cold and live cut to the range
    (0, 10**6, {}, ([("whole", ("a.parquet", "b.parquet")), ("cold", "c.ndjson", 0, 10**6),
                     ("live", "1", 0, 10**6)], 46, ())),
    # nothing in range
    (10**6, 2 * 10**6, {}, None),
    # a file partly in range is read by the time ranges of its kept blocks, cut to the range
    # (adjacent blocks' ranges join into one)
    (150, 450, {}, ([("parquet", ("a.parquet",), ((150, 399),)),
                     ("parquet", ("b.parquet",), ((400, 450),))], 35, ())),
    (250, 260, {}, ([("parquet", ("a.parquet",), ((250, 260),))], 10, ())),
    # a worker: only its files, cold and live segments
    (0, 10**6, {"workers": {1}}, ([("whole", ("b.parquet",))], 5, ())),
    (0, 10**6, {"workers": {3}}, ([("live", "1", 0, 10**6)], 4, ())),
    # a seq: only the block (and file) that can hold it; live segments are all kept (their
    # seqs are not tracked: the caller's WHERE seq = ? picks the event)
    (0, 10**6, {"seq": 15}, ([("parquet", ("a.parquet",), ((200, 299),)),
                              ("live", "1", 0, 10**6)], 14, ())),
    (0, 10**6, {"seq": 45}, ([("cold", "c.ndjson", 0, 10**6), ("live", "1", 0, 10**6)], 11, ())),
    # tokens: blocks that cannot hold "deadlock" are pruned; files without filters are kept
    (0, 10**6, {"need": DEADLOCK},
     ([("parquet", ("a.parquet",), ((200, 299),)), ("whole", ("b.parquet",)),
       ("cold", "c.ndjson", 0, 10**6), ("live", "1", 0, 10**6)], 26, ())),
    # live=False: the live table is left out
    (0, 10**6, {"live": False}, ([("whole", ("a.parquet", "b.parquet")),
                                  ("cold", "c.ndjson", 0, 10**6)], 42, ())),
])
def test_source(start, end, kwargs, want):
    got = shape(plan.source(SNAP, start, end, **kwargs))
    if want is not None:  # the whole file is listed first
        parts, rows, counted = want
        want = (sorted(parts, key=lambda p: p[0] != "whole"), rows, counted)
    assert got == want


@pytest.mark.parametrize("start, end, want", [
    # blocks wholly inside are left to the caller; the edge blocks are read
    (150, 10**6, ([("parquet", ("a.parquet",), ((150, 199),)), ("cold", "c.ndjson", 150, 10**6),
                   ("live", "1", 150, 10**6)], 21,
                  (("a.parquet", 1), ("a.parquet", 2), ("b.parquet", 0)))),
    # everything inside: nothing of the Parquet files is read
    (0, 10**6, ([("cold", "c.ndjson", 0, 10**6), ("live", "1", 0, 10**6)], 11,
                (("a.parquet", 0), ("a.parquet", 1), ("a.parquet", 2), ("b.parquet", 0)))),
])
def test_source_leaves_blocks_inside_the_range_to_the_index(start, end, want):
    assert shape(plan.source(SNAP, start, end, from_index=inside(start, end))) == want


def test_a_block_sharing_a_timestamp_with_a_block_read_is_read_too():
    """A time range cannot take the read block's rows without the counted one's."""
    f = pq("s.parquet", [[100, 200, 10, 0, 9], [200, 300, 10, 10, 19], [300, 400, 10, 20, 29]])
    snap = Snapshot((f,), (), 0)
    # block 0 straddles the start and is read; 1 shares 200 with it, 2 shares 300 with 1
    assert shape(plan.source(snap, 150, 10**6, from_index=inside(150, 10**6))) == (
        [("parquet", ("s.parquet",), ((150, 400),))], 30, ())
    # with no shared edge, the inner blocks stay counted
    g = pq("g.parquet", [[100, 200, 10, 0, 9], [201, 300, 10, 10, 19], [301, 400, 10, 20, 29]])
    assert shape(plan.source(Snapshot((g,), (), 0), 150, 10**6, from_index=inside(150, 10**6))) == (
        [("parquet", ("g.parquet",), ((150, 200),))], 10, (("g.parquet", 1), ("g.parquet", 2)))



def test_ranges_merged_past_the_cap_never_read_a_block_left_to_the_index(monkeypatch):
    """merge_ranges joins kept ranges across gaps past MAX_PRUNE_RANGES: a block counted from
    its index inside such a gap would be read as well, and counted twice. It is read instead."""
    monkeypatch.setattr(plan, "MAX_PRUNE_RANGES", 2)
    f = pq("m.parquet", [[i * 100, i * 100 + 99, 10, i * 10, i * 10 + 9] for i in range(5)])
    snap = Snapshot((f,), (), 0)
    odd = lambda pf, i: i % 2 == 1  # noqa: E731 -- blocks 1 and 3 answered by their index
    got = shape(plan.source(snap, 0, 10**6, from_index=odd))
    parts, rows, counted = got
    read = [r for p in parts for r in p[2]]
    for _, i in counted:  # no block both counted and inside a range read
        lo, hi = f.blocks[i][:2]
        assert not any(a <= hi and lo <= b for a, b in read), (i, read)
    assert len(read) <= 2
    # every block is either read or counted, and the rows add up
    assert rows + sum(f.blocks[i][2] for _, i in counted) == 50

def test_units_are_the_blocks_and_segments_a_search_may_read():
    assert plan.units(SNAP, 250, 650, None) == [
        Unit(200, 299, 10), Unit(300, 399, 10), Unit(400, 499, 5), Unit(600, 699, 4),
        Unit(500, 599, 7)]
    assert plan.units(SNAP, 0, 10**6, DEADLOCK) == [
        Unit(200, 299, 10), Unit(400, 499, 5), Unit(600, 699, 4), Unit(500, 599, 7)]


TENTHS = [Unit(i * 100, i * 100 + 99, 125_000) for i in range(10)]  # 1.25M rows over [0, 999]


@pytest.mark.parametrize("units, end, desc, want", [
    ([], 1000, True, []),
    # few rows: one slice, from the newest (oldest) event to the end of the range
    ([Unit(100, 199, 10), Unit(200, 299, 10)], 1000, True, [(0, 299)]),
    ([Unit(100, 199, 10), Unit(200, 299, 10)], 1000, False, [(100, 1000)]),
    # the first slice holds FIRST_SLICE_ROWS (250k), the next 4x that, ...
    (TENTHS, 999, True, [(800, 999), (0, 799)]),
    (TENTHS, 999, False, [(0, 199), (200, 999)]),
    # a range ending inside the units: slices start at its end
    (TENTHS, 950, True, [(800, 950), (0, 799)]),
])
def test_slices(units, end, desc, want):
    assert plan.slices(units, 0, end, desc) == want


def test_a_smaller_first_slice_grows_4x_from_there():
    """An export's page asks for a first slice of a few pages' rows (http/export.py)."""
    assert plan.slices(TENTHS, 0, 999, True, 125_000) == [(900, 999), (500, 899), (0, 499)]
    assert plan.slices(TENTHS, 0, 999, False, 125_000) == [(0, 99), (100, 499), (500, 999)]


@pytest.mark.parametrize("ranges, cap, want", [
    ([(5, 6), (1, 2)], 10, [(1, 2), (5, 6)]),
    ([(1, 2), (3, 4), (4, 9)], 10, [(1, 9)]),  # adjacent and overlapping ranges join
    ([(0, 1), (10, 11), (13, 14), (30, 31)], 2, [(0, 14), (30, 31)]),  # smallest gaps go first
    ([(0, 1), (10, 11), (13, 14), (30, 31)], 1, [(0, 31)]),
])
def test_merge_ranges(ranges, cap, want):
    assert plan.merge_ranges(ranges, cap) == want


@pytest.mark.parametrize("span_ms, want", [
    (1, 1_000), (100_000, 1_000), (100_001, 2_000), (3_600_000, 60_000),
    (86_400_000, 900_000), (100 * 2_592_000_000, 2_592_000_000),
    (300 * 2_592_000_000, 3 * 2_592_000_000),
])
def test_choose_interval(span_ms, want):
    assert plan.choose_interval(span_ms) == want


@pytest.mark.parametrize("query, want", [
    ("service.name:goods", ("service.name", "goods")),
    ("http.response.status_code:500", ("http.response.status_code", "500")),
    ("http.response.status_code:+0500", ("http.response.status_code", "500")),
    ("http.response.status_code:5*", None),
    ("service.name:go*", None),
    ("message:goods", None),
    ("service.name:goods and log.level:error", None),
    ("labels.k:v", None),
])
def test_summary_term(query, want):
    assert plan.summary_term(kql.parse(query)) == want


def test_where():
    assert plan.where(None, 0) == ("TRUE", [])
    assert plan.where(kql.parse("service.name:goods"), 0) == ('"service.name" = ?', ["goods"])
