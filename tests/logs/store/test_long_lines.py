"""Lines longer than a reader's step or DuckDB's buffers (store/reader.py, store/long_lines.py)."""

from __future__ import annotations

import pytest

from logmesh.logs.store import long_lines
from logmesh.logs.store.columns import MAX_OBJECT_BYTES
from logmesh.logs.store.reader import read_complete


def test_a_line_longer_than_the_step_is_read_whole_not_stalled_on(tmp_path):
    """The live view reads 64 MB steps and the Elasticsearch sink smaller ones: a line longer
    than the step gave no whole line, and the reader never got past it."""
    path = tmp_path / "seg.ndjson"
    long = b"L" * 1000 + b"\n"
    path.write_bytes(b"a\n" + long + b"b\n" + b"torn")
    assert read_complete(path, 0, 100) == (b"a\n", 2)
    assert read_complete(path, 2, 100) == (long, 2 + len(long))
    assert read_complete(path, 2 + len(long), 100) == (b"b\n", 4 + len(long))
    assert read_complete(path, 4 + len(long), 100) == (b"", 4 + len(long)), "a torn line is no line"
    path.write_bytes(b"x" * 250)
    assert read_complete(path, 0, 100) == (b"", 0)


@pytest.mark.parametrize("lines", [[10, 20, 5], [3 * long_lines.SCAN_BYTES + 7, 1, 2],
                                   [long_lines.SCAN_BYTES - 1, long_lines.SCAN_BYTES + 1, 3]])
def test_the_longest_line_needs_no_more_room_than_it_is_given(tmp_path, lines):
    path = tmp_path / "seg.ndjson"
    path.write_bytes(b"".join(b"x" * (n - 1) + b"\n" for n in lines))
    found = long_lines.longest_line(path)
    assert found >= max(lines), "never less room than the longest line needs"
    if max(lines) > MAX_OBJECT_BYTES:
        assert found == max(lines), "exact where it sizes the read"
    assert long_lines.object_bytes(found) == max(MAX_OBJECT_BYTES, found + 1)
    assert long_lines.object_bytes(None) == MAX_OBJECT_BYTES


async def test_a_sealed_segments_index_bounds_its_longest_line_and_recovery_rebuilds_it(tmp_path):
    """Queries read a sealed segment waiting for compaction straight from its file, in SQL
    built before it runs: the index's ``longest`` (its largest write) sizes that read."""
    from logmesh.logs.store import layout
    from logmesh.logs.store.catalogue import list_segments
    from logmesh.logs.store.recovery import recover_segment
    from tests.support.store import T0, event, write_store

    writer = await write_store(tmp_path, [[event(T0, message="short")],
                                          [event(T0 + 1, message="x" * 5000), event(T0 + 2, message="y")],
                                          [event(T0 + 3, message="live")]])
    await writer.close()
    first, second, third = list_segments(tmp_path)
    assert first.index["longest"] == first.path.stat().st_size  # one write of one line
    assert 5000 < second.index["longest"] <= second.path.stat().st_size
    third.path.with_name(layout.index_name(third.path.name)).unlink()
    assert recover_segment(third.path).index.longest == third.path.stat().st_size
