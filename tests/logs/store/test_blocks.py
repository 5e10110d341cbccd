"""store/blocks.py: a Parquet file is read with its block index, or with ranges from its footer."""

from __future__ import annotations

import duckdb
import orjson

from logmesh.logs.store import layout
from logmesh.logs.store.blocks import open_parquet
from logmesh.logs.store.catalogue import list_segments
from logmesh.logs.store.compact import compact_segment, new_connection
from tests.support.store import T0, event, write_store


async def compacted(tmp_path):
    writer = await write_store(tmp_path, [[event(T0 + i, message=f"m{i}") for i in range(40)]])
    await writer.close()
    (seg,) = list_segments(tmp_path)
    index = compact_segment(new_connection(), seg, tmp_path / layout.PARQUET_DIR)
    return tmp_path / layout.PARQUET_DIR / layout.parquet_name(seg.path.name), index


async def test_with_its_index_or_from_its_footer(tmp_path):
    path, index = await compacted(tmp_path)
    con = duckdb.connect()
    pf = open_parquet(path, con)
    assert pf is not None and pf.index == index and pf.worker == 0
    assert pf.bitmaps() is not None and pf.summary("service.name", 0) == {"goods": 40}

    blocks = path.with_name(layout.blocks_name(path.name))
    for damage in (b"{not json", orjson.dumps({**index, "version": 0}), None):
        if damage is None:
            blocks.unlink()  # copied in by hand
        else:
            blocks.write_bytes(damage)
        pf = open_parquet(path, con)
        assert pf is not None
        assert (pf.rows, pf.min_ts, pf.max_ts, pf.blocks) == (
            index["rows"], index["min_ts"], index["max_ts"], index["blocks"])
        assert pf.bitmaps() is None and pf.summary("service.name", 0) is None


async def test_a_file_that_cannot_be_read_is_skipped(tmp_path):
    path, _ = await compacted(tmp_path)
    path.with_name(layout.blocks_name(path.name)).unlink()
    path.write_bytes(b"not parquet at all")
    assert open_parquet(path, duckdb.connect()) is None
