"""The Elasticsearch bulk API (``POST /_bulk``, ``/{index}/_bulk``) and the probes shippers make.

Sans-I/O: a bulk body in, events and one answer item per action out. An
``index`` or ``create`` action's document is an event, read by the NDJSON
rules (``http_ndjson.record_event``: ``@timestamp``, ECS names dotted or
nested, anything else a label); the action's index is kept as the label
``es.index``. Each item is judged alone, as Elasticsearch does: a document
that cannot be used is answered with its own error status (400) and the rest
stored. ``update`` and ``delete`` are refused per item (the store keeps
events, it does not edit them). A broken action line is an item of its own,
and the line after it, its document, goes with it.

An action's ``_id`` is kept with its event as the label ``es.id``; a document
whose ``_id`` its index already stored is not stored again (es_ids.py: a ``create``
is answered 409 ``version_conflict_engine_exception``, an ``index`` 200 ``updated``,
as Elasticsearch answers a client's retry).

The answer is Elasticsearch's bulk response: ``took``, ``errors`` and one item
per action in order, with ``_id`` the action's, or the stored event's ``seq``
when it named none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import orjson

from ...protocol import loads_exact
from ..event import Event
from .common import ID_LABEL, INDEX_LABEL, MAX_DEPTH, Rejected, not_json
from .es_names import invalid_index_reason
from .http_ndjson import FlatEvent, ecs_events, flat_events, record_event

VERSION = "8.17.0"  # what GET / claims: the official clients and shippers accept 8.x
MAX_ID_BYTES = 512  # Elasticsearch's limit: a longer `_id` is refused per item
ANSWER_INDEX = "logs"  # an item's `_index` when the request named none (ES never answers null)
_DOC_ACTIONS = ("index", "create")
_ALL_ACTIONS = ("index", "create", "update", "delete")


def id_text(doc_id: Any) -> bytes:
    """An ``_id``'s JSON text as the window keys it (orjson's: the same ``_id``, the same
    bytes), in a bytes object of its own size: orjson's keeps the 4 KiB buffer it wrote into
    (RSS 4,120 against 74 bytes an id, 100k of them), and the window holds up to 500,000."""
    return bytes(memoryview(orjson.dumps(doc_id)))


@dataclass
class BulkParse:
    events: list[Event | FlatEvent] = field(default_factory=list)
    # Every action the same index/create (the shippers' usual body): (action, index), and no items
    uniform: tuple[str, str | None] | None = None
    # One per action, in order: (action, index, event position or None, status, error)
    items: list[tuple[str, str | None, int | None, int, dict | None]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> items refused
    # the events' seqs in order, when stored as one block (http_routes sets it): the answer's
    # numbers without reading them back from each event
    seqs: range | None = None
    # the action's `_id` of each event as JSON text (orjson's: the same `_id`, the same bytes),
    # in order (None: it named none); None: no event has one
    ids: list[bytes | None] | None = None
    # position -> (status, seq of the copy stored before) of the events not stored again:
    # their `_id` was stored (es_ids.py; set by http_routes)
    outcome: dict[int, tuple[int, int]] = field(default_factory=dict)

    def refuse(self, action: str, index: str | None, reason: str, kind: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.items.append((action, index, None, 400, {"type": kind, "reason": detail[:500]}))

    def document(self, action: str, index: str | None, doc_line: bytes, received: int,
                 line_no: int, doc_id: str | None = None) -> None:
        """One document: its event and a 201 item, or the item's error."""
        try:
            ev = _document(doc_line, received, index)
        except _Refused as exc:
            self.refuse(action, index, exc.reason, exc.kind, f"line {line_no}: {exc}")
            return
        if doc_id is not None or self.ids is not None:
            ids = self.ids if self.ids is not None else [None] * len(self.events)
            ids.append(None if doc_id is None else id_text(doc_id))
            self.ids = ids
            if doc_id is not None:
                labels = ev.labels if ev.labels is not None else {}
                labels[ID_LABEL] = doc_id
                ev.labels = labels
        self.items.append((action, index, len(self.events), 201, None))
        self.events.append(ev)

    def with_ids(self) -> list[tuple[int, str, str, bytes]]:
        """(position, action, index, ``_id`` as JSON text) of each event whose action named an
        ``_id``; the index is the one its answer names."""
        ids = self.ids
        if ids is None:
            return []
        if self.uniform is not None:
            action, index = self.uniform
            index = index or ANSWER_INDEX
            return [(pos, action, index, doc_id) for pos, doc_id in enumerate(ids) if doc_id is not None]
        return [(pos, action, named or ANSWER_INDEX, ids[pos])
                for action, named, pos, _, _ in self.items if pos is not None and ids[pos] is not None]


