"""The ``from``/``to`` times of the logs API (docs/api.md), as epoch milliseconds.

Accepted forms::

    2026-11-25T17:00:00Z        ISO-8601 (a date alone is midnight; no offset means UTC)
    1764090000000               epoch milliseconds (digits only)
    now  now-15m  now+1h  now-1d-12h   relative to the clock; units s m h d w

The clock is a parameter (``clock=time.time``, seconds like ``time.time``), so
tests and a whole request can share one "now".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], float]  # seconds since the epoch, like time.time

DEFAULT_FROM = "now-15m"
DEFAULT_TO = "now"

UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: larger epoch values are rejected
MAX_OFFSET_MS = 10_000 * 365 * UNIT_MS["d"]  # relative offsets past ~10000 years are rejected,
# so every accepted time fits a BIGINT whatever the clock says

_RELATIVE_RE = re.compile(r"now((?:[+-][0-9]{1,15}[smhdw])*)")
_STEP_RE = re.compile(r"([+-])([0-9]{1,15})([smhdw])")
_DURATION_RE = re.compile(r"([0-9]{1,15})([smhdw])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMS = "ISO-8601 (2026-11-25T17:00:00Z), epoch milliseconds or now-15m (units s m h d w)"


class TimeRangeError(ValueError):
    """A ``from``/``to``/duration the API can't read; ``hint`` says what to send instead."""

    def __init__(self, message: str, hint: str):
        super().__init__(f"{message}: {hint}")
        self.hint = hint


def now_ms(clock: Clock = time.time) -> int:
    return int(clock() * 1000)


def parse_time(text: str, *, clock: Clock = time.time, now: int | None = None) -> int:
    """``text`` -> epoch ms. ``now`` (epoch ms) overrides the clock for relative times."""
    s = text.strip()
    m = _RELATIVE_RE.fullmatch(s)
    if m:
        offset = sum(
            (1 if sign == "+" else -1) * int(n) * UNIT_MS[unit]
            for sign, n, unit in _STEP_RE.findall(m.group(1))
        )
        if abs(offset) > MAX_OFFSET_MS:
            raise TimeRangeError(
                f'time "{text}" is too far from now', "keep offsets under 10000 years"
            )
        return (now_ms(clock) if now is None else now) + offset
    if s.isascii() and s.isdigit():
        ms = int(s) if len(s) <= 16 else MAX_EPOCH_MS + 1
        if ms > MAX_EPOCH_MS:
            raise TimeRangeError(
                f'epoch milliseconds "{text}" are past the year 9999', f"use {_FORMS}"
            )
        return ms
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise TimeRangeError(f'bad time "{text}"', f"use {_FORMS}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def parse_range(
    from_: str | None = None, to: str | None = None, *, clock: Clock = time.time
) -> tuple[int, int]:
    """The API's ``from``/``to`` (defaults now-15m, now), read against one "now"."""
    now = now_ms(clock)
    start = parse_time(from_ or DEFAULT_FROM, now=now)
    end = parse_time(to or DEFAULT_TO, now=now)
    if start > end:
        raise TimeRangeError(
            f'"from" ({from_ or DEFAULT_FROM}) is after "to" ({to or DEFAULT_TO})', "swap them"
        )
    return start, end


def parse_duration(text: str) -> int:
    """``"15m"`` -> 900000 (ms): a positive count and one unit of s m h d w."""
    m = _DURATION_RE.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise TimeRangeError(
            f'bad duration "{text}"', "use a positive count and a unit, e.g. 1m or 2h"
        )
    ms = int(m.group(1)) * UNIT_MS[m.group(2)]
    if ms > MAX_OFFSET_MS:
        raise TimeRangeError(f'duration "{text}" is too long', "keep it under 10000 years")
    return ms
