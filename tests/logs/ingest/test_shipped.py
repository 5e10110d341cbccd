"""An acked batch's fast path (ingest/shipped.py) stores what the per-event path
(``request_event``) stores: the same lines, the same reply, the same ledger and gateway
counts, for random batches of the shapes shippers send and of shapes it hands back.

Request packets the fast path stores unparsed (the packet as ``message``, its fields derived
where lines are read) are compared as readers see them (``event.derive_request``, the rule of
DuckDB's readers too: tests/logs/store/test_shipped_packets.py)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh import access_log
from logmesh.logs.event import derive_request
from logmesh.logs.gateway_counts import GatewayCounts
from logmesh.logs.ingest import tcp
from logmesh.logs.ingest.common import Routes
from logmesh.logs.ingest.context import IngestContext
from logmesh.logs.ingest.shipped import batch_lines, packet_decoder
from logmesh.logs.ingest.tcp import LogIngestProtocol

NOW = int(time.time() * 1000)
SOURCE = ("127.0.0.1", 5000)
_encode_lines = msgspec.json.Encoder().encode_lines


class _Writer:  # _packet never writes: data_received appends the lines it returns
    failure = None
    on_flush: list = []
    on_handover: list = []


def _protocol() -> LogIngestProtocol:
    proto = LogIngestProtocol(IngestContext(_Writer(), routes=Routes({"GET/goods": "goods"})))
    proto.source = SOURCE
    return proto


def _envelope(service: str, instance: str, events: list) -> bytes:
    """An acked batch's frame (without its delimiter), as a shipper sends it."""
    return orjson.dumps({"uri": "/logs", "method": "POST", "key": 7, "ack": True,
                         "params": {"service": service, "instance": instance, "events": events}})


def _lines_of(frame: bytes) -> list | None:
    """The fast path's lines of an acked batch's frame (None: it takes the per-event path)."""
    try:
        batch = packet_decoder.decode(frame).params
    except msgspec.DecodeError:
        return None
    return None if batch is None else batch_lines(batch, NOW, SOURCE, Routes())


def _store(envs: list, fast: bool = True) -> tuple[list, list, LogIngestProtocol]:
    """Each batch's reply and the stored lines (seqs given as the store's writer would), by
    the fast path where it applies, or (``fast`` False) by the per-event path alone."""
    proto = _protocol()
    replies: list = []
    lines: list = []
    taken, tcp.batch_lines = tcp.batch_lines, (tcp.batch_lines if fast else lambda *a: None)
    try:
        for env in envs:
            acks: list = []
            proto._packet(env, NOW, lines, acks)
            replies.append(tuple(acks[0][1:]) if acks else None)
    finally:
        tcp.batch_lines = taken
    for i, line in enumerate(lines):
        line.seq = 1000 + i
    return replies, lines, proto


def _encoded(lines: list) -> list[bytes]:
    return [_encode_lines([line]) for line in lines]


def _read(lines: list) -> list[dict]:
    """The lines as a reader sees them: the request's fields derived from an unparsed packet."""
    return [derive_request(orjson.loads(x)) for x in _encoded(lines)]


def _same_everywhere(envs: list) -> LogIngestProtocol:
    replies, lines, proto = _store(envs)
    want_replies, want_lines, slow = _store(envs, fast=False)
    assert replies == want_replies
    # The access logs' labels come in the gateway's order on the fast path: the same objects
    assert _read(lines) == _read(want_lines)
    assert proto.ctx.ledger.instances.keys() == slow.ctx.ledger.instances.keys()
    for name, led in proto.ctx.ledger.instances.items():
        other = slow.ctx.ledger.instances[name]
        assert (led.watermark, led.received, led.above, led.service) == \
            (other.watermark, other.received, other.above, other.service)
    return proto


def _gateway_event(n: int, i: int, status: int = 200, upstream: bool = True) -> list:
    ms = round(0.3 + i / 37, 3)
    extra: dict[str, Any] = {"http.request.method": "GET", "url.path": "/goods",
                             "http.response.status_code": status, "trace.id": f"{i:032x}",
                             "log.level": "error" if status >= 500 else "info",
                             "event.duration_ms": ms}
    if status == 502:
        extra["errorcode"] = "-1"
    if upstream:
        extra["upstream"], extra["upstream.address"] = "goods", "127.0.0.1:9010"
    return [n, NOW - 5 + i % 3, f"GET /goods {status} {ms}ms", extra]


