"""The level a log line carries in itself: ``{"level":"error",...}`` or ``level=error ...``.

Loki's clients often push structured lines with no level label (loki-logger-handler,
Grafana Alloy's ``loki.write``, Promtail without a ``labels`` stage), and Loki reads the level
out of the line at ingest (``discover_log_levels``, on by default): in a JSON line the
top-level key ``level``, ``lvl`` or ``severity`` (as Loki spells them: all lower, all upper
or capitalised), in a logfmt line the first such key; the value, of any case, one of
trace/trc, debug/dbg, info/inf, warn/wrn/warning, error/err, critical, fatal. logmesh
does the same for a Loki stream with no level label, and names the levels as its other
paths do (``warning`` as OTLP and syslog; docs/ingest.md). Loki's last resort, any line
containing "error" or "info" anywhere, is not copied: "0 errors" is no error.

Only a stream with no level label pays for it (the cost: docs/benchmarks.md, "Loki: the
level from the line"); a JSON line is read for its top-level keys alone (msgspec), a
logfmt line by one regex, and a line that is neither is not searched.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

_KEYS = ("level", "LEVEL", "Level", "lvl", "LVL", "Lvl", "severity", "Severity", "SEVERITY")
# logfmt: a key at the line's start or after a space, its value bare or quoted
_LOGFMT = re.compile(r'(?:^|\s)(?:' + "|".join(_KEYS) + r')=(?:"([^"]*)"|([^\s"]*))')
_NAMES = {
    "trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "info": "info",
    "inf": "info", "warn": "warning", "wrn": "warning", "warning": "warning", "error": "error",
    "err": "error", "critical": "critical", "fatal": "fatal",
}


class _LevelKeys(msgspec.Struct):
    """A JSON line's top-level level keys: msgspec skips every other field unparsed (~0.3 µs
    a 200-byte line, where orjson.loads built the whole object)."""

    level: Any = None
    LEVEL: Any = None
    Level: Any = None
    lvl: Any = None
    LVL: Any = None
    Lvl: Any = None
    severity: Any = None
    Severity: Any = None
    SEVERITY: Any = None


_level_keys = msgspec.json.Decoder(_LevelKeys).decode
_strings = msgspec.json.Decoder(list[str]).decode
# every key of _KEYS holds one of these once lowered, and a JSON escape \uXXXX could spell one
_PIECES = (b"level", b"lvl", b"severity", b"\\u")


def _may_name_a_level(literals: bytes) -> bool:
    """False when no line of ``literals`` (JSON string literals, joined) can name a level: no
    key's letters, lowered, and no ``\\u`` escape that could spell them (JSON's other escapes
    make no letter; a line's own ``\\u`` is ``\\\\u`` in its literal, which holds it too).
    A few C passes over bytes, ~0.5 µs a 150-byte line, where decoding the literals and
    reading each line for its keys took ~2 µs. Not for text: ``str.lower`` of a line with
    one non-ASCII letter costs more than reading it."""
    if b"level" in literals:  # the usual key: a levelled push found without a lowered copy
        return True
    lowered = literals.lower()
    for piece in _PIECES:
        if piece in lowered:
            return True
    return False


def line_level(line: str) -> str | None:
    """The level ``line`` names by one of Loki's keys, in logmesh's words; None if none.

    A line that opens with ``{`` is read as JSON for its top-level keys alone (msgspec skips
    the rest unparsed), any other with an ``=`` as logfmt; a search of the nine keys over
    every line first cost more (a regex of them ~3 µs a 200-byte line, ``in`` of their
    pieces ~1.5: re and str.find slow down on text full of their letters)."""
    first = line[:1]
    if first == "{" or (first.isspace() and line.lstrip()[:1] == "{"):
        try:
            keys = _level_keys(line)
        except (msgspec.DecodeError, RecursionError):
            return None  # not JSON after all (Loki's isJSON also wants the closing brace)
        for key in _KEYS:
            value = getattr(keys, key)
            if value is not None:
                return _NAMES.get(value.lower()) if isinstance(value, str) else None
        return None
    if "=" not in line:
        return None
    m = _LOGFMT.search(line)
    if m is None:
        return None
    value = m.group(1) if m.group(1) is not None else m.group(2)
    return _NAMES.get(value.lower())


def levels_of(lines: list[str], default: str) -> str | list[str]:
    """Each line's level (``default`` where it names none): one string when all share it."""
    found = list(map(line_level, lines))
    if found.count(None) == len(found):  # the usual push of plain lines: no level in any
        return default
    levels = [level or default for level in found]
    return levels[0] if levels.count(levels[0]) == len(levels) else levels


def levels_of_literals(literals: list[Any], default: str) -> str | list[str]:
    """:func:`levels_of` for lines still as their JSON string literals (``msgspec.Raw``, the
    JSON push's fast path), decoded to text in one call when one of them may name a level:
    the messages are stored from the literals, so a push whose lines name none is not decoded."""
    joined = b",".join(literals)
    if not _may_name_a_level(joined):
        return default
    return levels_of(_strings(b"[" + joined + b"]"), default)
