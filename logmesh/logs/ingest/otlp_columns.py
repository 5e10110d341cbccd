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
only when it has every record's value (or none has one). Encoders write each
field of a record once; one that wrote a field twice in one record and left
it out of another could shift that field's values between its own records.
The declared types are the ones of opentelemetry-proto's ``logs.proto``
(same wire types), so upb checks the same UTF-8 the generated classes check.
"""

from __future__ import annotations

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
    message("Records", ("time_unix_nano", 1, T.TYPE_FIXED64, None),
            ("severity_number", 2, T.TYPE_INT32, None), ("severity_text", 3, T.TYPE_STRING, None),
            ("body", 5, T.TYPE_MESSAGE, "Bodies"), ("attributes", 6, T.TYPE_BYTES, None),
            ("trace_id", 9, T.TYPE_BYTES, None), ("span_id", 10, T.TYPE_BYTES, None),
            ("observed_time_unix_nano", 11, T.TYPE_FIXED64, None),
            ("event_name", 12, T.TYPE_STRING, None))
    message("ScopeLogs", ("log_records", 2, T.TYPE_MESSAGE, "Records"))
    message("ResourceLogs", ("scope_logs", 2, T.TYPE_MESSAGE, "ScopeLogs"))
    message("Request", ("resource_logs", 1, T.TYPE_MESSAGE, "ResourceLogs"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logmesh.otlp.Request"))


_Request = _build()


def parse(body: bytes) -> Any | None:
    """The column view of a body the generated classes parsed already; None, should it not
    parse as this view (no known body does: the types are the same), and then every scope
    is walked a record at a time."""
    try:
        return _Request.FromString(body)
    except DecodeError:
        return None


def plain_bodies(recs: Any, n: int) -> bool:
    """Every one of the ``n`` records has a string body (possibly empty) and no attributes."""
    b = recs.body
    return len(b.string_value) == n and not (recs.attributes or b.bool_value or b.int_value or
                                             b.double_value or b.array_value or b.kvlist_value or
                                             b.bytes_value)


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


def hex_ids(ids: Any, n: int) -> list[str] | None | bool:
    """Each record's id in lower-case hex; None if no record has one; False if some have."""
    if len(ids) == n:
        return list(map(bytes.hex, ids))
    return None if not ids else False
