"""The ¶ codec (DESIGN.md §1, book defects 1-4): exact under any chunking, bad input is a value."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmesh.protocol import (
    DELIMITER,
    BadFrame,
    FrameDecoder,
    FrameSplitter,
    encode,
    encode_many,
    escape_frame,
    parse_frame,
    reply_key,
    split_frames,
)

PILCROW = "¶"

# Characters that stress the codec: the delimiter itself, its two bytes as separate characters
# (U+00C2 "Â" encodes to C3 82, U+00B6 is the delimiter), 2-, 3- and 4-byte UTF-8, quotes and escapes.
TRICKY = st.sampled_from([PILCROW, "\u00c2", "é", "€", "한", "😀", '"', "\\", "\n", "\x00", "\u2028"])
TEXT = st.text(st.one_of(TRICKY, st.characters(codec="utf-8")), max_size=40)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
PACKET = st.dictionaries(TEXT, JSON_VALUE, max_size=6)
PACKETS = st.lists(PACKET, max_size=12)


def feed_chunks(decoder: FrameDecoder, stream: bytes, cuts: list[int]) -> list:
    out: list = []
    prev = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        out.extend(decoder.feed(stream[prev:cut]))
        prev = cut
    return out


def packets_of(items: list) -> list[dict]:
    return [item[1] for item in items if not isinstance(item, BadFrame)]


def bad_of(items: list) -> list[tuple[str, int]]:
    return [(item.reason, item.nbytes) for item in items if isinstance(item, BadFrame)]


def summary(items: list) -> list:
    """Frames and bad frames in order; a bad frame by (reason, size), since details may differ."""
    return [(b.reason, b.nbytes) if isinstance(b, BadFrame) else b for b in items]


# -- encode ---------------------------------------------------------------------------


def test_encode_escapes_pilcrow_so_only_the_delimiter_remains():
    data = encode({"uri": "/goods", "params": {"name": "a¶b¶¶c"}})
    assert data.endswith(DELIMITER)
    assert data.count(DELIMITER) == 1  # the only raw ¶ is the delimiter itself
    assert b"a\\u00b6b\\u00b6\\u00b6c" in data
    # plain JSON, so any receiver (Node's JSON.parse included) reads the ¶ back
    assert json.loads(data[: -len(DELIMITER)].decode()) == {"uri": "/goods", "params": {"name": "a¶b¶¶c"}}


def test_encode_escapes_pilcrow_in_keys_too():
    data = encode({"¶": "x"})
    assert data.count(DELIMITER) == 1
    assert orjson.loads(data[:-2]) == {"¶": "x"}


def test_encode_many_is_concatenated_encode():
    packets = [{"a": 1}, {"b": "¶"}, {}]
    assert encode_many(packets) == b"".join(encode(p) for p in packets)


def test_escape_frame_makes_raw_json_a_single_frame():
    raw = orjson.dumps({"msg": "x¶y"})
    framed = escape_frame(raw)
    items = FrameDecoder().feed(framed)
    assert packets_of(items) == [{"msg": "x¶y"}]


# -- decode: fixed cases --------------------------------------------------------------


def test_several_packets_in_one_read_and_one_packet_over_many_reads():
    stream = encode({"a": 1}) + encode({"b": 2}) + encode({"c": "x" * 100})
    d = FrameDecoder()
    assert packets_of(d.feed(stream[:-50])) == [{"a": 1}, {"b": 2}]
    assert d.feed(stream[-50:-1]) == []
    assert packets_of(d.feed(stream[-1:])) == [{"c": "x" * 100}]
    assert d.errors == {}


def test_raw_frame_bytes_are_kept_verbatim():
    d = FrameDecoder()
    [(raw, packet)] = d.feed(b'{"uri":"/x",  "k":"\xc3\xa9"}\xc2\xb6')
    assert raw == b'{"uri":"/x",  "k":"\xc3\xa9"}'
    assert packet == {"uri": "/x", "k": "é"}


def test_delimiter_cut_across_reads_does_not_merge_frames():  # book defect 3
    stream = encode({"a": 1}) + encode({"b": 2})
    cut = stream.index(DELIMITER) + 1  # between C2 and B6
    d = FrameDecoder()
    assert d.feed(stream[:cut]) == []
    assert packets_of(d.feed(stream[cut:])) == [{"a": 1}, {"b": 2}]


def test_multibyte_character_cut_across_reads():  # book defect 3
    stream = encode({"k": "😀한"})
    d = FrameDecoder()
    out = []
    for i in range(len(stream)):
        out += d.feed(stream[i : i + 1])
    assert packets_of(out) == [{"k": "😀한"}]


def test_empty_frames_are_ignored():  # book defect 4
    d = FrameDecoder()
    out = d.feed(b"\xc2\xb6\xc2\xb6" + encode({"a": 1}) + b"\xc2\xb6\xc2\xb6" + encode({"b": 2}))
    assert packets_of(out) == [{"a": 1}, {"b": 2}]
    assert d.errors == {}


def test_raw_pilcrow_from_a_book_sender_costs_only_its_own_frame():  # book defect 1
    # JSON.stringify does not escape ¶: the book's sender splits its own packet in two.
    stream = '{"name":"a¶b"}¶'.encode() + encode({"after": True})
    d = FrameDecoder()
    out = d.feed(stream)
    assert packets_of(out) == [{"after": True}]
    assert d.errors == {"bad_json": 2}


def test_bad_frames_are_counted_and_the_good_ones_around_them_arrive():
    d = FrameDecoder(max_frame_bytes=64)
    stream = b"".join([
        encode({"n": 1}),
        b"not json" + DELIMITER,
        encode({"n": 2}),
        b'{"bad": "\xff\xfe"}' + DELIMITER,  # invalid UTF-8
        encode({"n": 3}),
        encode({"big": "x" * 200}),  # oversized
        encode({"n": 4}),
        b"[1, 2]" + DELIMITER,  # not an object
        b"null" + DELIMITER,  # the reply that killed the book's gateway
        encode({"n": 5}),
    ])
    out = d.feed(stream)
    assert packets_of(out) == [{"n": i} for i in range(1, 6)]
    assert d.errors == {"bad_json": 1, "bad_utf8": 1, "too_large": 1, "not_object": 2}
    assert [b.reason for b in out if isinstance(b, BadFrame)] == [
        "bad_json", "bad_utf8", "too_large", "not_object", "not_object"]


def test_oversized_frame_over_many_reads_is_skipped_with_bounded_memory():
    limit = 100
    d = FrameDecoder(max_frame_bytes=limit)
    big = encode({"big": "y" * 10_000})
    out = []
    for i in range(0, len(big), 7):
        out += d.feed(big[i : i + 7])
        assert d.splitter.buffered <= limit + 1  # never holds the oversized frame
    out += d.feed(encode({"ok": 1}))
    assert bad_of(out) == [("too_large", len(big) - len(DELIMITER))]
    assert packets_of(out) == [{"ok": 1}]
    assert d.errors == {"too_large": 1}


@pytest.mark.parametrize("size_delta", [-1, 0, 1])
def test_frame_at_the_size_limit_is_judged_the_same_however_it_is_cut(size_delta):
    frame = encode({"v": "z" * 50})
    limit = len(frame) - len(DELIMITER) + size_delta  # frame body is limit - size_delta bytes
    whole = FrameDecoder(max_frame_bytes=limit).feed(frame + encode({"next": 1}))
    stream = frame + encode({"next": 1})
    d = FrameDecoder(max_frame_bytes=limit)
    bytewise = []
    for i in range(len(stream)):
        bytewise += d.feed(stream[i : i + 1])
    assert summary(bytewise) == summary(whole)
    fits = size_delta >= 0
    assert len(packets_of(whole)) == (2 if fits else 1)


def test_parse_frame_reasons():
    assert parse_frame(b'{"a":1}') == {"a": 1}
    assert parse_frame(b"{").reason == "bad_json"
    assert parse_frame(b"\xc3\x28").reason == "bad_utf8"
    assert parse_frame(b'"str"').reason == "not_object"


def test_splitter_only_splits():
    s = FrameSplitter()
    assert s.feed(b"abc\xc2") == []
    assert s.buffered == 4
    assert s.feed(b"\xb6def\xc2\xb6") == [b"abc", b"def"]
    assert s.buffered == 0


# Pieces of a stream whose frames are large (a shipper's batch) or not, with the delimiter's bytes
# alone, in pairs that are no delimiter, and text holding b"\xb6" (Korean, "¶" escaped or not).
BIG_PIECE = st.sampled_from([
    b"a" * 2047, b"b" * 2048, b"c" * 5000, DELIMITER, DELIMITER * 2, b"\xb6", b"\xc2", b"\xb6\xc2",
    b"\xc2\xc2", b"\xb6" * 20, "한국어 로그 ¶".encode(), "ö¶ö".encode(), b"\xc3\xb6" * 9, b"x",
])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(BIG_PIECE, max_size=16), data=st.data())
def test_large_frames_split_as_the_regex_splits_them_however_cut(pieces, data):
    stream = b"".join(pieces)
    want = stream.split(DELIMITER)
    assert split_frames(stream) == want
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
    s = FrameSplitter(max_frame_bytes=1 << 20)
    got: list = []
    prev = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        got += s.feed(stream[prev:cut])
        prev = cut
    assert got == [frame for frame in want[:-1] if frame]  # empty frames are nothing
    assert s.buffered == len(want[-1])


# -- reply_key ------------------------------------------------------------------------


def test_reply_key_prefers_params_key_like_the_book_gateway():
    assert reply_key({"uri": "/goods", "params": {"key": 7}}) == 7
    assert reply_key({"key": 3, "params": {"key": 7}}) == 7
    assert reply_key({"key": 3, "params": {"name": "pen"}}) == 3
    assert reply_key({"key": 3, "params": "raw text"}) == 3
    assert reply_key({"params": [1, 2]}) is None


# -- properties -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=PACKETS, data=st.data())
def test_any_packets_cut_anywhere_decode_to_the_same_packets_in_order(packets, data):
    stream = encode_many(packets)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")
    d = FrameDecoder()
    out = feed_chunks(d, stream, cuts)
    assert packets_of(out) == packets
    assert d.errors == {}
    assert d.splitter.buffered == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=PACKETS)
def test_one_byte_at_a_time_equals_whole(packets):
    stream = encode_many(packets)
    whole = FrameDecoder().feed(stream)
    d = FrameDecoder()
    bytewise = []
    for i in range(len(stream)):
        bytewise += d.feed(stream[i : i + 1])
    assert bytewise == whole
    assert packets_of(whole) == packets


def _bad_item(kind: str, text: str) -> tuple[bytes, str]:
    """One undeliverable frame (without delimiter) and the reason it must be counted under."""
    body = text.encode().replace(DELIMITER, b"")
    if kind == "garbage":
        return b"#" + body, "bad_json"
    if kind == "bad_utf8":
        return b'{"s": "' + body.replace(b'"', b"") + b'\xff\xc3"}', "bad_utf8"
    if kind == "not_object":
        return orjson.dumps([text]).replace(DELIMITER, b"\\u00b6"), "not_object"
    if kind == "too_large":
        return orjson.dumps({"pad": "p" * 80, "t": text}).replace(DELIMITER, b"\\u00b6"), "too_large"
    raise AssertionError(kind)


STREAM_ITEM = st.one_of(
    PACKET.map(lambda p: ("ok", p)),
    st.tuples(st.sampled_from(["garbage", "bad_utf8", "not_object", "too_large"]), TEXT),
    st.just(("empty", None)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(STREAM_ITEM, max_size=12), data=st.data())
def test_bad_frames_are_counted_and_never_cost_a_good_one(items, data):
    limit = 80
    parts: list[bytes] = []
    want_packets: list[dict] = []
    want_errors: dict[str, int] = {}
    for kind, value in items:
        if kind == "ok":
            frame = encode(value)
            if len(frame) - len(DELIMITER) > limit:
                kind, value = "too_large", ""
                want_errors["too_large"] = want_errors.get("too_large", 0) + 1
            else:
                want_packets.append(value)
            parts.append(frame)
        elif kind == "empty":
            parts.append(DELIMITER)
        else:
            raw, reason = _bad_item(kind, value)
            if len(raw) > limit:
                reason = "too_large"
            want_errors[reason] = want_errors.get(reason, 0) + 1
            parts.append(raw + DELIMITER)
    stream = b"".join(parts)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")

    whole = FrameDecoder(max_frame_bytes=limit)
    whole_out = whole.feed(stream)
    chunked = FrameDecoder(max_frame_bytes=limit)
    chunked_out = feed_chunks(chunked, stream, cuts)
    bytewise = FrameDecoder(max_frame_bytes=limit)
    bytewise_out = feed_chunks(bytewise, stream, list(range(len(stream))))

    for decoder, out in ((whole, whole_out), (chunked, chunked_out), (bytewise, bytewise_out)):
        assert packets_of(out) == want_packets
        assert decoder.errors == want_errors
        assert decoder.splitter.buffered <= limit + 1
    assert summary(chunked_out) == summary(whole_out)
    assert summary(bytewise_out) == summary(whole_out)


def test_lone_surrogate_escapes_become_replacement_characters():
    """Node's JSON.stringify writes half a surrogate pair as an escape; it must not cost the packet."""
    from logmesh.protocol import replace_lone_surrogates

    assert replace_lone_surrogates(b'{"a":"x\\ud800y"}') == b'{"a":"x\\ufffdy"}'
    assert replace_lone_surrogates(b'{"a":"\\udc00\\ud83d"}') == b'{"a":"\\ufffd\\ufffd"}'
    assert replace_lone_surrogates(b'{"a":"\\ud83d\\ude00"}') is None, "a pair is an emoji"
    assert replace_lone_surrogates(b'{"a":"\\\\ud800"}') is None, "an escaped backslash, then text"
    assert replace_lone_surrogates(b'{"a":"\\\\\\ud800"}') == b'{"a":"\\\\\\ufffd"}'
    assert replace_lone_surrogates(b'{"a":"plain"}') is None
    assert parse_frame(b'{"uri":"/goods","params":{"name":"cut \\ud83d"}}') == {
        "uri": "/goods", "params": {"name": "cut \ufffd"}}
    assert isinstance(parse_frame(b'{"a":"\\ud800'), BadFrame), "still bad JSON: refused"


@pytest.mark.parametrize("chunk", [None, 7, 4096], ids=["one-read", "7-byte-reads", "4k-reads"])
def test_a_skipped_frame_hands_its_first_bytes_to_the_caller(chunk):
    """The logs service answers a too-large acked batch by the key it finds in the frame's head."""
    big = encode({"key": 9, "ack": True, "params": {"x": "y" * 10_000}})
    stream = encode({"n": 1}) + big + encode({"n": 2})
    s = FrameSplitter(max_frame_bytes=1000)
    cuts = range(0, len(stream), chunk) if chunk else [0]
    out = [item for i in cuts for item in s.feed(stream[i : i + (chunk or len(stream))])]
    bad = [item for item in out if isinstance(item, BadFrame)]
    assert [b for b in out if not isinstance(b, BadFrame)] == [b'{"n":1}', b'{"n":2}']
    assert [(b.reason, b.nbytes) for b in bad] == [("too_large", len(big) - len(DELIMITER))]
    assert bad[0].head == big[: FrameSplitter.HEAD_BYTES]
    assert s.buffered <= 1001  # the head is kept, never the frame


def test_a_frame_within_the_limit_has_no_head():
    assert FrameDecoder().feed(b"[1]" + DELIMITER)[0].head == b""
