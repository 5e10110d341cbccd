"""query/rare.py: a search for words rare in a file reads the rows its postings name, and
answers as the usual path does (with files without postings, and the live segment, merged in)."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.query import rare
from logmesh.logs.query.engine import Engine
from logmesh.logs.store import layout
from tests.logs.query.test_engine import compact_all, expected, page_all, store, words  # noqa: F401

QUERIES = {
    "deadlock": lambda e: "deadlock" in words(e),
    "DEADLOCK and service.name:goods": lambda e: "deadlock" in words(e) and e["service.name"] == "goods",
    "deadlock or zebra": lambda e: "deadlock" in words(e),
    '"alpha deadlock" or "bravo deadlock"': lambda e: any(
        words(e)[i:i + 2] in (["alpha", "deadlock"], ["bravo", "deadlock"]) for i in range(len(words(e)))),
    "deadlock and not bravo": lambda e: "deadlock" in words(e) and "bravo" not in words(e),
    "zebra": lambda e: False,
    "deadlock and alpha": lambda e: "deadlock" in words(e) and "alpha" in words(e),
    "deadlock or alpha": lambda e: "deadlock" in words(e) or "alpha" in words(e),
    "deadl*": lambda e: any(w.startswith("deadl") for w in words(e)),
}


def drop_postings(data_dir, keep: int = 0) -> None:
    """Every Parquet file but the first ``keep`` as a file compacted before postings."""
    for path in sorted((data_dir / layout.PARQUET_DIR).glob("*" + layout.PARQUET_SUFFIX))[keep:]:
        blocks = path.with_name(layout.blocks_name(path.name))
        index = orjson.loads(blocks.read_bytes())
        index.pop("postings")
        blocks.write_bytes(orjson.dumps(index))


@pytest.mark.parametrize("without", [None, 1, 0])
async def test_posted_rows_answer_as_the_usual_path(store, monkeypatch, without):  # noqa: F811
    """``without`` None: every file has postings; 1: the second file has none; 0: none has."""
    assert compact_all(store) == 2
    if without is not None:
        drop_postings(store, keep=without)
    fetched = []
    real = rare.fetch
    monkeypatch.setattr(rare, "fetch", lambda pf, rows: fetched.append(len(rows)) or real(pf, rows))
    engine = Engine(store)
    for q, pred in QUERIES.items():
        want = expected(store, pred)
        for order, limit in (("desc", 4), ("asc", 250)):
            got = page_all(engine, q, order=order, limit=limit)
            assert [e["seq"] for e in got] == [e["seq"] for e in (want if order == "desc" else want[::-1])], q
    # the postings named each of the 6 rows with "deadlock" in a compacted file, and no other
    if without == 0:
        assert not fetched
    else:
        assert fetched and max(fetched) <= 6
    engine.close()


async def test_posted_events_are_the_stored_events_field_for_field(store):  # noqa: F811
    compact_all(store)
    engine = Engine(store)
    posted = page_all(engine, "deadlock", limit=100)
    engine.close()
    drop_postings(store)
    engine = Engine(store)
    assert page_all(engine, "deadlock", limit=100) == posted and len(posted) == 18
    engine.close()
