"""store/catalogue.py: the one listing of the data directory, over a directory built by hand."""

from __future__ import annotations

import orjson
import pytest

from logmesh.logs.store import catalogue, layout


@pytest.fixture
def data(tmp_path):
    """Two workers' segments (one sealed with an index, one with a broken index, one active),
    Parquet files (one named by hand), and what else lives beside them."""
    seg = tmp_path / layout.SEGMENTS_DIR
    pq = tmp_path / layout.PARQUET_DIR
    seg.mkdir()
    pq.mkdir()
    files = {
        seg / layout.segment_name(1, 129): b"a" * 10,
        seg / layout.index_name(layout.segment_name(1, 129)): orjson.dumps({"last_seq": 193}),
        seg / layout.segment_name(0, 64): b"b" * 20,
        seg / layout.index_name(layout.segment_name(0, 64)): b"{not json",
        seg / layout.segment_name(0, 640): b"c" * 30,  # active: no index
        seg / "w00.lock": b"", seg / layout.highwater_name(0): b"{}",
        seg / "w00.seq.tmp": b"x", seg / "w01-0000000000000001.idx.json.tmp": b"x",
        seg / "w0-1.ndjson": b"not a segment name",
        pq / layout.parquet_name(layout.segment_name(1, 1)): b"p" * 40,
        pq / layout.blocks_name(layout.parquet_name(layout.segment_name(1, 1))): b"q" * 5,
        pq / "by-hand.parquet": b"h" * 50,
        pq / "w00-0000000000000001.parquet.tmp": b"t",
    }
    for path, body in files.items():
        path.write_bytes(body)
    return tmp_path


def names(paths) -> list[str]:
    return [p.name for p in paths]


def test_segments_by_worker_then_first_seq_names_parsed_once(data):
    got = catalogue.segment_files(data)
    assert [(f.worker, f.first_seq, f.path.name) for f in got] == [
        (0, 64, layout.segment_name(0, 64)), (0, 640, layout.segment_name(0, 640)),
        (1, 129, layout.segment_name(1, 129))]
    assert [f.first_seq for f in catalogue.segment_files(data, worker=0)] == [64, 640]
    assert catalogue.segment_files(data, worker=5) == []


def test_list_segments_reads_each_index_none_when_absent_or_unreadable(data):
    got = {(s.worker, s.first_seq): s for s in catalogue.list_segments(data)}
    assert got[1, 129].index == {"last_seq": 193} and got[1, 129].sealed
    assert got[0, 64].index is None, "an unreadable index reads as none"
    assert got[0, 640].index is None and not got[0, 640].sealed


def test_parquet_files_keep_a_file_named_by_hand_unless_a_worker_is_asked_for(data):
    everyone = catalogue.parquet_files(data)
    assert [(f.worker, f.first_seq, f.path.name) for f in everyone] == [
        (-1, -1, "by-hand.parquet"), (1, 1, "w01-0000000000000001.parquet")]
    assert names(f.path for f in catalogue.parquet_files(data, worker=1)) == [
        "w01-0000000000000001.parquet"]
    assert catalogue.parquet_names(data) == {"by-hand.parquet", "w01-0000000000000001.parquet"}


def test_tmp_files_of_a_worker_or_of_a_directory(data):
    assert names(catalogue.tmp_files(data, layout.SEGMENTS_DIR, worker=0)) == ["w00.seq.tmp"]
    assert names(catalogue.tmp_files(data, layout.SEGMENTS_DIR, worker=1)) == [
        "w01-0000000000000001.idx.json.tmp"]
    assert names(catalogue.tmp_files(data, layout.PARQUET_DIR)) == [
        "w00-0000000000000001.parquet.tmp"]


def test_usage_counts_segments_and_parquet_files_and_their_indexes(data):
    u = catalogue.usage(data)
    assert (u.files, u.data_bytes) == (5, 10 + 20 + 30 + 40 + 50)
    idx = len(orjson.dumps({"last_seq": 193})) + len(b"{not json")
    assert u.index_bytes == idx + 5 and u.bytes == u.data_bytes + u.index_bytes


def test_a_data_directory_not_made_yet_is_empty(tmp_path):
    missing = tmp_path / "nothing"
    assert catalogue.segment_files(missing) == catalogue.list_segments(missing) == []
    assert catalogue.parquet_files(missing) == [] and catalogue.parquet_names(missing) == set()
    assert catalogue.tmp_files(missing, layout.PARQUET_DIR) == []
    assert catalogue.usage(missing) == catalogue.Usage(0, 0, 0)
    assert catalogue.quarantined(missing) == (0, 0)


def test_set_aside_moves_a_whole_file_to_quarantine(data):
    path = data / layout.PARQUET_DIR / "by-hand.parquet"
    target = catalogue.set_aside(path)
    assert target == data / layout.QUARANTINE_DIR / f"by-hand.parquet@0{layout.QUARANTINE_SUFFIX}"
    assert target.read_bytes() == b"h" * 50 and not path.exists()
    assert catalogue.quarantined(data) == (1, 50)
    with pytest.raises(FileNotFoundError):
        catalogue.set_aside(path)


@pytest.mark.parametrize("name, suffix, want", [
    ("w03-0000000000000065.ndjson", layout.SEGMENT_SUFFIX, (3, 65)),
    ("w03-0000000000000065.parquet", layout.PARQUET_SUFFIX, (3, 65)),
    ("w03-0000000000000065.parquet", layout.SEGMENT_SUFFIX, None),
    ("w03-0000000000000065.idx.json", layout.SEGMENT_SUFFIX, None),
    ("w3-0000000000000065.ndjson", layout.SEGMENT_SUFFIX, None),
    ("w03-65.ndjson", layout.SEGMENT_SUFFIX, None),
])
def test_layout_parses_a_data_file_name(name, suffix, want):
    assert layout.parse_name(name, suffix) == want
