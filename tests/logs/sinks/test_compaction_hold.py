"""Compaction keeps a sealed NDJSON segment until every forwarding sink has sent it."""

from __future__ import annotations

from logmesh.logs.sinks.cursor import Position, SinkState, sent_past, unsent_by
from logmesh.logs.store import layout
from logmesh.logs.store.compact import Compactor
from tests.logs.sinks.helpers import Store, event


def test_sent_past():
    assert not sent_past(Position(), "w00-0000000000000064.ndjson", 100)
    assert not sent_past(Position("w00-0000000000000064.ndjson", 99), "w00-0000000000000064.ndjson", 100)
    assert sent_past(Position("w00-0000000000000064.ndjson", 100), "w00-0000000000000064.ndjson", 100)
    assert sent_past(Position("w00-0000000000006464.ndjson", 0), "w00-0000000000000064.ndjson", 100)
    assert not sent_past(Position("w00-0000000000000064.ndjson", 5), "w00-0000000000006464.ndjson", 100)


def test_compaction_waits_for_the_sink_before_deleting(tmp_path):
    store = Store(tmp_path)
    store.write([event(i) for i in range(200)])
    name = store.segments[-1]
    seg_path = tmp_path / layout.SEGMENTS_DIR / name
    compactor = Compactor(tmp_path, grace=0)
    compactor.hold = unsent_by(tmp_path, ["elasticsearch"])
    try:
        assert compactor.run_once() == 1
        assert (tmp_path / layout.PARQUET_DIR / layout.parquet_name(name)).exists()
        assert seg_path.exists()  # compacted, but the sink has not sent it: kept
        state = SinkState(tmp_path, "elasticsearch-w00")
        state.open()
        state.commit(Position(name, seg_path.stat().st_size // 2, 0), [])
        compactor.run_once()
        assert seg_path.exists()  # half sent: still kept
        state.commit(Position(name, seg_path.stat().st_size, store.last_seq), [])
        compactor.run_once()
        assert not seg_path.exists()  # sent: the Parquet file is in charge now
    finally:
        compactor.stop()


def test_without_sinks_compaction_deletes_at_once(tmp_path):
    store = Store(tmp_path)
    store.write([event(i) for i in range(50)])
    compactor = Compactor(tmp_path, grace=0)
    try:
        compactor.run_once()
    finally:
        compactor.stop()
    assert not (tmp_path / layout.SEGMENTS_DIR / store.segments[-1]).exists()
