"""``from``/``to`` parsing (docs/api.md): every form, against an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logmesh.logs.query.timerange import (
    DEFAULT_FROM,
    MAX_EPOCH_MS,
    TimeRangeError,
    parse_duration,
    parse_range,
    parse_time,
)

NOW_MS = 1_795_626_000_000  # 2026-11-25T17:00:00Z


def clock() -> float:
    return NOW_MS / 1000


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("now", NOW_MS),
        ("  now  ", NOW_MS),
        ("now-15m", NOW_MS - 15 * 60_000),
        ("now+30s", NOW_MS + 30_000),
        ("now-1h", NOW_MS - 3_600_000),
        ("now-7d", NOW_MS - 7 * 86_400_000),
        ("now-2w", NOW_MS - 14 * 86_400_000),
        ("now-1d+12h", NOW_MS - 12 * 3_600_000),
        ("1795626000000", NOW_MS),
        ("0", 0),
        ("2026-11-25T17:00:00Z", NOW_MS),
        ("2026-11-25T17:00:00.250Z", NOW_MS + 250),
        ("2026-11-25T19:00:00+02:00", NOW_MS),
        ("2026-11-25T17:00:00", NOW_MS),  # no offset means UTC
        ("2026-11-25", NOW_MS - 17 * 3_600_000),  # a date is its midnight
        ("1969-12-31T23:59:59Z", -1000),
    ],
)
def test_parse_time(text, want):
    assert parse_time(text, clock=clock) == want


def test_now_overrides_the_clock():
    assert parse_time("now-1s", clock=clock, now=5000) == 4000
    assert parse_time("2026-11-25T17:00:00Z", now=0) == NOW_MS  # absolute times ignore it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", 'bad time "yesterday": use ISO-8601'),
        ("now-15", 'bad time "now-15"'),
        (
            "now-15M",
            'bad time "now-15M"',
        ),  # M would be months in Elasticsearch: refuse, don't guess
        ("now - 15m", 'bad time "now - 15m"'),
        ("-5", 'bad time "-5"'),
        ("1.5", 'bad time "1.5"'),
        ("", 'bad time ""'),
        ("99999999999999999999", "are past the year 9999"),
        ("now-999999999999999w", "too far from now: keep offsets under 10000 years"),
    ],
)
def test_bad_times_say_what_to_send(text, message):
    with pytest.raises(TimeRangeError, match=message.replace("(", r"\(")) as e:
        parse_time(text, clock=clock)
    assert e.value.hint


def test_parse_range_reads_both_ends_against_one_now():
    ticks = iter([NOW_MS / 1000, NOW_MS / 1000 + 60])  # a second call would see another minute
    assert parse_range("now-1h", "now", clock=lambda: next(ticks)) == (NOW_MS - 3_600_000, NOW_MS)


def test_parse_range_defaults_and_order():
    assert DEFAULT_FROM == "now-15m"
    assert parse_range(clock=clock) == (NOW_MS - 15 * 60_000, NOW_MS)
    assert parse_range("2026-11-25", None, clock=clock) == (NOW_MS - 17 * 3_600_000, NOW_MS)
    with pytest.raises(TimeRangeError, match=r'"from" \(now\) is after "to" \(now-1h\): swap them'):
        parse_range("now", "now-1h", clock=clock)


def test_parse_duration():
    assert parse_duration("15m") == 900_000
    assert parse_duration("1w") == 604_800_000
    for bad in ("0s", "m", "1.5m", "-1m", "1y", ""):
        with pytest.raises(TimeRangeError, match="bad duration"):
            parse_duration(bad)


@given(st.text())
def test_any_text_is_a_time_or_a_time_range_error(text):
    try:
        ms = parse_time(text, clock=clock)
    except TimeRangeError:
        return
    assert isinstance(ms, int)
    assert abs(ms) < 2**63  # always fits the BIGINT columns
    assert ms <= MAX_EPOCH_MS * 2
