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

Cheap by construction: a push's lines are searched for a level key once, all together
(one regex over their join), and only the lines of a push that has one are read one by
one; a JSON line is parsed only when the key appears in it (for "top level only").
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

_KEYS = ("level", "LEVEL", "Level", "lvl", "LVL", "Lvl", "severity", "Severity", "SEVERITY")
_ANY_KEY = re.compile("|".join(_KEYS))
_ANY_KEY_BYTES = re.compile("|".join(_KEYS).encode())
# logfmt: a key at the line's start or after a space, its value bare or quoted
_LOGFMT = re.compile(r'(?:^|\s)(?:' + "|".join(_KEYS) + r')=(?:"([^"]*)"|([^\s"]*))')
_NAMES = {
    "trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "info": "info",
    "inf": "info", "warn": "warning", "wrn": "warning", "warning": "warning", "error": "error",
    "err": "error", "critical": "critical", "fatal": "fatal",
}
_strings = msgspec.json.Decoder(list[str]).decode


def line_level(line: str) -> str | None:
    """The level ``line`` names by one of Loki's keys, in logmesh's words; None if none."""
    text = line.strip()
    if text[:1] == "{" and text[-1:] == "}":
        if _ANY_KEY.search(text) is None:
            return None
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        for key in _KEYS:
            value = doc.get(key)
            if isinstance(value, str):
                return _NAMES.get(value.lower())
        return None
    m = _LOGFMT.search(text)
    if m is None:
        return None
    value = m.group(1) if m.group(1) is not None else m.group(2)
    return _NAMES.get(value.lower())


def levels_of(lines: list[str], default: str) -> str | list[str]:
    """Each line's level (``default`` where it names none): one string when all share it."""
    if _ANY_KEY.search("\n".join(lines)) is None:  # the usual push: no line names a level
        return default
    levels = [line_level(line) or default for line in lines]
    return levels[0] if levels.count(levels[0]) == len(levels) else levels


def levels_of_literals(literals: list[Any], default: str) -> str | list[str]:
    """:func:`levels_of` for lines still as their JSON string literals (``msgspec.Raw``, the
    JSON push's fast path): decoded only when a level key appears among them."""
    if _ANY_KEY_BYTES.search(b"".join(literals)) is None:
        return default
    return levels_of(_strings(b"[" + b",".join(literals) + b"]"), default)
