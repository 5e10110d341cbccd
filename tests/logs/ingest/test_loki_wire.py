"""Loki protobuf pushes as an odd or hostile encoder may write them (a line or a timestamp
twice in one entry, left out of another, seconds twice in a timestamp, zeros written out):
the column view (loki.py) must store what the per-entry path stores (the last of a field
written twice wins), never a line or a time moved to another entry."""

from __future__ import annotations

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmesh.logs.ingest import loki

from .runs_support import assert_stores_alike, field, lines

RECEIVED = 1795626999000
SECONDS = 1795626000


def timestamp(*parts: bytes) -> bytes:
    return field(1, b"".join(parts))


SECS = st.sampled_from([0, SECONDS, SECONDS + 7]).map(lambda s: field(1, s))
NANOS = st.sampled_from([0, 5, 123456789]).map(lambda n: field(2, n))
FIELDS = st.one_of(
    st.lists(st.one_of(SECS, NANOS), max_size=3).flatmap(st.permutations).map(lambda p: timestamp(*p)),
    st.sampled_from(["", "a", "b c", "\x12\x03abc"]).map(lambda line: field(2, line.encode())),
)
ENTRY = st.lists(FIELDS, max_size=4).map(b"".join)


def push(streams: list[list[bytes]]) -> bytes:
    raw = b"".join(field(1, field(1, b'{job="cron"}') + b"".join(field(2, e) for e in entries))
                   for entries in streams)
    return bytes(cramjam.snappy.compress_raw(raw))


def per_entry(body: bytes):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loki, "_run", lambda *a: False)
        return loki.parse_protobuf(body, RECEIVED, 1 << 30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(ENTRY, min_size=1, max_size=4), min_size=1, max_size=2))
def test_entries_written_oddly_store_what_the_per_entry_path_stores(streams):
    assert_stores_alike(lambda b: loki.parse_protobuf(b, RECEIVED, 1 << 30), per_entry, push(streams),
                        loki.BadPush)


TS, OTHER_TS = timestamp(field(1, SECONDS)), timestamp(field(1, SECONDS + 60))
LINE, OTHER_LINE = field(2, b"first"), field(2, b"second")


@pytest.mark.parametrize("entries", [
    [TS + LINE + OTHER_LINE, TS],  # a line twice in one entry, none in the next
    [TS + OTHER_TS + LINE, LINE],  # a timestamp twice, then none
    [timestamp(field(1, SECONDS), field(1, SECONDS + 60)) + LINE, timestamp() + LINE],  # seconds twice
    [timestamp(field(1, SECONDS), field(2, 0)) + LINE, timestamp(field(1, SECONDS), field(2, 5)) + LINE],
], ids=["line", "timestamp", "seconds", "zero nanos written out"])
def test_a_field_twice_in_an_entry_is_not_moved_to_another(entries):
    body = push([entries])
    fast, slow = loki.parse_protobuf(body, RECEIVED, 1 << 30), per_entry(body)
    assert lines(fast) == lines(slow) and fast.block.count == 2
