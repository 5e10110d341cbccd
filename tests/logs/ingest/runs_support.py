"""What test_otlp_runs.py and test_loki_runs.py share: a parse's stored lines, and the check
that a run stores what the per-record path stores (or both refuse the body alike)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import orjson
import pytest


def lines(parsed: Any) -> list[dict]:
    """The lines a parse would store, read back (seqs 1, 2, ...: an Event omits a seq of 0)."""
    return [orjson.loads(x) for x in parsed.block.encode(range(1, parsed.block.count + 1)).splitlines()]


def assert_stores_alike(fast: Callable[[bytes], Any], slow: Callable[[bytes], Any], body: bytes,
                        refused: type[Exception]) -> None:
    try:
        expected = slow(body)
    except refused as exc:
        with pytest.raises(refused) as fast_exc:
            fast(body)
        assert fast_exc.value.reason == exc.reason  # type: ignore[attr-defined]
        return
    got = fast(body)
    assert lines(got) == lines(expected) and got.rejected == expected.rejected


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes, fixed: bool = False) -> bytes:
    """One occurrence of a protobuf field, as an odd encoder may write it anywhere: a varint,
    a fixed64 (``fixed``) or a length-delimited value."""
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if fixed:
        return varint(number << 3 | 1) + struct.pack("<Q", value)
    return varint(number << 3) + varint(value)
