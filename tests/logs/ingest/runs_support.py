"""What test_otlp_runs.py and test_loki_runs.py share: a parse's stored lines, and the check
that a run stores what the per-record path stores (or both refuse the body alike)."""

from __future__ import annotations

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