def _uniform(body: bytes, default_index: str | None, received: int) -> BulkParse | None:
    """The fast path: one action line repeated before every document, found and counted by
    one replace (C) instead of a split into lines; documents that are flat, or nested ECS
    objects of the known shape, then decode in one call (http_ndjson.flat_events,
    ecs_events). None: any other body (the general loop reads it)."""
    first = body.find(b"\n")
    if first <= 0:
        return None
    marker = b"\n" + body[:first] + b"\n"  # no copy of the body: large copies cost page faults
    try:
        action_line = orjson.loads(body[:first])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(action_line, dict) or len(action_line) != 1:
        return None
    [(action, meta)] = action_line.items()
    if action not in _DOC_ACTIONS or not isinstance(meta, dict):
        return None
    index = meta.get("_index")
    if not isinstance(index, str | None):
        return None
    index = default_index if index is None else index  # a null `_index` too, as the loop reads it
    if meta.get("_id") is not None:  # each event its own label: the lines are read below
        return _paired(body, default_index, received)
    # No action line can decode as a document (an action has a key no document has), and
    # decode_lines skips blank lines: as many documents as actions is a well-formed body
    # (an action without its document and a document without its action, both, would pass).
    joined = body.replace(marker, b"\n")
    # each action line after the first took len(marker) - 1 bytes out: the count of them
    # without a second pass over the body (body.count cost a quarter of the replace)
    actions = (len(body) - len(joined)) // (len(marker) - 1) + 1
    docs = memoryview(joined)[first + 1:]
    labels = None if index is None else {INDEX_LABEL: index}
    events = flat_events(docs, received, None if labels is None else msgspec.Raw(orjson.dumps(labels)))
    if events is None:
        events = ecs_events(docs, received, labels)
    if events is not None and len(events) == actions:
        return BulkParse(events=events, uniform=(action, index))
    return _paired(body, default_index, received, action, index, actions)


def _paired(body: bytes, default_index: str | None, received: int, action: str = "",
            index: str | None = None, actions: int = -1) -> BulkParse | None:
    """The body's lines paired by position, the action lines read in one pass when they
    differ (by ``_id``) or name an ``_id``; ``actions``: how many the caller counted (-1:
    it read only the first line, and ``action``/``index`` are unset). None: the general
    loop's body."""
    if b"\n\n" in body:  # a blank line: lines cannot be paired by position
        return None
    lines = body.split(b"\n")  # paired by position (no rstrip: it copied the body)
    if not lines[-1]:  # the newline that ends the last document (one at most: no blank line)
        lines.pop()
    pairs, odd = divmod(len(lines), 2)
    if odd:
        return None
    if actions != pairs or len(set(lines[0::2])) != 1:  # the action lines differ: by `_id`?
        same = _same_action(lines[0::2], default_index)
        if same is None:
            return None
        action, index, ids = same
        docs = b"\n".join(lines[1::2])
        events = flat_events(docs, received, None if index is None else
                             msgspec.Raw(orjson.dumps({INDEX_LABEL: index})))
        if events is None:
            events = ecs_events(docs, received, None if index is None else {INDEX_LABEL: index})
        if events is not None and len(events) == pairs:
            out = BulkParse(events=events, uniform=(action, index))
            if ids is not None:
                _label_ids(events, ids)
                out.ids = ids
            return out
        if ids is not None:
            return None  # the general loop reads each document with its `_id`
    out = BulkParse()  # documents of any shape, read one at a time, under the one action
    for i, doc_line in enumerate(lines[1::2]):
        out.document(action, index, doc_line, received, 2 * i + 2)
    if len(out.events) == pairs:
        out.items, out.uniform = [], (action, index)
    return out


