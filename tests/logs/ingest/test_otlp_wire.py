"""OTLP protobuf bodies as an odd or hostile encoder may write them (a field twice in one
record, left out of another, a zero written out, an attribute key twice in a record): the
columns (otlp_columns.py) must store what the per-record path (the generated classes, where
the last of a scalar written twice wins) stores, never a value moved to another record."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmesh.logs.ingest import otlp

from .runs_support import assert_stores_alike, field, lines

RECEIVED = 1795626999000
NS = 1795626000123456789


def string_value(text: str) -> bytes:
    return field(1, text.encode())


def key_value(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


# A record's fields, each as one occurrence's bytes; a record is a list of them, so a field
# may come twice, in any order, or not at all.
FIELDS = st.one_of(
    st.sampled_from([0, NS, NS + 5_000_000]).map(lambda ns: field(1, ns, fixed=True)),
    st.sampled_from([0, 9, 17]).map(lambda num: field(2, num)),
    st.sampled_from(["", "INFO", "Warn"]).map(lambda text: field(3, text.encode())),
    st.sampled_from(["", "a", "b c", "J\x10 R\x08"]).map(lambda text: field(5, string_value(text))),
    st.sampled_from([b"", b"\x01" * 16, b"\x02" * 16]).map(lambda raw: field(9, raw)),
    st.sampled_from([b"", b"\x03" * 8, b"\x04" * 8]).map(lambda raw: field(10, raw)),
    st.sampled_from([0, NS + 7]).map(lambda ns: field(11, ns, fixed=True)),
)
ATTRIBUTE = st.tuples(st.sampled_from(["k", "code.lineno", "env"]),
                      st.one_of(st.sampled_from(["x", "y"]).map(string_value),
                                st.integers(0, 3).map(lambda i: field(3, i)))).map(
    lambda kv: field(6, key_value(kv[0], kv[1])))
RECORD = st.tuples(st.lists(FIELDS, max_size=8), st.lists(ATTRIBUTE, max_size=3)).flatmap(
    lambda parts: st.permutations(parts[0] + parts[1])).map(b"".join)


def request(scopes: list[list[bytes]]) -> bytes:
    resource = field(1, key_value("service.name", string_value("shop")))
    scope_logs = b"".join(field(2, field(1, field(1, b"app")) + b"".join(field(2, r) for r in recs))
                          for recs in scopes)
    return field(1, field(1, resource) + scope_logs)


def per_record(body: bytes):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(otlp, "_pb_run", lambda *a: False)
        return otlp.parse_protobuf(body, RECEIVED)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(RECORD, min_size=1, max_size=4), min_size=1, max_size=2))
def test_records_written_oddly_store_what_the_per_record_path_stores(scopes):
    assert_stores_alike(lambda b: otlp.parse_protobuf(b, RECEIVED), per_record, request(scopes),
                        otlp.BadRequest)


TIME, OTHER_TIME = field(1, NS, fixed=True), field(1, NS + 5_000_000, fixed=True)
TEXT, BODY = field(3, b"INFO"), field(5, string_value("m"))


@pytest.mark.parametrize("records", [
    [TIME + OTHER_TIME + TEXT + BODY, TEXT + BODY],  # a time twice in one record, none in the next
    [TIME + TEXT + BODY + BODY, TIME + TEXT],  # a body twice, then none
    [TIME + TEXT + BODY + field(9, b"\x01" * 16) + field(9, b"\x02" * 16), TIME + TEXT + BODY],
    [field(1, 0, fixed=True) + TEXT + BODY, TIME + TEXT + BODY],  # a zero time written out
    [TIME + TEXT + BODY + field(6, key_value("k", string_value("x"))) * 2, TIME + TEXT + BODY],
    [TIME + TEXT + BODY + field(6, key_value("k", b"")), TIME + TEXT + BODY + field(6, key_value("k", b""))],
], ids=["time", "body", "trace id", "zero time", "attribute key", "an empty attribute value"])
def test_a_field_twice_in_a_record_is_not_moved_to_another(records):
    """Each failed on main but the last (a value of no kind: the per-record path's None)."""
    body = request([records])
    fast, slow = otlp.parse_protobuf(body, RECEIVED), per_record(body)
    assert lines(fast) == lines(slow) and fast.block.count == 2
