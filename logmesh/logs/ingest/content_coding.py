"""An HTTP ingest body's ``Content-Encoding`` undone, refusing a body that does not end whole.

aiohttp's own decoding checks that a deflate stream ended, not a gzip one: a gzip body cut
short (a proxy, a client killed mid-send) was decoded up to the cut and its first lines
stored and answered 200, the rest never named; a body that was no gzip at all raised out of
the handler as a 500. The logs service's HTTP server therefore leaves the body as sent
(``auto_decompress=False``) and the ingest routes decode it here: every gzip member must end
(several are fine, as Fluent Bit sends), a deflate stream too (zlib-wrapped or raw, as
aiohttp accepted), the decoded size is held to the limit as it grows (a small body that
inflates past ``--max-body-size`` is refused without being inflated whole). Sans-I/O.
"""

from __future__ import annotations

import zlib


class CodingError(Exception):
    """A body that cannot be decoded; ``status`` is the HTTP answer (400, 413 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode(body: bytes, coding: str, limit: int) -> bytes:
    """``body`` with ``coding`` (a Content-Encoding header's value) undone; at most ``limit``
    bytes (0: no limit) come out."""
    # A list ("identity, gzip", or the header given twice, which HTTP reads as that list):
    # identity changes nothing; one coding left is undone, more than one refused below.
    codings = [c for c in (p.strip().lower() for p in coding.split(",")) if c not in ("", "identity")]
    coding = ", ".join(codings)
    if not coding or not body:
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, limit, gzip=True)
    if coding == "deflate":
        return _inflate(body, limit, gzip=False)
    raise CodingError(415, f"Content-Encoding {coding[:40]!r} is not supported: send gzip, "
                           "deflate or none")


def _inflate(body: bytes, limit: int, *, gzip: bool) -> bytes:
    name = "gzip" if gzip else "deflate"
    out: list[bytes] = []
    size = 0
    data = body
    while True:
        if gzip:
            wbits = 31
        else:  # RFC 1950 (zlib header) as the RFC says; raw deflate as some clients send
            wbits = 15 if data[:1] and data[0] & 0x0F == 8 else -15
        d = zlib.decompressobj(wbits)
        try:
            while data:
                piece = d.decompress(data, (limit - size + 1) if limit else 0)
                size += len(piece)
                if limit and size > limit:
                    raise CodingError(413, f"the body is over {limit} bytes once {name} is undone; "
                                           "at most that many are accepted (--max-body-size)")
                out.append(piece)
                data = d.unconsumed_tail
        except zlib.error as exc:
            raise CodingError(400, f"the body is not {name}: {exc}") from None
        if not d.eof:
            raise CodingError(400, f"the {name} body ends before its stream does (cut short?): "
                                   "nothing of it is stored")
        data = d.unused_data
        if not data or not gzip:
            break  # deflate: one stream; anything after it is refused below
    if data:
        raise CodingError(400, f"bytes after the end of the {name} stream")
    return b"".join(out)
