"""The hello's rules without sockets (logmesh/hello.py): both ¶ servers act on these verdicts."""

from __future__ import annotations

import orjson
import pytest

from logmesh.hello import (
    HELLO_MAX_BYTES,
    FirstPacket,
    OverLimit,
    hello_packet,
    judge,
    packet_token,
)
from logmesh.protocol import DELIMITER, encode

TOKEN = "a-token-long-enough-for-the-mesh"


def check(token: str | None) -> bool:
    return token == TOKEN


def reply(verdict) -> dict:
    assert verdict.reply.endswith(DELIMITER)
    return orjson.loads(verdict.reply[: -len(DELIMITER)])


def test_a_good_hello_is_accepted_and_never_answered():
    verdict = judge(hello_packet(TOKEN), check)
    assert verdict.ok and verdict.reply == b""


@pytest.mark.parametrize("packet, missing", [
    (hello_packet("wrong"), False),
    ({"uri": "/goods", "method": "GET", "key": 7}, True),  # a book packet first: no token
    (None, True),  # the first frame did not parse
    ({"uri": "/auth", "method": "POST", "key": 0, "params": {"token": 5}}, True),
])
def test_a_failed_hello_is_answered_with_what_to_send(packet, missing):
    verdict = judge(packet, check)
    assert not verdict.ok and verdict.missing is missing
    answer = reply(verdict)
    assert answer["errorcode"] == 401
    assert '"uri":"/auth"' in answer["errormessage"] and "LOGMESH_TOKEN" in answer["errormessage"]
    assert answer["key"] == (packet or {}).get("key", 0)


def test_the_refusal_keeps_the_books_correlation_key():
    verdict = judge({"uri": "/goods", "method": "GET", "key": 1, "params": {"key": 42}}, check)
    assert reply(verdict)["key"] == 42


def test_a_listener_may_accept_more_than_a_hello():
    registration = {"uri": "/distributes", "method": "POST", "key": 0,
                    "params": {"port": 1, "token": TOKEN}}
    assert not judge(registration, check).ok
    assert judge(registration, check, packet_token).ok


def test_first_packet_waits_for_the_whole_frame_and_hands_back_the_rest():
    wire = encode(hello_packet(TOKEN)) + b'{"uri":"/x"}' + DELIMITER
    first = FirstPacket()
    end = wire.index(DELIMITER)
    for i in range(end):  # one byte at a time, the delimiter's bytes last
        assert first.feed(wire[i:i + 1]) is None
    packet, rest = first.feed(wire[end:])
    assert packet == hello_packet(TOKEN)
    assert rest == b'{"uri":"/x"}' + DELIMITER


def test_an_unparsable_first_frame_is_none():
    packet, rest = FirstPacket().feed(b"not json" + DELIMITER + b"more")
    assert packet is None and rest == b"more"


def test_an_unidentified_peer_may_not_make_us_hold_more_than_the_limit():
    first = FirstPacket()
    assert first.feed(b"x" * HELLO_MAX_BYTES) is None
    with pytest.raises(OverLimit):
        first.feed(b"x")
