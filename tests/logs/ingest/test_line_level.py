"""ingest/line_level.py's shortcut: a push is read for levels only when one of its lines may
name one, and then every line's level is the one :func:`line_level` reads."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logmesh.logs.ingest.line_level import _KEYS, levels_of, levels_of_literals, line_level

VALUES = st.sampled_from(["error", "ERR", "Warn", "info", "trace", "fatal", "nope", "x"])
KEYS = st.sampled_from(list(_KEYS) + ["levels", "Lev", "msg", "evel", "verity"])


def _escaped(key: str) -> str:
    """``key`` as a JSON key with its first letter as a \\u escape (what a decoder reads as it)."""
    return f"\\u{ord(key[0]):04x}{key[1:]}"


@st.composite
def lines(draw: st.DrawFn) -> str:
    key, value = draw(KEYS), draw(VALUES)
    shape = draw(st.sampled_from(["json", "json-escaped-key", "json-nested", "logfmt", "plain", "text"]))
    if shape == "json":
        return json.dumps({"msg": draw(st.text(max_size=8)), key: value})
    if shape == "json-escaped-key":
        return f'{{"{_escaped(key)}": "{value}", "n": 1}}'
    if shape == "json-nested":
        return json.dumps({"params": {key: value}})
    if shape == "logfmt":
        return f"ts=1 {key}={value} msg=hi"
    if shape == "plain":
        return f"GET /goods {value}"
    return draw(st.text(max_size=20))


def _reference(texts: list[str], default: str) -> str | list[str]:
    """Every line read for its level, as before the shortcut."""
    levels = [line_level(t) or default for t in texts]
    return levels[0] if levels.count(levels[0]) == len(levels) else levels


@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), min_size=1, max_size=6), st.booleans())
def test_the_levels_are_every_lines_own(texts: list[str], ascii_only: bool):
    literals = [json.dumps(t, ensure_ascii=ascii_only).encode() if ascii_only else orjson.dumps(t)
                for t in texts]
    want = _reference(texts, "info")
    assert levels_of(texts, "info") == want
    assert levels_of_literals(literals, "info") == want


def test_a_key_spelled_by_an_escape_is_read():
    line = '{"\\u006cevel": "error"}'  # the line's own escape: its literal holds \\u
    assert line_level(line) == "error"
    assert levels_of([line], "info") == "error"
    assert levels_of_literals([orjson.dumps(line)], "info") == "error"
    spelled = b'"{\\"\\u006cevel\\": \\"error\\"}"'  # the literal's escape: the line is plain JSON
    assert levels_of_literals([spelled], "info") == "error"
