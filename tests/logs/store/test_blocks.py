"""store/blocks.py: a Parquet file is read with its block index, or with ranges from its footer."""

from __future__ import annotations

from pathlib import Path

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
    assert pf.key_test(0) is not None and pf.summary("service.name", 0) == {"goods": 40}
    assert pf.key_test(0)("m7") and not pf.key_test(0)("zebra")

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
        assert pf.key_test(0) is None and pf.summary("service.name", 0) is None


async def test_a_file_that_cannot_be_read_is_skipped(tmp_path):
    path, _ = await compacted(tmp_path)
    path.with_name(layout.blocks_name(path.name)).unlink()
    path.write_bytes(b"not parquet at all")
    assert open_parquet(path, duckdb.connect()) is None



async def test_unreadable_token_filters_prune_nothing(tmp_path):
    path, index = await compacted(tmp_path)
    blocks = path.with_name(layout.blocks_name(path.name))
    for damage in ({**index["tokens"], "bits": "not base64!"}, {**index["tokens"], "k": 2}, "x"):
        blocks.write_bytes(orjson.dumps({**index, "tokens": damage}))
        pf = open_parquet(path, duckdb.connect())
        assert pf is not None and pf.key_test(0) is None  # read whole, never a hidden match
        assert pf.summary("service.name", 0) == {"goods": 40}  # the rest of the index still serves


def test_a_store_written_before_the_token_index_answers_with_token_semantics(tmp_path):
    """tests/logs/store/old_v1/ was compacted by logmesh at the commit before the token index
    (format 1: message trigrams, 64-row blocks): its blocks are still pruned, by trigrams, and
    searches give what the same messages give in a new store."""
    import shutil

    from logmesh.logs.query import kql
    from logmesh.logs.query.engine import Engine

    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "old_v1", old)
    (old / layout.SEGMENTS_DIR).mkdir()
    (name,) = [p.name for p in (old / layout.PARQUET_DIR).glob("*.parquet")]
    index = orjson.loads((old / layout.PARQUET_DIR / layout.blocks_name(name)).read_bytes())
    assert index["version"] == 1 and "trigrams" in index and "tokens" not in index
    pf = open_parquet(old / layout.PARQUET_DIR / name, duckdb.connect())
    assert pf is not None and isinstance(pf.key_test(0)("deadlock"), bool)
    assert [pf.key_test(i)("zebra") for i in range(len(pf.blocks))] == [False] * len(pf.blocks)

    engine = Engine(old)
    try:
        con = duckdb.connect()
        con.execute(f"CREATE TABLE m AS SELECT message FROM read_parquet('{old / layout.PARQUET_DIR / name}')")
        for q in ("lock", "deadlock", "lock*", "*lock*", '"dead lock"', "서울", "zebra", "n7"):
            node = kql.parse(q)
            where, params = kql.compile_where(node, now=0)
            want = con.execute(f"SELECT count(*) FROM m WHERE {where}", params).fetchone()[0]
            assert engine.count(node, 0, 2**62) == want, q
            assert len(engine.search(node, 0, 2**62, limit=500)[0]) == want, q
        assert engine.count(kql.parse("lock"), 0, 2**62) == 60  # not the 140 of its substring
    finally:
        engine.close()
