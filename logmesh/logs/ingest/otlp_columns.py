"""An OTLP logs request read as columns: each scope's records as one list per field.

With the generated classes every record is a Python object made on access
(upb wraps each submessage: ~0.5 µs for a record and as much again for its
body, more than the rest of a record's ingest). This module declares the same
wire format with each scope's ``log_records`` as ONE message and each of its
fields repeated. Protobuf merges the occurrences of a singular message field
and appends repeated ones, so one parse leaves, per scope, a list of every
record's time, severity, string body, trace id..., in record order, read with
no object per record.

A field a record leaves out (proto3 writes no zeros or empty strings) makes
that list shorter than the scope's record count, which the generated classes
give; the caller then walks the scope a record at a time. So a list is used
only when it has every record's value (or none has one), but for two cases
told from two more views of the same bytes: trace and span ids on some
records (the records view: which records' bytes hold the id field,
:func:`hex_ids`) and attributes (the kinds view: one key pattern with one
scalar kind per key, :func:`attributes`).

A list per field says nothing of which record each value came from: an
encoder that wrote a field twice in one record (protobuf keeps the last) and
left it out of another would shift that field's values between its own
records, and a zero written out (proto3 writes none) would count as a value.
So the views are parsed not from the body but from what the generated classes
write back (:func:`canonical`): each field of a record once, the last of
those written twice, no zeros. Attributes are a list in the generated
classes too, so a key twice in a record survives that; :func:`attributes`
checks the records' bytes for it.
The declared types are the ones of opentelemetry-proto's ``logs.proto``
(same wire types), so upb checks the same UTF-8 the generated classes check.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from operator import itemgetter
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError


def _build() -> Any:
    f = descriptor_pb2.FileDescriptorProto(name="logmesh_otlp_columns.proto",
                                           package="logmesh.otlp", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto

    def message(name: str, *fields: tuple[str, int, int, str | None]) -> None:
        """Fields with a type name are messages: singular (merged), but ``scope_logs`` and
        ``resource_logs``, the lists the walk goes through; every other field repeated."""
        m = f.message_type.add(name=name)
        for fname, number, ftype, type_name in fields:
            single = type_name is not None and fname not in ("scope_logs", "resource_logs")
            fd = m.field.add(name=fname, number=number, type=ftype,
                             label=T.LABEL_OPTIONAL if single else T.LABEL_REPEATED)
            if type_name:
                fd.type_name = f".logmesh.otlp.{type_name}"

    # AnyValue's oneof, every kind a list: a body that is not a string shows in another list.
    message("Bodies", ("string_value", 1, T.TYPE_STRING, None), ("bool_value", 2, T.TYPE_BOOL, None),
            ("int_value", 3, T.TYPE_INT64, None), ("double_value", 4, T.TYPE_DOUBLE, None),
            ("array_value", 5, T.TYPE_BYTES, None), ("kvlist_value", 6, T.TYPE_BYTES, None),
            ("bytes_value", 7, T.TYPE_BYTES, None))
    # A scope's attributes, every record's in order: their keys, and their values by kind.
    message("Attributes", ("key", 1, T.TYPE_STRING, None), ("value", 2, T.TYPE_MESSAGE, "Bodies"))
    message("Records", ("time_unix_nano", 1, T.TYPE_FIXED64, None),
            ("severity_number", 2, T.TYPE_INT32, None), ("severity_text", 3, T.TYPE_STRING, None),
            ("body", 5, T.TYPE_MESSAGE, "Bodies"), ("attributes", 6, T.TYPE_MESSAGE, "Attributes"),
            ("trace_id", 9, T.TYPE_BYTES, None), ("span_id", 10, T.TYPE_BYTES, None),
            ("observed_time_unix_nano", 11, T.TYPE_FIXED64, None),
            ("event_name", 12, T.TYPE_STRING, None))
    message("ScopeLogs", ("log_records", 2, T.TYPE_MESSAGE, "Records"))
    message("ResourceLogs", ("scope_logs", 2, T.TYPE_MESSAGE, "ScopeLogs"))
    message("Request", ("resource_logs", 1, T.TYPE_MESSAGE, "ResourceLogs"))
    # The kinds view: each attribute's value as its bytes, whose first byte is the kind's tag.
    message("KindAttributes", ("value", 2, T.TYPE_BYTES, None))
    message("KindRecords", ("attributes", 6, T.TYPE_MESSAGE, "KindAttributes"))
    message("KindScopeLogs", ("log_records", 2, T.TYPE_MESSAGE, "KindRecords"))
    message("KindResourceLogs", ("scope_logs", 2, T.TYPE_MESSAGE, "KindScopeLogs"))
    message("KindRequest", ("resource_logs", 1, T.TYPE_MESSAGE, "KindResourceLogs"))
    # The records view: each record as its bytes, to tell which records hold an id.
    message("RecordScopeLogs", ("log_records", 2, T.TYPE_BYTES, None))
    message("RecordResourceLogs", ("scope_logs", 2, T.TYPE_MESSAGE, "RecordScopeLogs"))
    message("RecordRequest", ("resource_logs", 1, T.TYPE_MESSAGE, "RecordResourceLogs"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"logmesh.otlp.{name}"))
                 for name in ("Request", "KindRequest", "RecordRequest"))


_Request, _KindRequest, _RecordRequest = _build()
# An id field's tag and length as a record's bytes hold it: trace_id (field 9) of 16 bytes,
# span_id (field 10) of 8.
TRACE_ID, SPAN_ID = b"\x4a\x10", b"\x52\x08"
# AnyValue's tags (field number << 3 | wire type) of the kinds a label takes as it is.
_SCALARS = {0x0A: "string_value", 0x10: "bool_value", 0x18: "int_value", 0x21: "double_value"}
_first_byte = itemgetter(0)


def canonical(req: Any) -> bytes:
    """The request the generated classes parsed, written back: what the views are parsed
    from. ~0.2 µs a record (upb's encoder), the price of reading columns soundly: with the
    body's own bytes a field written twice in one record would move its values to others."""
    return req.SerializeToString()


def parse(body: bytes) -> Any | None:
    """The column view of a body written by :func:`canonical`; None, should it not parse as
    this view (no known body does: the types are the same), and then every scope is walked
    a record at a time."""
    try:
        return _Request.FromString(body)
    except DecodeError:
        return None


def plain_bodies(recs: Any, n: int) -> bool:
    """Every one of the ``n`` records has a string body (possibly empty)."""
    b = recs.body
    return len(b.string_value) == n and not (b.bool_value or b.int_value or b.double_value or
                                             b.array_value or b.kvlist_value or b.bytes_value)


def attributes(recs: Any, n: int, kinds: Callable[[], Any],
               records: Callable[[], list[bytes] | None]) -> tuple[list[str], list[list]] | None:
    """The ``n`` records' attributes as (their keys, a list of values per key), if every record
    has the same keys in the same order with a value of the same scalar kind per key; ``([],
    [])`` if none has any; None otherwise (the per-record path).

    When the scope's keys are the first record's ``k`` distinct keys ``n`` times over and
    each record has the first and the last of them once, each record has exactly those
    keys: the lists split by position. (The records, in order, split the keys into runs;
    one that starts at a first key and holds one last key ends there, and so the next
    starts at a first key.) OTLP requires a record's keys to be unique, but a body that
    breaks the rule would have its values shifted between its own records, so this is
    checked on the records' bytes (the records view, ``records()``): each must hold the
    two keys' encodings once (a value holding those bytes too sends the scope to the
    per-record path, which is only slower). The kinds are checked the same way on the
    values' first bytes, from the kinds view (``kinds()``, parsed once a body has attributes).
    """
    attrs = recs.attributes
    keys = list(attrs.key)
    if not keys:
        return [], []
    k, rest = divmod(len(keys), n)
    pattern = keys[:k]
    if rest or not k or len(set(pattern)) != k or keys != pattern * n:
        return None
    raws = records()
    if raws is None or len(raws) != n or not all(
            set(map(bytes.count, raws, repeat(_key_field(key)))) == {1} for key in {pattern[0], pattern[-1]}):
        return None
    values = kinds()
    if values is None or len(values) != len(keys):
        return None
    try:
        tags = bytes(map(_first_byte, values))
    except IndexError:  # a value with no kind
        return None
    shape = tags[:k]
    if tags != shape * n or not set(shape) <= _SCALARS.keys():
        return None
    by_kind = {tag: list(getattr(attrs.value, _SCALARS[tag])) for tag in set(shape)}
    if any(len(by_kind[tag]) != shape.count(tag) * n for tag in by_kind):
        return None
    columns, seen = [], dict.fromkeys(by_kind, 0)
    for tag in shape:  # the j-th key's values: every (count of its kind)-th value of its kind
        columns.append(by_kind[tag][seen[tag]::shape.count(tag)])
        seen[tag] += 1
    return pattern, columns


def _key_field(key: str) -> bytes:
    """A KeyValue's key as its bytes hold it: field 1's tag, the length, the UTF-8."""
    raw = key.encode()
    size, length = len(raw), bytearray()
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    return b"\x0a" + bytes(length) + bytes([size]) + raw


def stamps(recs: Any, n: int) -> list[int] | None:
    """Each record's time in ns (its observed time where it has none); [] if no record has
    either (stamped when received); None if only some records have them."""
    times = recs.time_unix_nano
    if len(times) == n:
        return list(times)
    if times:
        return None
    observed = recs.observed_time_unix_nano
    if len(observed) == n:
        return list(observed)
    return None if observed else []


def hex_ids(ids: Any, n: int, marker: bytes,
            records: Callable[[], list[bytes] | None]) -> list[str | None] | None | bool:
    """Each record's id in lower-case hex (None for a record without one); None if no record
    has one; False if that cannot be told.

    When some records have an id, which ones is read from the records' bytes (``records()``,
    the records view): a record holding its id holds ``marker`` (the field's tag and the
    id's length); a record without one may hold those two bytes too (in its body), so the
    records holding them must be exactly as many as the ids, and then they are the ones.
    """
    if len(ids) == n:
        return list(map(bytes.hex, ids))
    if not ids:
        return None
    if set(map(len, ids)) != {marker[1]}:
        return False
    raws = records()
    if raws is None or len(raws) != n:
        return False
    holds = list(map(bytes.__contains__, raws, repeat(marker)))
    if holds.count(True) != len(ids):
        return False
    hexes = iter(map(bytes.hex, ids))
    return [next(hexes) if held else None for held in holds]


def parse_view(body: bytes, kinds: bool) -> Any | None:
    """The kinds view (``kinds``: see :func:`attributes`) or the records view of a body;
    None should it not parse."""
    try:
        return (_KindRequest if kinds else _RecordRequest).FromString(body)
    except DecodeError:
        return None
