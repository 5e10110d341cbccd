"""A field explosion, tried from outside: events with thousands of distinct label names.

Nothing bounded them: 200,000 distinct names took a worker to 345 MB and /api/v1/fields to
seconds and megabytes. Now an event keeps at most field_limits.MAX_FIELDS labels as fields
and none with a name over MAX_FIELD_NAME; the others are folded, kept whole, into the
label ``logmesh.folded``, counted in /metrics; the event is acked, stored and searchable.
/api/v1/fields lists a bounded number of names whatever was stored before.
"""

from __future__ import annotations

import asyncio
import socket

import orjson

from logmesh.logs.ingest.field_limits import FOLDED_LABEL, MAX_FIELD_NAME, MAX_FIELDS
from logmesh.logs.query.engine import FIELD_NAMES
from logmesh.protocol import encode
from tests.support.procs import HOST, http_json, metric_total, post_ndjson
from tests.support.store import T0, event, write_store
from tests.support.waiting import wait_for

WIDE = 3000  # labels of one event: three times the limit
LONG = "n" * (MAX_FIELD_NAME + 1)


def search(http_port: int, q: str, **extra: str) -> list[dict]:
    return http_json(http_port, "/api/v1/search", q=q, **{"from": "now-1h", "to": "now+1h"}, **extra)["events"]


def check_folded(labels: dict, names: list[str]) -> None:
    """Every one of ``names`` is kept: as a label, or in the folded object, once."""
    assert len(labels) <= MAX_FIELDS
    assert all(len(name) <= MAX_FIELD_NAME for name in labels)
    folded = orjson.loads(labels[FOLDED_LABEL])
    assert sorted([n for n in labels if n != FOLDED_LABEL] + list(folded)) == sorted(names)
    assert LONG in folded


def test_an_event_with_thousands_of_labels_is_stored_with_the_rest_folded(procs, tmp_path):
    _, port, http_port = procs.logs(tmp_path / "data")
    doc = {"message": "wide http event", **{f"f{i}": i for i in range(WIDE)}, LONG: "long"}
    assert post_ndjson(http_port, [doc], timeout=60)["accepted"] == 1

    # an acked batch over TCP, its event's extra as wide
    extra = {f"g{i}": i for i in range(WIDE)} | {LONG: "long"}
    batch = {"service": "wide", "instance": "i1",
             "events": [[1, T0, "wide tcp event", extra]]}
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(encode({"uri": "/logs", "method": "POST", "key": 7, "ack": True, "params": batch}))
        reply = b""
        while "¶".encode() not in reply:
            chunk = sock.recv(65536)
            assert chunk, "the connection closed before the ack"
            reply += chunk
    answer = orjson.loads(reply.split("¶".encode())[0])
    assert answer["errorcode"] == 0 and answer["acked"] == 1, answer

    [http_event] = search(http_port, "wide and http")
    check_folded(http_event["labels"], [*(f"f{i}" for i in range(WIDE)), LONG])
    [tcp_event] = http_json(http_port, "/api/v1/search", q="wide and tcp", **{"from": str(T0 - 1000),
                            "to": str(T0 + 1000)})["events"]
    check_folded(tcp_event["labels"], [*(f"g{i}" for i in range(WIDE)), LONG])
    assert orjson.loads(http_event["labels"][FOLDED_LABEL])[f"f{WIDE - 1}"] == WIDE - 1

    # the folded ones are still found, by the one label
    assert len(search(http_port, f"labels.{FOLDED_LABEL}:*f{WIDE - 1}*")) == 1
    assert metric_total(http_port, "logmesh_folded_events_total") == 2
    assert metric_total(http_port, "logmesh_folded_fields_total") == 2 * (WIDE + 1 - (MAX_FIELDS - 1))
    names = [f["name"] for f in http_json(http_port, "/api/v1/fields", q="wide", **{"from": "now-1h"})["fields"]]
    assert len(names) < MAX_FIELDS + 50


def test_the_fields_api_is_bounded_whatever_was_stored_before(procs, tmp_path):
    """Events written before ingest folded labels: 20 events of 5,000 distinct names each."""
    data = tmp_path / "data"

    async def old_store() -> None:
        events = [event(T0 + i, message=f"old wide {i}",
                        labels={f"old{i}_{j}": j for j in range(5000)}) for i in range(20)]
        writer = await write_store(data, [events])
        await writer.close()

    asyncio.run(old_store())
    _, _, http_port = procs.logs(data)
    wait_for(lambda: http_json(http_port, "/api/v1/search", q="old", **{"from": str(T0 - 1000),
                               "to": str(T0 + 60_000)})["events"], 30, "the old events found")
    fields = http_json(http_port, "/api/v1/fields", **{"from": str(T0 - 1000), "to": str(T0 + 60_000)})["fields"]
    labels = [f["name"] for f in fields if f["name"].startswith("labels.")]
    assert len(labels) == FIELD_NAMES
    assert labels == sorted(labels)
