"""Sealed segments emptied, cut short or replaced by a directory while the service is
stopped, found by trying it from outside.

A segment (or its index, or the stream's high-water file) replaced by a directory
stopped the service for good: the ledger's rebuild read
it at start (IsADirectoryError), the worker exited, the supervisor restarted it into the
same error. A segment truncated (to 0 bytes, or to its first lines) lost its events with
nothing said: its index still claimed them, ``damaged_lines`` stayed 0 and no log line
named it. At start each worker now checks its sealed segments against their indexes: a
directory goes to the quarantine, a segment shorter than its index says is recovered line
by line, and the events its index counted that are gone are counted as damaged lines.
"""

from __future__ import annotations

import urllib.request
import uuid

import orjson

from tests.support.procs import HOST, metric_total, post_ndjson, wait_for
from tests.support.procs import http_json as get


def test_sealed_segments_emptied_cut_or_made_a_directory_are_counted_and_the_service_serves(
        procs, tmp_path):
    data = tmp_path / "data"
    logs, _, http_port = procs.logs(data, "--no-compact", "--max-segment-size", "8KiB")
    tag = uuid.uuid4().hex[:8]
    for r in range(8):  # several requests: segments seal between them
        body = b"".join(b'{"message": "seg %s r%d n%d %s"}\n' % (tag.encode(), r, i, b"x" * 60)
                        for i in range(40))
        assert post_ndjson(http_port, body)["accepted"] == 40
    logs.stop()
    segments = sorted((data / "segments").glob("w00-*.ndjson"))
    assert len(segments) >= 4, segments

    def count(seg):
        return orjson.loads(seg.with_name(seg.name.replace(".ndjson", ".idx.json")).read_bytes())["count"]

    emptied, made_dir, cut = segments[0], segments[1], segments[2]
    lost = count(emptied) + count(made_dir)
    emptied.write_bytes(b"")
    made_dir.unlink()
    made_dir.mkdir()
    lines = cut.read_bytes().splitlines(keepends=True)
    assert len(lines) > 10
    cut.write_bytes(b"".join(lines[:10]))  # cut at a line's end: the rest is gone
    lost += len(lines) - 10
    index = segments[3].with_name(segments[3].name.replace(".ndjson", ".idx.json"))
    index.unlink()
    index.mkdir()  # an index a directory: the segment is recovered without it, nothing lost
    highwater = data / "segments" / "w00.seq"
    highwater.unlink()
    highwater.mkdir()

    _, _, http_port = procs.logs(data)  # compaction on, as a user restarts it
    found = wait_for(lambda: (lambda evs: evs if len(evs) == 320 - lost else None)(
        get(http_port, "/api/v1/search", q=f"seg and {tag}", limit="1000", **{"from": "now-1h"})["events"]),
        60, f"the {320 - lost} events left answer")
    assert len({e["seq"] for e in found}) == len(found)
    assert get(http_port, "/api/v1/stats")["quarantine"]["damaged_lines"] == lost
    assert metric_total(http_port, "logmesh_recovered_damaged_lines_total") == lost
    for name in (made_dir.name, index.name, highwater.name):
        assert list((data / "quarantine").glob(name + "@*")), name
    req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs", method="POST",
                                 data=b'{"message": "seg %s after"}\n' % tag.encode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert orjson.loads(resp.read())["accepted"] == 1
