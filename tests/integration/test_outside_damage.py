"""Bytes damaged in a sealed segment while the service is stopped, found by trying it from outside.

Compaction read the segment's intact lines into Parquet and set the original aside in the
quarantine, but the event whose line was damaged was counted nowhere: ``/api/v1/stats``
said ``damaged_lines: 0`` and ``logmesh_recovered_damaged_lines_total`` stayed 0, so the
loss showed only as a quarantined file and a log line. It is counted there now, as recovery
counts a damaged line of the active segment, and every intact event still answers.
"""

from __future__ import annotations

import urllib.request
import uuid

import orjson

from tests.support.procs import HOST, metric_total, wait_for
from tests.support.procs import http_json as get


def test_a_damaged_line_in_a_sealed_segment_is_counted_and_the_rest_answers(procs, tmp_path):
    data = tmp_path / "data"
    logs, _, http_port = procs.logs(data, "--no-compact", "--max-segment-size", "16KiB")
    tag = uuid.uuid4().hex[:8]
    body = b"".join(b'{"message": "dmg %s n%d", "service.name": "dmg"}\n' % (tag.encode(), i)
                    for i in range(400))
    lines = body.splitlines(keepends=True)
    for i in range(0, len(lines), 40):  # several requests: segments seal between them
        req = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/logs",
                                     data=b"".join(lines[i:i + 40]), method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert orjson.loads(resp.read())["accepted"] == 40
    logs.stop()
    segments = sorted((data / "segments").glob("w00-*.ndjson"))
    assert len(segments) >= 2, segments
    sealed = segments[0]  # not the newest: sealed by rotation, with its index
    assert sealed.with_name(sealed.name.replace(".ndjson", ".idx.json")).exists()
    raw = sealed.read_bytes().split(b"\n")
    assert raw[2].startswith(b"{")
    raw[2] = b"x" + raw[2][1:]  # one line no reader can parse: a flipped byte
    sealed.write_bytes(b"\n".join(raw))

    _, _, http_port = procs.logs(data)  # compaction on
    wait_for(lambda: not sealed.exists(), 60, "the damaged segment compacted and set aside")
    assert list((data / "quarantine").glob(sealed.name + "*"))
    found = wait_for(lambda: (lambda evs: evs if len(evs) == 399 else None)(
        get(http_port, "/api/v1/search", q=f"dmg and {tag}", limit="1000", **{"from": "now-1h"})["events"]),
        60, "every intact event answering")
    assert len({e["message"] for e in found}) == 399
    assert get(http_port, "/api/v1/stats")["quarantine"]["damaged_lines"] == 1
    assert metric_total(http_port, "logmesh_recovered_damaged_lines_total") == 1
