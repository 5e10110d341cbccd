"""Defects found by trying the logs service from outside (helper outside14), each reproduced
with a real ``logmesh logs --standalone --no-supervise`` killed or fed as a user would."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from logmesh.logs.store import layout
from tests.durability.harness import LogsService
from tests.durability.machine import TMPFS_BYTES, fill_disk, small_tmpfs
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.durability, pytest.mark.slow]


def scratch_dirs(data_dir: Path) -> list[Path]:
    root = data_dir / "scratch"
    return sorted(root.iterdir()) if root.exists() else []


def query_once(svc: LogsService, word: str) -> None:
    """A POST and a search: the query engine (and its scratch directory) is opened."""
    status, body = svc.post([orjson.dumps({"message": word})])
    assert status == 200 and body["accepted"] == 1, body
    wait_for(lambda: svc.search_all(word), 10, f"{word} found")


def test_kill9_leaves_no_scratch_behind_a_restart(service):
    """Each query engine's temporary directory was ``tempfile.mkdtemp("logmesh-live-")`` in
    /tmp, removed only by a clean close: every kill -9 left one (259 on a machine here). Now
    it is in the data directory, named by its pid, and the next start removes it."""
    svc = service()
    pids = []
    for i in range(3):
        svc.start()
        query_once(svc, f"scratch{i}")
        pids.append(svc.proc.pid)
        mine = [p for p in scratch_dirs(svc.data_dir) if re.match(rf"query-{svc.proc.pid}-", p.name)]
        assert len(mine) == 1, scratch_dirs(svc.data_dir)
        svc.kill9()
    svc.start()
    query_once(svc, "scratch3")
    left = scratch_dirs(svc.data_dir)
    assert [p.name.split("-")[1] for p in left] == [str(svc.proc.pid)], (
        f"left by the killed processes {pids}: {left}")
    svc.stop()
    assert scratch_dirs(svc.data_dir) == [], "a clean stop removes its own"


def test_events_stored_before_the_disk_filled_are_searched_when_it_is_full(service, tmp_path):
    """The query engine writes each new piece of a live segment to a scratch file for DuckDB;
    with that scratch in the data directory (above), a full data disk failed every search (500,
    ENOSPC) over events stored before it filled. A piece that cannot be written there is
    written to the system's temp directory and removed at once."""
    with small_tmpfs(tmp_path / "data", TMPFS_BYTES // 4) as data:
        svc = service(data_dir=data)
        svc.start()
        query_once(svc, "beforefull")
        status, body = svc.post([orjson.dumps({"message": f"storedthen {i}"}) for i in range(500)])
        assert status == 200 and body["accepted"] == 500, body
        fill_disk(data / "filler")
        assert len(svc.search_all("storedthen")) == 500
        svc.kill9()


def too_large_total(svc: LogsService, protocol: str) -> float:
    text = svc.request("GET", "/metrics")[1]
    m = re.search(rf'^logmesh_ingest_rejected_total{{protocol="{protocol}",reason="too_large"[^}}]*}} (\S+)$',
                  text, re.M)
    return float(m.group(1)) if m else 0.0


def otlp_body(*bodies: str) -> bytes:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    req = logs_service_pb2.ExportLogsServiceRequest()
    scope = req.resource_logs.add().scope_logs.add()
    for body in bodies:
        scope.log_records.add().body.string_value = body
    return req.SerializeToString()


def test_an_event_past_the_longest_stored_line_is_refused_counted_and_the_rest_stored(service):
    """Nothing bounded a stored line: an OTLP record of 11 MiB of control characters, within
    every default limit, was stored (and acknowledged) as a 66 MiB line, which every query and
    compaction of its segment then read at ~2.5x in memory; a raised --max-body-size had no
    bound at all. Past layout.MAX_LINE_BYTES (64 MiB) an event is refused before its ack and
    counted: OTLP answers 413 for the request, NDJSON refuses that line and stores the others."""
    svc = service("--max-body-size", "80MiB")
    svc.start()
    status, body = svc.request("POST", "/v1/logs", otlp_body("bigotlp " + "\x01" * (11 << 20)),
                               content_type="application/x-protobuf")
    assert status == 413, (status, body)
    assert too_large_total(svc, "otlp") == 1
    huge = orjson.dumps({"message": "bigndjson " + "x" * (65 << 20)})
    status, body = svc.request("POST", "/api/v1/logs", huge + b"\n" + orjson.dumps({"message": "smallndjson"}))
    assert status == 200 and (body["accepted"], body["rejected"]) == (1, 1), body
    assert body["errors"][0]["reason"] == "too_large" and body["errors"][0]["line"] == 1, body
    assert too_large_total(svc, "ndjson") == 1
    query_once(svc, "afterwards")  # the service goes on
    assert [e["message"] for e in svc.search_all("smallndjson")] == ["smallndjson"]
    assert svc.search_all("bigotlp") == [] and svc.search_all("bigndjson") == []
    longest = max((len(line) for seg in (svc.data_dir / "segments").glob("*.ndjson")
                   for line in seg.read_bytes().split(b"\n")), default=0)
    assert longest < 64 << 20


def test_a_packet_size_whose_line_could_pass_the_longest_is_refused_at_start(tmp_path):
    from tests.support.procs import run_logmesh

    done = run_logmesh(tmp_path, "logs", "--standalone", "--no-supervise", "--port", "0",
                       "--http-port", "0", "--data-dir", str(tmp_path / "data"),
                       "--max-packet-size", "64MiB", bound=30)
    assert done.returncode == 2 and "at most" in done.stderr and "--max-packet-size" in done.stderr, done.stderr


def test_a_sink_cursor_damaged_into_other_json_stops_that_sink_not_the_service(service):
    """A cursor damaged into JSON of another shape (``[1]``) raised AttributeError out of the
    sink's start: the worker died at every start (under a supervisor, restarted for ever), so
    nothing was ingested. Now that sink stops and says so in /healthz; the service runs."""
    svc = service("--elasticsearch", "http://127.0.0.1:9")
    cursor = svc.data_dir / "sinks" / "elasticsearch-w00.cursor"
    cursor.parent.mkdir(parents=True)
    cursor.write_bytes(b"[1]")
    svc.proc, svc.tcp_port, svc.http_port = svc.procs.logs(svc.data_dir, *svc.args)

    def health() -> dict | None:
        try:
            status, body = svc.request("GET", "/healthz", timeout=2.0)
        except OSError:
            return None
        return body if status == 503 else None

    body = wait_for(health, 30, "/healthz answering 503")
    assert any("sink elasticsearch-w00 stopped" in p for p in body["problems"]), body
    status, answer = svc.post([orjson.dumps({"message": "stored all the same"})])
    assert status == 200 and answer["accepted"] == 1, answer
    assert [e["message"] for e in svc.search_all("stored")] == ["stored all the same"]
    assert svc.proc.popen.poll() is None


PAST_THE_NAMES = 9_223_372_036_854_775_000  # a seq of 19 digits: a file's name holds 16


@pytest.mark.parametrize("name,damage", [
    # the sealed segment's index: its last_seq past what a name holds, or not an integer
    (".idx.json", {"last_seq": PAST_THE_NAMES}),
    (".idx.json", {"last_seq": 320.5}),
    # the worker's high-water mark
    ("w00.seq", {"last_seq": PAST_THE_NAMES}),
])
def test_a_damaged_last_seq_neither_hides_later_events_nor_stops_the_worker(service, name, damage):
    """A sealed index or the high-water file whose last_seq was damaged to 19 digits: the next
    seqs were as long, their segment's name (16 digits) matched no pattern, and every event
    acked after it was invisible to search, compaction and recovery, for good (the high-water
    file kept the number). One damaged to a float stopped the worker at every start
    (TypeError). Such a number is now read as no number: the files say where seqs go on."""
    svc = service("--no-compact")
    svc.start()
    status, body = svc.post([orjson.dumps({"message": f"before {i}"}) for i in range(5)])
    assert status == 200 and body["accepted"] == 5, body
    svc.stop()
    segments = svc.data_dir / "segments"
    [path] = [p for p in segments.iterdir() if p.name.endswith(name)]
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), **damage}))
    svc.start()
    status, body = svc.post([orjson.dumps({"message": f"after {i}"}) for i in range(3)])
    assert status == 200 and body["accepted"] == 3, body
    assert len(svc.search_all("after")) == 3
    svc.stop()
    svc.start()
    assert len(svc.search_all("after")) == 3 and len(svc.search_all("before")) == 5
    assert all(layout.SEGMENT_RE.match(p.name) for p in segments.glob("*.ndjson")), sorted(segments.iterdir())


