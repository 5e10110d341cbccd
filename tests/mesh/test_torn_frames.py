"""TornFrames: the pieces of a packet split by raw ¶s are joined back, and junk costs little."""

from __future__ import annotations

import orjson

from logmesh.mesh.connection import TornFrames
from logmesh.protocol import DELIMITER, FrameSplitter, parse_frame


def feed(torn: TornFrames, stream: bytes) -> list[dict]:
    """What a connection does: every frame that does not parse goes to ``torn``."""
    found = []
    for raw in FrameSplitter().feed(stream):
        if isinstance(parse_frame(raw), dict):
            torn.reset()
        elif (packet := torn.bad(raw)) is not None:
            found.append(packet)
    return found


def raw_frame(packet: dict) -> bytes:
    """What the book's JSON.stringify sends: ¶ left raw inside strings."""
    return orjson.dumps(packet) + DELIMITER


def test_pieces_of_one_packet_are_joined_back():
    packet = {"uri": "/goods", "method": "POST", "params": {"name": "a¶b¶¶c¶", "key": 3}}
    [found] = feed(TornFrames(), raw_frame(packet))
    assert found["params"]["key"] == 3
    assert found["params"]["name"] == "a¶b¶c¶"  # why it is reported, never served: ¶¶ lost one


def test_junk_before_and_between_does_not_hide_a_torn_packet():
    torn = TornFrames()
    a = {"key": 1, "results": [{"name": "x¶y"}]}
    b = {"key": 2, "results": "z¶"}
    stream = b"{junk" + DELIMITER + b"more}" + DELIMITER + raw_frame(a) + b"tail}" + DELIMITER + raw_frame(b)
    assert [p["key"] for p in feed(torn, stream)] == [1, 2]


def test_a_good_frame_between_pieces_ends_them():
    stream = b'{"key":1,"s":"a' + DELIMITER + b'{"key":2}' + DELIMITER + b'b"}' + DELIMITER
    assert feed(TornFrames(), stream) == []


def pieces(n: int) -> bytes:
    return b'{"key":1,"s":"' + DELIMITER.join([b"x"] * n) + b'"}' + DELIMITER


def test_what_is_held_is_bounded():
    torn = TornFrames(max_bytes=100)
    assert len(feed(torn, pieces(TornFrames.MAX_PIECES))) == 1
    assert feed(torn, pieces(TornFrames.MAX_PIECES + 1)) == []
    big = b'{"key":1,"s":"' + b"x" * 200 + DELIMITER + b'"}' + DELIMITER
    assert feed(torn, big) == []
    assert feed(torn, b'{"key":1,"s":"' + DELIMITER + b'"}' + DELIMITER) == [{"key": 1, "s": "¶"}]
