"""Files beside a Parquet file, gone or damaged under a query (issue 18 item 3): its RED
summary (``.red``, Parquet that DuckDB reads) and its block index (``.blocks.json``, read by
the store). A missing ``.red`` is a file removed meanwhile (FileGone: the engine refreshes
and asks again), a damaged one is set aside alone (its events stay searchable from the
Parquet file), and a block index that parses but lacks what a query reads is not used (the
file is opened from its footer) instead of failing every query of its range."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.query import red
from logmesh.logs.query.engine import Engine
from logmesh.logs.query.errors import DamagedFile, FileGone
from logmesh.logs.store import layout, red_summary
from logmesh.logs.store.compact import Compactor
from logmesh.logs.store.duck import duckdb
from tests.support.store import HOUR, T0, event, write_store

LO, HI = T0 - HOUR, T0 + 10 * HOUR


def access(ts: int, i: int):
    return event(ts, service="gateway", message=f"GET /goods {i}", status=200 if i % 5 else 504,
                 labels={"upstream": "goods", "upstream.address": "127.0.0.1:9010",
                         "event.duration_ms": float(i % 40)})


@pytest.fixture
async def store(tmp_path):
    """Two compacted files of 300 access logs each, with their .red summaries."""
    writer = await write_store(tmp_path, [[access(T0 + h * HOUR + i * 1000, i) for i in range(300)]
                                          for h in range(2)])
    await writer.close()
    Compactor(tmp_path, grace=0).run_once()
    files = sorted((tmp_path / layout.PARQUET_DIR).glob("*.parquet"))
    assert len(files) == 2 and all(red_summary.red_path(p).exists() for p in files)
    return tmp_path


async def test_a_red_summary_removed_under_a_query_is_a_file_gone(store):
    engine = Engine(store)
    path = red_summary.red_path(sorted((store / layout.PARQUET_DIR).glob("*.parquet"))[0])
    path.unlink()
    with pytest.raises(FileGone):
        engine.db.run(f"SELECT count(*) FROM read_parquet('{path}')", [])
    engine.close()


async def test_a_damaged_red_summary_is_named_and_set_aside_alone(store):
    engine = Engine(store)
    pq = sorted((store / layout.PARQUET_DIR).glob("*.parquet"))[0]
    path = red_summary.red_path(pq)
    data = bytearray(path.read_bytes())
    data[8: len(data) // 2] = b"\xff" * (len(data) // 2 - 8)  # its pages
    path.write_bytes(bytes(data))
    error = None
    try:
        engine.db.run(f"SELECT sum(length(CAST(COLUMNS(*) AS VARCHAR))) FROM read_parquet('{path}')", [])
    except DamagedFile as exc:
        error = exc
    except duckdb.Error as exc:  # DuckDB said something else about this file: what it must map
        pytest.fail(f"not mapped to DamagedFile: {exc!r}")
    assert error is not None and error.path == path

    calls = []

    def first_fails() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise DamagedFile(path)
        return engine.count(None, LO, HI)

    assert engine.with_deadline(None, first_fails) == 600, "every event is still found"
    assert pq.exists() and not path.exists()
    assert (store / layout.QUARANTINE_DIR / f"{path.name}@0.damaged").exists()
    assert engine.counters["damaged_rows"] == 0, "no event is lost with a summary"
    answer = red.routes(engine, None, LO, HI, now=HI)
    assert answer["routes"][0]["requests"] == 600
    engine.close()


@pytest.mark.parametrize("damage", [
    {"blocks": "not a list"},
    {"blocks": [[1, 2]]},
    {"blocks": None, "min_ts": None},
    {"rows": "many"},
])
async def test_a_block_index_that_parses_but_is_damaged_is_not_used(store, damage):
    pq = sorted((store / layout.PARQUET_DIR).glob("*.parquet"))[0]
    blocks = pq.with_name(layout.blocks_name(pq.name))
    index = orjson.loads(blocks.read_bytes())
    index.update(damage)
    blocks.write_bytes(orjson.dumps(index))
    engine = Engine(store)
    assert engine.count(None, LO, HI) == 600
    found, _ = engine.search(None, LO, HI, limit=1000)
    assert len(found) == 600
    engine.close()
