"""Page cursors: where the previous page of a search ended, as opaque text.

A cursor is the last event's (@timestamp, seq) and the order it was read in:
(@timestamp, seq) orders every event of the store exactly (seq is unique), so
the next page starts strictly after it whatever was written meanwhile.
"""

from __future__ import annotations

import base64

import orjson

from .errors import QueryError


def encode_cursor(ts: int, seq: int, order: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts, seq, order])).decode().rstrip("=")


def decode_cursor(text: str, order: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        ts, seq, o = orjson.loads(raw)
        if not (isinstance(ts, int) and isinstance(seq, int) and o in ("asc", "desc")):
            raise ValueError
        if abs(ts) >= 2**63 or abs(seq) >= 2**63:
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise QueryError("bad cursor: pass next_cursor from the previous page unchanged") from None
    if o != order:
        raise QueryError(f"this cursor is for order={o}; pass the same order as the first page")
    return ts, seq
