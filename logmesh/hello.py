"""The ¶ protocol's hello: a token checked once, on a connection's first packet.

Sans I/O, the way h11 keeps HTTP's rules apart from sockets: the two servers
that take ¶ connections -- ``mesh/connection.py`` (distributor, services) and
``logs/ingest/tcp.py`` (the logs service's hot path, which splits no frame
before the hello) -- hand this module their first packet (or its bytes) and
act on the :class:`Verdict`; neither keeps its own copy of the rules. A client
with a token sends :func:`hello_packet` first (``mesh/client.py``).

The rules (docs/security.md): the first packet must be
``{"uri":"/auth","method":"POST","key":0,"params":{"token":"..."}}`` with a
token the listener accepts; a failed hello is answered (an error packet naming
what to send) and the connection is closed; a good one is never answered, so a
plain book client in open mode never hears a byte it did not ask for. An
unidentified peer may not make us hold more than :data:`HELLO_MAX_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .protocol import DELIMITER, encode, parse_frame, reply_key

AUTH_URI = "/auth"  # the hello's uri
HELLO_MAX_BYTES = 16 * 1024  # an unauthenticated peer may not make us hold more than this


def hello_packet(token: str) -> dict:
    """The first packet of a client that has a token."""
    return {"uri": AUTH_URI, "method": "POST", "key": 0, "params": {"token": token}}


def packet_token(packet: Any) -> str | None:
    """The token a packet carries in ``params.token`` (a hello, or a registration)."""
    if isinstance(packet, dict):
        params = packet.get("params")
        if isinstance(params, dict) and isinstance(params.get("token"), str):
            return params["token"]
    return None


def hello_token(packet: Any) -> str | None:
    """The token of a hello; None for any other packet."""
    if isinstance(packet, dict) and packet.get("uri") == AUTH_URI:
        return packet_token(packet)
    return None


def is_hello(packet: Any) -> bool:
    return isinstance(packet, dict) and packet.get("uri") == AUTH_URI


def auth_failed_packet(key: Any = 0, *, missing: bool) -> dict:
    why = "no token was sent" if missing else "the token is wrong"
    return {"key": key if isinstance(key, (int, str)) else 0, "errorcode": 401,
            "errormessage": (f"authentication required ({why}): send "
                             '{"uri":"/auth","method":"POST","key":0,"params":{"token":"..."}} '
                             "as the first packet, with the mesh's token (--token or LOGMESH_TOKEN)")}


@dataclass(frozen=True)
class Verdict:
    """What a connection does after its first packet (or what it sent instead of one)."""

    ok: bool
    missing: bool = False  # refused: no token at all (else a wrong one)
    reply: bytes = b""  # refused: the encoded error packet to write before closing


ACCEPTED = Verdict(ok=True)


def refused(packet: Any, *, missing: bool) -> Verdict:
    key = reply_key(packet) if isinstance(packet, dict) else 0
    return Verdict(ok=False, missing=missing, reply=encode(auth_failed_packet(key, missing=missing)))


def judge(packet: Any, check: Callable[[str | None], bool],
          token_in: Callable[[Any], str | None] = hello_token) -> Verdict:
    """Accept or refuse a connection by its first packet.

    ``check`` is the listener's (``ConnectionGuard.check``: constant time, any
    of its tokens); ``token_in`` may accept more than a hello (the distributor
    takes a registration's ``params.token``). ``packet`` is None when the first
    frame did not parse.
    """
    token = token_in(packet) if isinstance(packet, dict) else None
    return ACCEPTED if check(token) else refused(packet, missing=token is None)


class FirstPacket:
    """Collects a connection's bytes until its first frame, for a reader that splits no frame
    before the hello (the logs service's ingest)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> tuple[Any, bytes] | None:
        """``(first packet or None if it does not parse, the bytes after it)`` once the first
        frame is complete; None while it is not. Raises :class:`OverLimit` past
        :data:`HELLO_MAX_BYTES` without a frame."""
        self._buf += data
        end = self._buf.find(DELIMITER)
        if end < 0:
            if len(self._buf) > HELLO_MAX_BYTES:
                raise OverLimit
            return None
        first = parse_frame(bytes(self._buf[:end]))
        rest = bytes(self._buf[end + len(DELIMITER):])
        self._buf = bytearray()
        return (first if isinstance(first, dict) else None), rest


class OverLimit(Exception):
    """An unidentified peer sent more than HELLO_MAX_BYTES without ending a packet."""
