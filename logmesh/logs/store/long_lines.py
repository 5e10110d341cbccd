"""Room for long lines in DuckDB's NDJSON reads: ``maximum_object_size`` from the longest line.

DuckDB refuses a line longer than its buffers (``maximum_object_size``, with some slack: at
16 MB, lines to ~32 MB read) and then fails the whole read, the lenient one with
``ignore_errors`` too. Ingest bounds a packet, not the line it becomes: an OTLP record's body
of 8 MB of control characters (one HTTP request within the default limits) is a 48 MB line,
since JSON writes each as ``\\u0001``. Found from outside: every search answered 500 while
that line was in a live segment, and its compaction failed every minute for ever (a stuck
segment). So a read refused for a line too long is read again with room for the file's
longest line: measured, it costs DuckDB ~2.5x the line in memory (a 96 MB line: 230 MB
resident), where sizing every read's buffers that large would fault them in for each
segment (compact.READ_OBJECT_BYTES). A sealed segment's index says how long its longest
line can be (``longest``: its largest write), so a query reading it needs no retry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .columns import MAX_OBJECT_BYTES
from .duck import duckdb

T = TypeVar("T")
SCAN_BYTES = 8 * 1024 * 1024  # the longest line is looked for this much of the file at a time


def object_bytes(longest: object) -> int:
    """``maximum_object_size`` for a file whose lines are at most ``longest`` bytes (the
    default when that is unknown or shorter)."""
    return max(MAX_OBJECT_BYTES, longest + 1) if isinstance(longest, int) else MAX_OBJECT_BYTES


def longest_in(data: bytes) -> int:
    """How long the longest line of ``data`` is, newline included: exact past MAX_OBJECT_BYTES,
    where the room matters; below it, the length of ``data`` (not looked for)."""
    if len(data) <= MAX_OBJECT_BYTES:
        return len(data)
    return max(map(len, data.split(b"\n"))) + 1


def longest_line(path: str | Path) -> int:
    """How long the file's longest line is, newline included, as :func:`longest_in` (0: no file)."""
    longest = run = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(SCAN_BYTES):
                first = chunk.find(b"\n")
                if first < 0:
                    run += len(chunk)
                    continue
                last = chunk.rfind(b"\n")
                longest = max(longest, run + first + 1, longest_in(chunk[first + 1:last + 1]))
                run = len(chunk) - last - 1
    except FileNotFoundError:
        return 0
    return max(longest, run)


def too_long(exc: BaseException) -> bool:
    """Did DuckDB refuse a read for a line longer than its ``maximum_object_size``?"""
    return "maximum_object_size" in str(exc)


def read_fitting(read: Callable[[int], T], path: str | Path, max_object_bytes: int = MAX_OBJECT_BYTES) -> T:
    """``read(max_object_bytes)``; refused for a line too long, ``read`` again with room for
    the file's longest line."""
    try:
        return read(max_object_bytes)
    except duckdb.Error as exc:
        if not too_long(exc):
            raise
        room = object_bytes(longest_line(path))
        if room <= max_object_bytes:
            raise
        return read(room)
