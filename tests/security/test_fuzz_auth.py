"""Property tests of the once-per-connection token check (issue #9), without sockets.

Whatever bytes arrive, cut wherever: nothing reaches the owner of a
connection before a good hello; after one, exactly what the codec decodes
does; a refusal is one error packet and a close.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.guard import ConnectionGuard
from logmesh.hello import HELLO_MAX_BYTES, hello_packet
from logmesh.logs.ingest.tcp import LogIngestProtocol
from logmesh.mesh.connection import FramedConnection
from logmesh.protocol import FrameDecoder, encode

TOKEN = "fuzz-token-0123456789"
GOOD_HELLO = encode(hello_packet(TOKEN))
DELIM = "¶".encode()


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "nothing is written after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default=None):
        return ("127.0.0.1", 4242) if name == "peername" else default

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


packets = st.dictionaries(st.sampled_from(["uri", "method", "key", "params", "x"]),
                          st.one_of(st.text(max_size=20), st.integers(-2**63, 2**63 - 1), st.none(),
                                    st.dictionaries(st.sampled_from(["token", "port"]),
                                                    st.text(max_size=30), max_size=2)),
                          max_size=4)
frames = st.one_of(packets.map(encode), st.binary(max_size=60),
                   st.just(encode(hello_packet("wrong-token"))), st.just(DELIM * 2))
streams = st.tuples(st.booleans(), st.lists(frames, max_size=8))
cuts = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30)


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i:i + n])
        i, k = i + n, k + 1
    return out


async def _framed(data: bytes, sizes: list[int]) -> tuple[list[dict], FakeTransport, FramedConnection]:
    got: list[dict] = []
    guard = ConnectionGuard("fuzz", tokens=(TOKEN.encode(),))
    conn = FramedConnection(lambda c, raw, packet: got.append(packet), guard=guard)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    for piece in chunks(data, sizes):
        if transport.closed:
            break
        conn.data_received(piece)
    guard.close()
    return got, transport, conn


@settings(max_examples=400, deadline=None)
@given(streams, cuts)
def test_framed_connection_delivers_nothing_before_a_good_hello(stream, sizes) -> None:
    with_hello, rest = stream
    data = (GOOD_HELLO if with_hello else b"") + b"".join(rest)
    got, transport, conn = asyncio.run(_framed(data, sizes))
    if with_hello:
        expected = [p for item in FrameDecoder().feed(b"".join(rest)) if not hasattr(item, "reason")
                    for p in [item[1]]]
        assert got == expected and not transport.closed and transport.written == b""
        return
    assert got == [], "nothing reaches the owner without the token"
    if transport.closed:  # refused: exactly one error packet
        reply = orjson.loads(bytes(transport.written).split(DELIM)[0])
        assert reply["errorcode"] == 401
        assert transport.written.count(DELIM) == 1
    else:
        assert transport.written == b"" and not conn.authed
        assert conn.decoder.splitter.buffered <= HELLO_MAX_BYTES


@settings(max_examples=400, deadline=None)
@given(streams, cuts)
def test_ingest_handshake_passes_on_exactly_what_follows_a_good_hello(stream, sizes) -> None:
    with_hello, rest = stream
    tail = b"".join(rest)
    data = (GOOD_HELLO if with_hello else b"") + tail
    guard = ConnectionGuard("fuzz", tokens=(TOKEN.encode(),))
    ctx = SimpleNamespace(guard=guard, max_frame_bytes=1024 * 1024)
    proto = LogIngestProtocol(ctx)  # type: ignore[arg-type]
    transport = FakeTransport()
    proto.transport = transport  # type: ignore[assignment]
    passed = bytearray()
    for piece in chunks(data, sizes):
        if transport.closed:
            break
        passed += piece if proto.authed else proto._handshake(piece)
    if with_hello:
        assert proto.authed and bytes(passed) == tail and transport.written == b""
    else:
        assert not proto.authed and passed == b""
        if transport.closed:
            assert orjson.loads(bytes(transport.written).split(DELIM)[0])["errorcode"] == 401
