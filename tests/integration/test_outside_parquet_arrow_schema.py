"""A Parquet file whose footer's ``ARROW:schema`` (base64) is damaged, found by the
durability machine's damage and reproduced from outside.

DuckDB reads such a file whole (it ignores that key), pyarrow refuses it ("Invalid base64
input"): the rare-word path (query/rare.py, pyarrow) asked DuckDB whether the file was
damaged, heard no, and answered every word query touching the file 400, for ever, its
events readable. Such a query now goes the usual way (DuckDB) and finds them.
"""

from __future__ import annotations

import uuid

from tests.support.procs import http_json as get
from tests.support.procs import post_ndjson, wait_for


def test_a_damaged_arrow_schema_in_a_footer_does_not_fail_word_queries(procs, tmp_path):
    data = tmp_path / "data"
    logs, _, http_port = procs.logs(data, "--max-segment-size", "8KiB")
    tag = uuid.uuid4().hex[:8]
    for r in range(3):
        body = b"".join(b'{"message": "arrow %s r%d n%d %s"}\n' % (tag.encode(), r, i, b"x" * 60)
                        for i in range(40))
        assert post_ndjson(http_port, body)["accepted"] == 40
    files = wait_for(lambda: sorted((data / "parquet").glob("*.parquet")) or None, 60, "a Parquet file")
    logs.stop()
    damaged = files[0]
    raw = bytearray(damaged.read_bytes())
    at = raw.rfind(b"ARROW:schema")
    assert at > 0
    start = at + len(b"ARROW:schema") + 3 + 8  # inside the base64 value, its length unchanged
    raw[start:start + 4] = b"!!!!"
    damaged.write_bytes(bytes(raw))

    _, _, http_port = procs.logs(data)
    events = get(http_port, "/api/v1/search", q=f"arrow and {tag}", limit="1000",
                 **{"from": "now-1h"})["events"]
    assert len(events) == 120
    assert damaged.exists()  # its data is intact: nothing set aside
