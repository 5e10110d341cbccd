"""The Elasticsearch bulk answer's items made by numpy (es_bulk.numbered_rows) are the bytes one
``bytes %`` per item made, whatever the numbers' widths."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.ingest import es_bulk

ITEM = (b'{"create":{"_index":"logs","_id":"%d","_version":1,"result":"created","status":201,'
        b'"_seq_no":%d,"_primary_term":1,"_shards":{"total":1,"successful":1,"failed":0}}}')


def by_percent(head: bytes, numbers, tail: bytes) -> bytes:
    return head + b",".join(ITEM % (n, n) for n in numbers) + tail


@settings(deadline=None)  # the first example imports numpy: 0.1-1 s on a loaded machine
@given(start=st.integers(0, 2**62), step=st.integers(1, 1 << 20), count=st.integers(1, 300))
def test_rows_are_the_template_with_each_number(start: int, step: int, count: int):
    numbers = range(start, start + step * count, step)
    if numbers[-1] >= 2**63:
        return
    for given_as in (numbers, list(numbers)):
        assert es_bulk.numbered_rows(b'{"items":[', ITEM.split(b"%d"), given_as, b",", b"]}") == \
            by_percent(b'{"items":[', numbers, b"]}")


@pytest.mark.parametrize("numbers", [
    range(0, 3000, 7),  # 1 to 4 digits: a run per width
    range(10**15 - 640, 10**15 + 640, 64),  # across a power of ten, as a worker's seqs pass one
    range(2**63 - 65, 2**63 - 1, 64),  # 19 digits, the widest an int64 holds
    [5],
])
def test_numbers_of_several_widths(numbers):
    assert es_bulk.numbered_rows(b"[", ITEM.split(b"%d"), numbers, b",", b"]") == \
        by_percent(b"[", numbers, b"]")


def test_numbers_out_of_order_are_refused_not_misplaced():
    for numbers in ([3, 2], [-1, 4], [7, 7]):
        with pytest.raises(ValueError):
            es_bulk.numbered_rows(b"[", ITEM.split(b"%d"), numbers, b",", b"]")


def test_a_uniform_answer_from_the_stored_seqs_is_the_one_read_from_the_events():
    """bulk_response with ``seqs`` (set by http_routes when the body was one block) answers
    exactly what it answers reading each event's seq, past the size numpy takes over."""
    body = b"".join(b'{"create":{"_index":"app"}}\n{"message":"m%d"}\n' % i for i in range(1000))
    parsed = es_bulk.parse_bulk(body, None, 1795626009999)
    assert parsed.uniform == ("create", "app")
    seqs = range(10**12 - 6400, 10**12 - 6400 + 64 * 1000, 64)  # across a power of ten
    for ev, seq in zip(parsed.events, seqs, strict=True):
        ev.seq = seq
    from_events = es_bulk.bulk_response(parsed, 7)
    parsed.seqs = seqs
    assert es_bulk.bulk_response(parsed, 7) == from_events
    answer = orjson.loads(from_events)
    assert answer["took"] == 7 and answer["errors"] is False
    assert [i["create"]["_id"] for i in answer["items"]] == [str(s) for s in seqs]
    assert {i["create"]["_seq_no"] - int(i["create"]["_id"]) for i in answer["items"]} == {0}
    for ev, seq in zip(parsed.events, reversed(seqs), strict=True):  # not one block's order
        ev.seq = seq
    parsed.seqs = None
    assert [i["create"]["_id"] for i in orjson.loads(es_bulk.bulk_response(parsed, 7))["items"]] == \
        [str(s) for s in reversed(seqs)]