def _goods_event(n: int, i: int) -> list:
    return [n, NOW - i % 4, f'{{"uri":"/goods","method":"GET","key":{i},"params":{{"id":{i}}},'
            f'"trace.id":"{i:032x}"}}']


def test_the_mesh_batches_take_the_fast_path_and_store_the_same_bytes() -> None:
    gateway = _envelope("gateway", "gw-1", [_gateway_event(1 + i, i, status, i % 7 != 3)
                                            for i, status in enumerate([200, 404, 502, 504] * 40)])
    goods = _envelope("goods", "goods-1", [_goods_event(1 + i, i) for i in range(160)])
    for env in (gateway, goods):
        assert _lines_of(env) is not None
    replies, lines, proto = _store([gateway, goods])
    want_replies, want_lines, _ = _store([gateway, goods], fast=False)
    assert replies == want_replies == [(160, []), (160, [])]
    assert _encoded(lines[:160]) == _encoded(want_lines[:160])  # byte for byte: the gateway's order
    # goods' packets: the packet as message alone, its fields derived where read
    assert [x.message for x in lines[160:]] == [x.message for x in want_lines[160:]]
    assert all(b'"url.path"' not in x and b'"params"' not in x for x in _encoded(lines[160:]))
    assert _read(lines) == _read(want_lines)
    assert sum(map(len, _encoded(lines[160:]))) < sum(map(len, _encoded(want_lines[160:]))) - 160 * 80
    assert proto.ctx.ledger.instances["gw-1"].watermark == 160


def test_the_gateway_counts_read_the_fast_paths_labels() -> None:
    events = [_gateway_event(1 + i, i, status) for i, status in enumerate([200, 504, 200] * 30)]
    both = []
    for fast in (True, False):
        _, lines, _ = _store([_envelope("gateway", "gw-1", events)], fast)
        counts = GatewayCounts(60_000, 3_600_000, started_ms=NOW - 120_000)
        counts.add(lines)
        both.append((counts.by_address(NOW), counts.route_norms(NOW + 120_000)))
    assert both[0] == both[1]
    assert both[0][0] and both[0][0][0].requests == 90


def test_anything_else_takes_the_per_event_path() -> None:
    cases = [
        [[1, NOW, "GET / 200 1ms", {"http.request.method": "GET", "other": 1}]],  # a label it has not
        [[1, NOW, "GET / 200 1ms", {"http.response.status_code": True}]],  # a status of another kind
        [[1, NOW, "GET / 200 1ms", {}, "earlier-boot"]],  # replayed from a spool
        [[1, -1, "GET / 200 1ms", {}]],  # a timestamp no reader takes: rejected by request_event
        [_goods_event(1, 1), _gateway_event(2, 2)],  # both kinds in one batch
        [[1, NOW, '{"uri":"/goods","method":"GET","params":{"n":1e999}}']],  # params no reader reads
        [[1, NOW, ' {"uri":"/goods"}']],  # JSON after whitespace
        [[1, NOW, '{"uri":\n"/goods"}']],  # a raw newline inside a packet
        [[1, NOW, "{not json"]],
    ]
    for events in cases:
        env = _envelope("svc", "i-1", events)
        assert _lines_of(env) is None, events
        _same_everywhere([env])


_scalars = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6))
_values = _scalars | st.lists(_scalars, max_size=2) | st.dictionaries(st.text(max_size=3), _scalars,
                                                                       max_size=2)
_GATEWAY_NAMES = ["http.request.method", "url.path", "http.response.status_code", "trace.id",
                  "log.level", "event.duration_ms", "errorcode", "upstream", "upstream.address"]
_extras = st.dictionaries(
    st.sampled_from(_GATEWAY_NAMES + ["message", "log.logger", "service.name", "labels", "x"]),
    _values, max_size=10)