SEALED_INDEX_DAMAGES = [
    [1], "text", None,  # the whole index another JSON value
    {"count": "5"}, {"bytes": "many"}, {"longest": "x"}, {"longest": -1}, {"min_ts": "soon"},
    {"max_ts": [1]}, {"sparse": 5}, {"sparse": [[1, "x"]]}, {"first_seq": "1"},
    {"version": "x"},
]


def test_a_sealed_index_damaged_into_other_json_loses_no_event(service):
    """A sealed segment's ``.idx.json`` holding valid JSON of another shape (found from
    outside for ``last_seq`` and the sink's cursor; here every other field and the whole
    file): after a restart every event is searched, compacted and searched again, and the
    service runs.

    Every damage in one data directory, one sealed segment each (``--max-segment-size 1``:
    each POST seals the one before): three starts instead of three per damage (39, ~4.5
    min of CI), and each damage's own events are still checked apart."""
    svc = service("--no-compact", "--max-segment-size", "1")
    svc.start()
    for k in range(len(SEALED_INDEX_DAMAGES)):
        status, body = svc.post([orjson.dumps({"message": f"kept d{k} n{i}"}) for i in range(5)])
        assert status == 200 and body["accepted"] == 5, body
    svc.stop()
    indexes = sorted((svc.data_dir / "segments").glob("*.idx.json"))
    assert len(indexes) == len(SEALED_INDEX_DAMAGES), indexes
    segments = []
    for k, (path, damage) in enumerate(zip(indexes, SEALED_INDEX_DAMAGES, strict=True)):
        segment = path.with_name(path.name.replace(".idx.json", ".ndjson"))
        assert segment.read_bytes().count(f"kept d{k} ".encode()) == 5, (segment, k)
        index = orjson.loads(path.read_bytes())
        path.write_bytes(orjson.dumps({**index, **damage} if isinstance(damage, dict) else damage))
        segments.append(segment)

    def missing() -> dict[str, list[str]]:
        """Each damage's events not found, by the damage."""
        found = {e["message"] for e in svc.search_all("kept")}
        lost = {repr(damage): [m for i in range(5) if (m := f"kept d{k} n{i}") not in found]
                for k, damage in enumerate(SEALED_INDEX_DAMAGES)}
        return {damage: ms for damage, ms in lost.items() if ms}

    svc.start()
    assert missing() == {}
    svc.stop()
    svc.args = [a for a in svc.args if a != "--no-compact"]
    svc.start()
    wait_for(lambda: not any(s.exists() for s in segments), 60, "every damaged segment compacted")
    assert list((svc.data_dir / "parquet").glob("*.parquet"))
    assert missing() == {}
    status, body = svc.post([orjson.dumps({"message": "kept after"})])
    assert status == 200 and body["accepted"] == 1, body
    wait_for(lambda: len(svc.search_all("kept")) == 5 * len(SEALED_INDEX_DAMAGES) + 1, 10,
             "the new event searched")
    assert svc.proc.popen.poll() is None
