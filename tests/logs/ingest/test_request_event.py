"""request_event reads a logged request's fields from any JSON object, and only from one:
text (the gateway's access log line) and other JSON values leave them unset, without trying
to decode them as a request (the CPU cost of a DecodeError per event)."""

from __future__ import annotations

import pytest

from logmesh.logs.ingest.common import Routes, request_event

NOW = 1_764_000_000_000


def event(raw: str):
    return request_event(raw, ts=NOW, received_at=NOW, service=None, instance=None,
                         event_id=None, source=None, routes=Routes({"GET/goods": "goods"}))


@pytest.mark.parametrize("raw", [
    '{"uri":"/goods","method":"GET","key":7,"params":{"id":"1"},"trace.id":"t1"}',
    ' \t\r\n{"uri":"/goods","method":"GET","key":7,"params":{"id":"1"},"trace.id":"t1"}',
    '{"uri":"/goods","method":"GET","key":7,"params":{"id":"\\ud800"},"trace.id":"t1"}',
])
def test_a_json_object_is_read_as_the_request(raw: str) -> None:
    ev = event(raw)
    assert (ev.method, ev.path, ev.key, ev.trace_id, ev.service_name) == \
        ("GET", "/goods", "7", "t1", "goods")
    assert ev.message == raw


@pytest.mark.parametrize("raw", ["GET /goods 200 1ms", "", "[1, 2]", "42", '"text"', "{not json"])
def test_anything_else_is_kept_as_text_with_no_request_fields(raw: str) -> None:
    ev = event(raw)
    assert ev.message == raw
    assert (ev.method, ev.path, ev.key, ev.trace_id, ev.service_name) == \
        (None, None, None, None, None)