_NO_ID = msgspec.Raw(b"null")


class _Meta(msgspec.Struct, frozen=True, gc=False):
    """An action's metadata as the one-pass path reads it: ``_index`` (null: the request's
    index), ``_id`` (a string); ``routing``, ``pipeline`` and the rest skipped."""

    index: str | None = msgspec.field(default=None, name="_index")
    # as it came: no str made and encoded again per document for the label and the answer
    id: msgspec.Raw = msgspec.field(default=_NO_ID, name="_id")


class _Action(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    index: _Meta | msgspec.UnsetType = msgspec.UNSET
    create: _Meta | msgspec.UnsetType = msgspec.UNSET


_action_lines = msgspec.json.Decoder(_Action).decode_lines
_index_of = attrgetter("index")
_id_of = attrgetter("id")
_labels_of = attrgetter("labels")
_first_byte = itemgetter(0)
_QUOTE = ord('"')
_ID_HEAD = b'{"' + ID_LABEL.encode() + b'":'


def _same_action(lines: list[bytes], default_index: str | None
                 ) -> tuple[str, str | None, list[str | None] | None] | None:
    """(action, index, each line's ``_id`` or None when none names one) when every one of
    ``lines`` is the same ``index`` or ``create`` action on one index, whatever else each
    names: what the official clients' bulk helper sends for documents with an ``_id``, and
    Fluent Bit (``Generate_ID``), Logstash (``document_id``) and Vector (``id_key``). One C
    pass; the general loop read such a body a line at a time, 4-5x slower. None: anything
    else (that loop says what is wrong), an ``_id`` too long among them too."""
    try:
        actions = _action_lines(b"\n".join(lines))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if len(actions) != len(lines):  # a blank line among them, which decode_lines skips
        return None
    name, other = ("index", "create") if actions[0].index is not msgspec.UNSET else ("create", "index")
    metas = list(map(attrgetter(name), actions))
    if msgspec.UNSET in metas or \
            list(map(attrgetter(other), actions)).count(msgspec.UNSET) != len(actions):
        return None  # an action of the other kind, of both, or of none
    indexes = set(map(_index_of, metas))
    if len(indexes) != 1:
        return None
    [index] = indexes
    raws = list(map(_id_of, metas))
    if raws.count(_NO_ID) == len(raws):
        return name, default_index if index is None else index, None
    ids: list[bytes | None] = list(map(bytes, raws))
    given = ids
    if _NO_ID in raws:
        ids = [None if r is _NO_ID else i for r, i in zip(raws, ids, strict=True)]
        given = [i for i in ids if i is not None]
    # A string without escapes, 1 to MAX_ID_BYTES bytes, is its own orjson text; any other
    # (an escape, a number, null, empty, too long): the loop reads and judges it. Checked in C
    # passes: a check per id in Python cost as much as the rest of the parse of its document.
    lengths = list(map(len, given))
    if set(map(_first_byte, given)) != {_QUOTE} or b"\\" in b"".join(given) or \
            min(lengths) <= 2 or max(lengths) > MAX_ID_BYTES + 2:
        return None
    return name, default_index if index is None else index, ids


def _label_ids(events: list, ids: list[bytes | None]) -> None:
    """Each event's ``_id`` into its labels (a FlatEvent's JSON text, shared by the body's
    events until here: each one with an id gets its own, the shared text's tail cut once)."""
    raw_of = msgspec.Raw
    labels = list(map(_labels_of, events))
    shared = labels[0] if labels else None
    if shared is not None and labels.count(shared) == len(labels) and None not in ids:
        # one labels text for all (a flat body's): one `%` per event, in C
        text = _ID_HEAD + b"%s" + _labels_tail(bytes(shared)).replace(b"%", b"%%")  # text, not a format
        for ev, made in zip(events, map(text.__mod__, ids), strict=True):
            ev.labels = raw_of(made)
        return
    tails: dict[int, tuple[Any, bytes]] = {}  # id(shared labels) -> (them, kept alive; the tail)
    for ev, doc_id in zip(events, ids, strict=True):
        if doc_id is None:
            continue
        labels_now = ev.labels
        known = tails.get(id(labels_now))
        if known is None:
            known = tails[id(labels_now)] = (labels_now, _labels_tail(bytes(labels_now)))
        ev.labels = raw_of(_ID_HEAD + doc_id + known[1])


def _labels_tail(raw: bytes) -> bytes:
    """What follows the ``es.id`` member in labels whose JSON text was ``raw`` (empty: none)."""
    return b"," + raw[1:] if len(raw) > 2 else b"}"


class _Refused(Exception):
    def __init__(self, reason: str, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.kind = reason, kind


def _document(doc_line: bytes, received: int, index: str | None) -> Event:
    """One document -> its event (NDJSON's rules), or :class:`_Refused` saying why not."""
    try:
        ev = record_event(loads_exact(doc_line), received,
                          deep=doc_line.count(b"{") + doc_line.count(b"[") >= MAX_DEPTH)
    except orjson.JSONDecodeError as exc:
        why = not_json(doc_line, exc, "the document")
        raise _Refused("bad_utf8" if why.reason == "bad_utf8" else "bad_document",
                       "document_parsing_exception", f"cannot parse the document: {why.detail}") from None
    except Rejected as exc:
        raise _Refused(exc.reason, "document_parsing_exception", str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise _Refused("bad_document", "document_parsing_exception", str(exc)) from None
    if index is not None:
        labels = ev.labels if ev.labels is not None else {}
        labels.setdefault(INDEX_LABEL, index)
        ev.labels = labels
    return ev


def parse_bulk(body: bytes, default_index: str | None, received: int) -> BulkParse:
    """The bulk body's actions -> events and items (see the module's docstring)."""
    fast = _uniform(body, default_index, received)
    if fast is not None and not any(map(invalid_index_reason, _indexes(fast))):
        return fast
    return _line_by_line(body, default_index, received)  # judges each action's index alone


def _indexes(parsed: BulkParse) -> set[str]:
    """The index names a parse stores under (one check each, not one per event)."""
    if parsed.uniform is not None:
        return {parsed.uniform[1]} - {None}
    return {index for _, index, _, _, _ in parsed.items if index is not None}


def _line_by_line(body: bytes, default_index: str | None, received: int) -> BulkParse:
    """The general loop: each action read and judged alone, its document with it."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    out = BulkParse()
    i, n = 0, len(lines)
    while i < n:
        try:
            action_line = orjson.loads(lines[i])
        except orjson.JSONDecodeError as exc:
            out.refuse("index", default_index, "bad_action", "x_content_parse_exception",
                       f"line {i + 1}: cannot parse the action: {exc}")
            i += 2  # its document goes with it
            continue
        if not isinstance(action_line, dict) or len(action_line) != 1:
            out.refuse("index", default_index, "bad_action", "illegal_argument_exception",
                       f"line {i + 1}: an action is an object with one key ({', '.join(_ALL_ACTIONS)})")
            i += 2
            continue
        [(action, meta)] = action_line.items()
        meta = meta if isinstance(meta, dict) else {}
        index = meta.get("_index", default_index)
        index = index if isinstance(index, str) else default_index
        doc_id = meta.get("_id")
        if doc_id is not None and action in _DOC_ACTIONS:
            doc_id = doc_id if isinstance(doc_id, str) else \
                str(doc_id) if isinstance(doc_id, int) and not isinstance(doc_id, bool) else None
            size = len(doc_id.encode()) if doc_id is not None else 0
            if doc_id is None or not 0 < size <= MAX_ID_BYTES:
                out.refuse(action, index, "bad_id", "action_request_validation_exception",
                           f"line {i + 1}: _id must be a string of 1 to {MAX_ID_BYTES} bytes")
                i += 2
                continue
        bad_index = None if index is None else invalid_index_reason(index)
        if bad_index is not None and action in _ALL_ACTIONS:  # as Elasticsearch: the item, 400
            out.refuse(action, index, "bad_index", "invalid_index_name_exception", bad_index)
            i += 1 if action == "delete" else 2
            continue
        if action not in _ALL_ACTIONS:
            out.refuse(str(action)[:40], index, "bad_action", "illegal_argument_exception",
                       f"line {i + 1}: unknown action {str(action)[:40]!r}")
            i += 2
            continue
        if action == "delete":
            out.refuse(action, index, "unsupported_action", "illegal_argument_exception",
                       "logmesh stores events and does not delete them one by one")
            i += 1
            continue
        if i + 1 >= n:
            out.refuse(action, index, "bad_document", "action_request_validation_exception",
                       f"line {i + 1}: the action has no document line after it")
            break
        doc_line = lines[i + 1]
        i += 2
        if action == "update":
            out.refuse(action, index, "unsupported_action", "illegal_argument_exception",
                       "logmesh stores events and does not update them")
            continue
        out.document(action, index, doc_line, received, i, doc_id)
    return out


def _item_keys(filter_path: str | None) -> tuple[set[str], set[str] | None]:
    """``filter_path`` (what Beats send: ``errors,items.*.error,items.*.status``) -> the top-level
    keys and the keys of an item kept (None: all of them)."""
    top: set[str] = set()
    keys: set[str] | None = set()
    for path in (filter_path or "took,errors,items").split(","):
        parts = path.strip().split(".")
        top.add(parts[0])
        if parts[0] == "items" and keys is not None:
            if len(parts) < 3 or parts[2] == "*":
                keys = None
            else:
                keys.add(parts[2])
    return top, keys


_NUMBERED_FROM = 256  # items from which numbered_rows (numpy) beats one `bytes %` per item


def _digits(nums: Any, width: int) -> Any:
    """The decimal digits (ASCII) of ``nums`` (numpy int64, each of ``width`` digits) as a
    matrix, a row per number: cut 7 digits at a time in uint32, whose division numpy does
    several times faster than int64's."""
    import numpy as np

    digits = np.empty((len(nums), width), dtype=np.uint8)
    rest = nums
    end = width
    while end > 0:
        rest, low = np.divmod(rest, 10_000_000)
        low = low.astype(np.uint32)
        for col in range(end - 1, max(end - 7, 0) - 1, -1):
            q = low // 10
            digits[:, col] = low - q * 10
            low = q
        end -= 7
    digits += ord("0")
    return digits


def numbered_rows(head: bytes, parts: list[bytes], numbers: range | list[int], sep: bytes,
                  tail: bytes) -> bytearray:
    """``head + sep.join(b"%d".join(parts) % (n, n, ...) for n in numbers) + tail``: every row
    the same template with one number (ascending, not negative) at each place between
    ``parts``; ``sep`` is one byte.

    The clients' full bulk answer is ~190 bytes an item with the item's seq twice, and one
    ``bytes %`` per item (the int made text, a bytes object, then the join and the head's
    concatenation: fresh pages each) was a tenth of the server's CPU under
    bench/ingest_http.py. Here numpy cuts the digits out a column at a time for every row at
    once and writes them into one buffer of the template's bytes, copied once into bytes.
    """
    import numpy as np  # here, not at start: an idle worker does not pay its memory

    nums = (np.arange(numbers.start, numbers.stop, numbers.step, dtype=np.int64)
            if isinstance(numbers, range) else np.array(numbers, dtype=np.int64))
    if len(nums) > 1 and (np.diff(nums) <= 0).any() or len(nums) and nums[0] < 0:
        raise ValueError("numbered_rows takes ascending numbers, not negative")
    runs = []  # (numbers, width): the numbers of each count of digits
    lo = 0
    while lo < len(nums):
        width = len(str(int(nums[lo])))
        hi = int(np.searchsorted(nums, 10 ** width)) if width < 19 else len(nums)
        runs.append((nums[lo:hi], width))
        lo = hi
    fixed = sum(map(len, parts)) + len(sep)
    size = len(head) + sum(len(run) * (fixed + width * (len(parts) - 1)) for run, width in runs) - \
        (len(sep) if runs else 0) + len(tail)
    # written in place and answered as it is: numpy's own buffer and its copy into bytes were
    # two fresh 5.6 MB areas a body, whose page faults (~3 µs a page on this VM) cost 3-4 times
    # what filling them did
    out = bytearray(size)
    buf = np.frombuffer(out, dtype=np.uint8)
    at = len(head) - len(sep)  # each row starts with sep, the first's written over by head
    for run, width in runs:
        row = sep + (b"0" * width).join(parts)
        table = buf[at:at + len(run) * len(row)].reshape(len(run), len(row))
        table[:] = np.frombuffer(row, dtype=np.uint8)
        digits = _digits(run, width)
        col = len(sep)
        for part in parts[:-1]:
            col += len(part)
            table[:, col:col + width] = digits
            col += width
        at += len(run) * len(row)
    buf[:len(head)] = np.frombuffer(head, dtype=np.uint8)
    buf[len(buf) - len(tail):] = np.frombuffer(tail, dtype=np.uint8)
    del buf  # no view left: the bytearray can be resized or freed
    return out


def bulk_response(parsed: BulkParse, took_ms: int, filter_path: str | None = None) -> bytes | bytearray:
    """Elasticsearch's bulk answer, an item per action (``_id`` is the stored event's seq),
    cut to ``filter_path``'s fields as Elasticsearch does (a few common forms of it)."""
    events = parsed.events
    top, keys = _item_keys(filter_path)
    if parsed.ids is not None and (parsed.outcome or parsed.uniform is None):
        return _items_with_ids(parsed, took_ms, top, keys)  # an item each with its own status
    head_of = {"took": b'"took":%d' % took_ms,
               "errors": b'"errors":%s' % (b"false" if parsed.uniform is not None else
                                           orjson.dumps(any(p is None for _, _, p, _, _ in parsed.items)))}
    heads = [head_of[k] for k in ("took", "errors") if k in top]
    if "items" not in top:
        return b"{" + b",".join(heads) + b"}"
    if parsed.uniform is not None:  # every item alike: bytes from one template, no dicts
        action, index = parsed.uniform
        index = index or ANSWER_INDEX
        if keys is not None and "_id" not in keys and "_seq_no" not in keys:  # the same bytes each
            item = orjson.dumps({action: {k: v for k, v in (("_index", index), ("status", 201),
                                                            ("result", "created")) if k in keys}})
            parts = [item] * len(events) or [b""]
        else:
            index_json = orjson.dumps(index)  # a `%` in it is text, not the template's: doubled
            item = b'{"%s":{"_index":%s,"_id":"' % (action.encode(), index_json.replace(b"%", b"%%")) + \
                (b'%d","_version":1,"result":"created","status":201,"_seq_no":%d,"_primary_term":1,'
                 b'"_shards":{"total":1,"successful":1,"failed":0}}}')
            seqs = parsed.seqs if parsed.seqs is not None else [ev.seq for ev in events]
            if parsed.ids is not None:  # every one stored, each with its own `_id`: one `%` each
                ids = [b'"%d"' % seq if i is None else i for i, seq in zip(parsed.ids, seqs, strict=True)]
                item = item.replace(b'"%d","_version"', b'%s,"_version"')
                parts = list(map(item.__mod__, zip(ids, seqs, strict=True))) or [b""]
            elif len(seqs) >= _NUMBERED_FROM and b"%" not in index_json:  # its pieces are no format
                head = b"{" + b"".join(h + b"," for h in heads) + b'"items":['
                try:
                    return numbered_rows(head, item.split(b"%d"), seqs, b",", b"]}")
                except ValueError:  # seqs not ascending (not one block): one `%` per item
                    pass
            if parsed.ids is None:
                parts = list(map(item.__mod__, zip(seqs, seqs, strict=True))) or [b""]  # in C
        # the answer is MBs: one join makes it, where concatenating the head and the tail
        # onto the joined items copied it five times more (fresh pages each, page faults)
        parts[0] = b"{" + b"".join(h + b"," for h in heads) + b'"items":[' + parts[0]
        parts[-1] += b"]}"
        return b",".join(parts)
    items: list[dict[str, Any]] = []
    for action, named, pos, status, error in parsed.items:
        index = named or ANSWER_INDEX
        if pos is not None:
            seq = events[pos].seq
            item = {"_index": index, "_id": str(seq), "_version": 1, "result": "created",
                    "status": status, "_seq_no": seq, "_primary_term": 1,
                    "_shards": {"total": 1, "successful": 1, "failed": 0}}
        else:
            item = {"_index": index, "_id": None, "status": status, "error": error}
        items.append({action: item if keys is None else {k: v for k, v in item.items() if k in keys}})
    return b"".join([b"{", *(h + b"," for h in heads), b'"items":', orjson.dumps(items), b"}"])


_SHARDS = {"total": 1, "successful": 1, "failed": 0}


def _items_with_ids(parsed: BulkParse, took_ms: int, top: set[str], keys: set[str] | None) -> bytes:
    """The answer to a body whose actions name ``_id``: each item its ``_id``; one whose
    ``_id`` was stored before answered as Elasticsearch answers it (a ``create`` 409
    ``version_conflict_engine_exception``, an ``index`` 200 ``updated``)."""
    events, ids, outcome = parsed.events, parsed.ids or [], parsed.outcome
    rows = parsed.items
    if parsed.uniform is not None:
        action, named = parsed.uniform
        rows = [(action, named, pos, 201, None) for pos in range(len(events))]
    items: list[dict[str, Any]] = []
    errors = False
    for action, named, pos, status, error in rows:
        index = named or ANSWER_INDEX
        if pos is None:
            errors = True
            item: dict[str, Any] = {"_index": index, "_id": None, "status": status, "error": error}
        else:
            doc_id = ids[pos]
            again = outcome.get(pos)
            seq = events[pos].seq if again is None else again[1]
            shown = str(seq) if doc_id is None else orjson.loads(doc_id)
            if again is not None and again[0] == 409:
                errors = True
                item = {"_index": index, "_id": shown, "status": 409, "error": {
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{shown}]: version conflict, document already exists (current version [1])",
                    "index_uuid": "logmesh", "shard": "0", "index": index}}
            else:
                updated = again is not None
                item = {"_index": index, "_id": shown, "_version": 2 if updated else 1,
                        "result": "updated" if updated else "created",
                        "status": 200 if updated else 201, "_seq_no": seq, "_primary_term": 1,
                        "_shards": _SHARDS}
        items.append({action: item if keys is None else {k: v for k, v in item.items() if k in keys}})
    head_of = {"took": b'"took":%d' % took_ms, "errors": b'"errors":%s' % orjson.dumps(errors)}
    heads = [head_of[k] for k in ("took", "errors") if k in top]
    if "items" not in top:
        return b"{" + b",".join(heads) + b"}"
    return b"".join([b"{", *(h + b"," for h in heads), b'"items":', orjson.dumps(items), b"}"])


def error_body(status: int, kind: str, reason: str) -> bytes:
    """Elasticsearch's error shape for a request refused as a whole."""
    cause = {"type": kind, "reason": reason}
    return orjson.dumps({"error": {"root_cause": [cause], **cause}, "status": status})


def info(cluster: str = "logmesh") -> dict[str, Any]:
    """``GET /``: enough of Elasticsearch's answer that clients and shippers take it."""
    return {"name": cluster, "cluster_name": cluster, "cluster_uuid": "logmesh",
            "version": {"number": VERSION, "build_flavor": "default", "build_type": "docker",
                        "build_hash": "logmesh", "build_date": "2026-01-01T00:00:00.000Z",
                        "build_snapshot": False, "lucene_version": "9.12.0",
                        "minimum_wire_compatibility_version": "7.17.0",
                        "minimum_index_compatibility_version": "7.0.0"},
            "tagline": "You Know, for Search"}


def license_body() -> dict[str, Any]:
    return {"license": {"status": "active", "uid": "logmesh", "type": "basic",
                        "issue_date_in_millis": 0, "max_nodes": 1000,
                        "issued_to": "logmesh", "issuer": "logmesh", "start_date_in_millis": -1}}


def nodes_body(cluster: str = "logmesh") -> dict[str, Any]:
    return {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": cluster,
            "nodes": {"logmesh": {"name": cluster, "version": VERSION, "roles": ["data", "ingest"],
                                  "http": {"publish_address": "127.0.0.1:9041"}}}}
