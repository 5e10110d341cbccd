"""Book packets stored unparsed -> their documents, the request's fields derived per batch.

ingest/book_block.py stores the book's packets with the logged request only
as ``message`` text; the documents the sink sends carry the request's fields
too, by :func:`logmesh.logs.event.derive_request`'s rule (the per-line path,
encode.py's ``encode_line``). Here the same fields come from a few C calls
over the whole batch, with no Python per event on the common path:

1. msgspec reads every line's ``message`` into a struct whose other fields
   refuse any value (``UnsetType``): a line that already holds one of the
   derived fields (or ``labels``) makes the batch give up, as before;
2. msgspec reads the request texts, joined by newlines, into structs;
3. ``map`` makes the derived fields' structs from their attributes, and
   msgspec writes them as one line each;
4. each document is the stored line without its ``}``, a comma, and its
   derived line without its ``{``: two ``map`` calls.

The key is the one field with a rule beyond renaming (params' ``key`` when
the request has none; as text when it is not a string): the batch checks the
types of all keys at once and touches only the keys that need it (the book's
gateway sends integers: one ``map(str, ...)``).

msgspec and orjson write the same JSON but for floats with a positive
exponent (``1e300`` / ``1e+300``), and orjson (the per-line path) reads an
integer past 64 bits as a float. A derived line with a digit run of
:data:`LONG_DIGITS` or more or a digit, ``e``, digit is handed back for the
per-line path (a string that only looks like one costs that line the slow
path, nothing else), so the documents equal the per-line path's byte for
byte (tests/logs/sinks/test_book_docs.py).

Measured (bench/notes/es_sink.md): ~0.7 µs per book packet, against ~2.2
for the three passes with a Python loop per event before.
"""

from __future__ import annotations

from operator import add, attrgetter, itemgetter
from typing import Any

import msgspec
import orjson

from ...event import as_text

BOOK_MESSAGE = b'"message":"{'  # a line whose message is a JSON object as text
PASS_EVENTS = 1000  # book packets per msgspec call: the event loop waits less for the GIL
LONG_DIGITS = 19  # -2**63 has 19 digits: a run this long may be past what orjson reads as an int
_NO = msgspec.UNSET


class _BookLine(msgspec.Struct, gc=False):
    """A stored book packet as the batch reads it. Any field typed UnsetType present on the
    line makes msgspec refuse it: derive_request would keep that value, so the batch gives
    up and the per-line path writes the line."""

    message: str
    method: msgspec.UnsetType = msgspec.field(default=_NO, name="http.request.method")
    path: msgspec.UnsetType = msgspec.field(default=_NO, name="url.path")
    trace_id: msgspec.UnsetType = msgspec.field(default=_NO, name="trace.id")
    key: msgspec.UnsetType = _NO
    params: msgspec.UnsetType = _NO
    labels: msgspec.UnsetType = _NO


class _Request(msgspec.Struct, gc=False):
    """What derive_request reads of a request; any other type: the per-line path."""

    method: str | None = None
    uri: str | None = None
    key: Any = None
    params: dict | None = None  # not an object: wrapped as {"value": ...} by the per-line path
    trace_id: str | None = msgspec.field(default=None, name="trace.id")


class _Derived(msgspec.Struct, omit_defaults=True, gc=False):
    """The fields derive_request adds, in its order (so both paths write the same bytes)."""

    method: str | None = msgspec.field(default=None, name="http.request.method")
    uri: str | None = msgspec.field(default=None, name="url.path")
    trace_id: str | None = msgspec.field(default=None, name="trace.id")
    key: str | None = None
    params: dict | None = None


_lines = msgspec.json.Decoder(_BookLine).decode_lines
_requests = msgspec.json.Decoder(_Request).decode_lines
_encode = msgspec.json.Encoder().encode_lines
_message, _key, _params = attrgetter("message"), attrgetter("key"), attrgetter("params")
_method, _uri, _trace_id = attrgetter("method"), attrgetter("uri"), attrgetter("trace_id")
_head = itemgetter(slice(None, -1))  # a line without its closing brace
_DIGITS = bytes.maketrans(b"123456789", b"000000000")  # every digit -> 0, to find runs with find()
_SUSPECTS = (b"0" * LONG_DIGITS, b"0e0")
# What msgspec raises for a line or request it cannot read (RecursionError: nested ~1000
# deep), and orjson for a key it cannot write as text (an integer past 64 bits in a list).
_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeEncodeError, RecursionError,
               orjson.JSONEncodeError)


def book_docs(lines: list[bytes], all_book: bool) -> tuple[dict[int, bytes], list[int]] | None:
    """``({index: document}, [index for the per-line path])`` for the book packets among
    ``lines`` (all of them when ``all_book``), or None: the per-line path for every line."""
    which = range(len(lines)) if all_book else [i for i, line in enumerate(lines) if BOOK_MESSAGE in line]
    docs: dict[int, bytes] = {}
    redo: list[int] = []
    for at in range(0, len(which), PASS_EVENTS):
        part = which[at:at + PASS_EVENTS]
        book = lines[at:at + PASS_EVENTS] if all_book else [lines[i] for i in part]
        derived = _derive(book)
        if derived is None:
            return None
        made, same, again = derived
        docs.update(zip(part, made, strict=True))
        for j in same:
            del docs[part[j]]
        for j in again:
            del docs[part[j]]
            redo.append(part[j])
    return docs, redo


def _derive(book: list[bytes]) -> tuple[list[bytes], list[int], list[int]] | None:
    """One pass: the documents of ``book``, the indexes of those whose request adds nothing
    (the line goes as it is), and of those the per-line path must write; or None."""
    try:
        texts = list(map(_message, _lines(b"\n".join(book))))
        text = "\n".join(texts)
        if len(texts) != len(book) or text.count("\n") != len(book) - 1:
            return None  # a raw newline in a request's text
        requests = _requests(text.encode())  # from bytes: ~15% faster than from the str
        if len(requests) != len(book):
            return None
        derived = _encode(list(map(_Derived, map(_method, requests), map(_uri, requests),
                                    map(_trace_id, requests), _keys(requests), map(_params, requests))))
    except _UNREADABLE:
        return None
    tails = derived.replace(b"\n{", b"\n,").split(b"\n")  # ",<fields>}" each, but the first
    tails[0] = b"," + tails[0][1:]
    del tails[-1]  # after the last newline
    docs = list(map(add, map(_head, book), tails))
    same = [j for j, tail in enumerate(tails) if tail == b",}"] if b",}" in tails else []
    again: list[int] = []
    digits = derived.translate(_DIGITS)
    if any(s in digits for s in _SUSPECTS):
        again = [j for j, tail in enumerate(digits.split(b"\n")) if any(s in tail for s in _SUSPECTS)]
    return docs, same, again


def _keys(requests: list[_Request]) -> list[Any]:
    """Each request's key as derive_request writes it: text, or None."""
    keys = list(map(_key, requests))
    kinds = set(map(type, keys))
    if type(None) in kinds:  # the book's gateway keeps the key inside params
        for j, key in enumerate(keys):
            if key is None:
                params = requests[j].params
                if params:
                    keys[j] = params.get("key")
        kinds = set(map(type, keys))
    if kinds <= {str, type(None)}:
        return keys
    if kinds == {int}:
        return list(map(str, keys))  # what orjson writes for an int (past 64 bits: a suspect)
    return [k if k is None or k.__class__ is str else as_text(k) for k in keys]