_usual_extras = st.fixed_dictionaries(
    {}, optional={name: (st.text(max_size=6) if name != "http.response.status_code"
                         else st.integers(0, 999)) for name in _GATEWAY_NAMES})
_texts = st.sampled_from(["GET /goods 200 1.2ms", "", "{", " {", "[1]", "a\nb", '"x"']) | st.text(max_size=8)
_params = st.sampled_from(["{}", '{"id":1}', '{"a":1e5}', '{"a":0e0}', "1" * 320, "[" * 300 + "]" * 300,
                           '{"key":9}', '"text"', "null"])
_packet = st.builds(
    lambda uri, method, key, params, trace: "{" + ",".join(
        f'"{name}":{value}' for name, value in (("uri", uri), ("method", method), ("key", key),
                                                 ("params", params), ("trace.id", trace))
        if value is not None) + "}",
    st.sampled_from(['"/goods"', '"/members"', "1", None]), st.sampled_from(['"GET"', '"POST"', None, "[1]"]),
    st.sampled_from(["3", '"k"', None, "true", "{}", "-9223372036854775808", "18446744073709551615",
                     "18446744073709551616", "-9223372036854775809", "1.5"]), _params | st.none(),
    st.sampled_from(['"t1"', None, "5"]))


_hostile = st.sampled_from(["", "/goods", "GET", "a\"b", "\\", "\u00b6", "\n", "%s", "\u202e", "\x00"]) \
    | st.text(max_size=6)
# a row as the gateway sends it (access_log.py), and rows of values it never sends: out of the
# fast path's types or bounds, or no row at all
_rows = st.tuples(_hostile, _hostile, st.integers(0, 999), _hostile,
                  st.sampled_from(["info", "warning", "error"]),
                  st.integers(0, 2 ** 40 - 1) | st.sampled_from([0, 999, 1000, 1_234_567]),
                  st.integers(-(2 ** 63), 2 ** 63 - 1), _hostile, _hostile | st.none()).map(list)
_odd_rows = _rows.flatmap(lambda row: st.sampled_from([
    row[:5] + [-1] + row[6:], row[:5] + [2 ** 40] + row[6:], row[:5] + [1.5] + row[6:],
    row[:2] + [1000] + row[3:], row[:2] + ["200"] + row[3:], row[:7] + [None] + row[8:],
    row[:6] + ["E1"] + row[7:], row[:8], row + [1], []]))


def _record_event(ev: list) -> list:
    """An event whose raw is a row as the shipper sends it to a node that reads no rows."""
    return [ev[0], ev[1], *access_log.record(ev[2])]


@settings(max_examples=300, deadline=None)
@given(st.lists(_rows, min_size=1, max_size=8), st.sampled_from(["gateway", ""]))
def test_an_access_row_is_stored_as_the_record_it_stands_for(rows: list, service: str) -> None:
    events = [[1 + i, NOW - i % 3, row] for i, row in enumerate(rows)]
    as_rows = _envelope(service, "gw-1", events)
    as_records = _envelope(service, "gw-1", list(map(_record_event, events)))
    assert _lines_of(as_rows) is not None
    want = _encoded(_store([as_records], fast=False)[1])
    assert _encoded(_store([as_rows])[1]) == want  # byte for byte, the fast path
    assert _encoded(_store([as_rows], fast=False)[1]) == want  # and the per-event one
    assert _encoded(_store([as_records])[1]) == want


@settings(max_examples=200, deadline=None)
@given(_rows, _odd_rows)
def test_a_row_of_other_values_is_stored_as_its_record_or_refused_by_name(row: list,
                                                                          odd: list) -> None:
    events = [[1, NOW, row], [2, NOW, odd]]
    env = _envelope("gateway", "gw-1", events)
    assert _lines_of(env) is None  # the per-event path: each row on its own
    replies, lines, _ = _store([env])
    if len(odd) == access_log.FIELDS and odd[5].__class__ is int:
        want = _store([_envelope("gateway", "gw-1", list(map(_record_event, events)))], fast=False)
        assert replies == want[0]
        assert _encoded(lines) == _encoded(want[1])
    else:  # no row: refused by its index, the other stored
        assert replies == [(1, [[1, "bad_event"]])]
        assert [line.event_id for line in lines] == ["gw-1:1"]


