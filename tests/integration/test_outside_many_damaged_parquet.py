"""More damaged Parquet files than one query would set aside, found by trying it from outside.

A query that met a damaged file set it aside and asked again, three times; the fourth
damaged file escaped the engine as DamagedFile and the answer was a 500 ("internal error").
A query sets aside every damaged file it meets (each one once) and answers with the rest.
"""

from __future__ import annotations

import uuid

import orjson

from tests.support.procs import http_json as get
from tests.support.procs import post_ndjson, wait_for


def test_a_query_meeting_five_damaged_files_answers_with_the_rest(procs, tmp_path):
    data = tmp_path / "data"
    logs, _, http_port = procs.logs(data, "--max-segment-size", "4KiB")
    tag = uuid.uuid4().hex[:8]
    for r in range(9):
        body = b"".join(b'{"message": "many%s r%d n%d %s"}\n' % (tag.encode(), r, i, b"x" * 60)
                        for i in range(40))
        assert post_ndjson(http_port, body)["accepted"] == 40
    files = wait_for(lambda: (lambda fs: fs if len(fs) >= 6 else None)(
        sorted((data / "parquet").glob("*.parquet"))), 60, "six Parquet files")
    logs.stop()
    lost = sum(orjson.loads(p.with_name(p.name.replace(".parquet", ".blocks.json")).read_bytes())["rows"]
               for p in files[:5])
    for path in files[:5]:  # every page of five files overwritten, their footers intact
        raw = bytearray(path.read_bytes())
        raw[4:len(raw) // 2] = b"\xff" * (len(raw) // 2 - 4)
        path.write_bytes(bytes(raw))

    _, _, http_port = procs.logs(data)
    events = get(http_port, "/api/v1/search", q=f"many{tag}*", limit="1000", **{"from": "now-1h"})["events"]
    assert len(events) == 360 - lost
    stats = get(http_port, "/api/v1/stats")["quarantine"]
    assert stats["damaged_parquet_files"] == 5 and stats["damaged_parquet_events"] == lost