def test_an_access_row_beside_an_extra_is_refused() -> None:
    row = ["GET", "/goods", 200, "t", "info", 1200, 0, "goods", "127.0.0.1:1"]
    replies, lines, _ = _store([_envelope("gateway", "gw-1", [[1, NOW, row, {"x": 1}],
                                                              [2, NOW, row]])])
    assert replies == [(1, [[0, "bad_event"]])]
    assert [line.message for line in lines] == ["GET /goods 200 1.2ms"]


@st.composite
def _batches(draw: Any) -> list:
    """1-3 batches; about half of them of a shape the fast path takes (all access logs or all
    request packets, in range), with at times one event that sends the batch the other way."""
    envs = []
    for b in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["access", "packets", "any"]))
        usual = kind != "any" and draw(st.integers(0, 3)) > 0
        first = draw(st.sampled_from([1 + b * 100, 1]))  # in a row after the last, or resent
        events = []
        for i in range(draw(st.integers(1, 12))):
            ts = draw(st.sampled_from([NOW, NOW - i]) if usual else
                      st.sampled_from([NOW, 0]) | st.integers(-2, 2 ** 53))
            if kind == "access" and draw(st.booleans()):  # the gateway's row
                ev = [first + i, ts, draw(_rows if usual else _rows | _odd_rows)]
            elif kind == "access" or (kind == "any" and draw(st.booleans())):
                ev = [first + i, ts, draw(_texts), draw(_usual_extras if usual else _extras)]
            else:
                ev = [first + i, ts, draw(_packet if usual else _packet | _texts)]
            if not usual and draw(st.integers(0, 10)) == 0:
                ev += [None] if len(ev) == 3 else []
                ev.append(draw(st.sampled_from(["earlier-boot", None])))
            events.append(ev)
        envs.append(_envelope(draw(st.sampled_from(["gateway", "goods", ""])),
                              draw(st.sampled_from(["i-1", "i-1", ""])), events))
    return envs


@settings(max_examples=400, deadline=None)
@given(_batches())
def test_both_paths_store_the_same_lines(envs: list) -> None:
    _same_everywhere(envs)


def test_a_shipped_line_has_the_fields_of_an_event_in_its_order():
    """ShippedLine repeats Event's fields to be positional: the same stored names, the same
    order (a field added to Event and not here would be missing from shipped events' lines)."""
    from logmesh.logs.event import Event
    from logmesh.logs.ingest.shipped import ShippedLine

    def names(struct: type) -> list[tuple[str, str]]:
        return [(f.name, f.encode_name) for f in msgspec.structs.fields(struct)]

    assert names(ShippedLine) == names(Event)


def test_a_request_field_over_64_bits_is_stored_as_its_digits() -> None:
    """msgspec decodes an integer of any size, orjson writes none over 64 bits: such a key (or
    method, uri, trace id) raised TypeError out of data_received, the connection dropped and its
    shipper resent the batch for ever. Both paths store it as its JSON text now."""
    big = 2**64
    events = [[1, NOW, f'{{"uri":"/goods","method":"GET","key":{big},"params":{{}}}}'],
              [2, NOW, f'{{"uri":{big},"method":[{big}],"params":{{}},"trace.id":-{big}}}']]
    for fast in (True, False):
        replies, lines, _ = _store([_envelope("goods", "goods-1", events)], fast)
        assert replies == [(2, [])]
        assert [(x.key, x.path, x.method, x.trace_id) for x in lines] == [
            (str(big), "/goods", "GET", None), (None, str(big), f"[{big}]", f"-{big}")]


def test_a_packet_line_has_fields_of_an_event_in_its_order():
    """PacketLine repeats the fields of Event an unparsed packet's line holds (positional, ten
    arguments): the same stored names, in Event's order, so it encodes as an Event would."""
    from logmesh.logs.event import Event
    from logmesh.logs.ingest.shipped import PacketLine

    event = [(f.name, f.encode_name) for f in msgspec.structs.fields(Event)]
    packet = [(f.name, f.encode_name) for f in msgspec.structs.fields(PacketLine)]
    assert [x for x in event if x in packet] == packet
