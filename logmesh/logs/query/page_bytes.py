"""A search page's byte budget: a page ends early, with a cursor, once its events' text
passes PAGE_BYTES.

Found from outside: with 75 events of 4 MiB stored (a stored line may be up to 64 MiB), a
search with ``limit=1000`` left the logs worker at 1.85 GB resident and an export of them
reached 3.5 GB: a page's memory was bounded by its count of events, not by their bytes, and
each copy of a page (DuckDB's rows, Python's, the JSON answer) held all of them. Loki
bounds a response by entries (``max_entries_limit_per_query``) and a chunk's reads by bytes;
here the page is cut by bytes too, where the rows are read: the engine asks DuckDB first for
each candidate row's (@timestamp, seq) and size (ROW_BYTES_SQL, no text leaves DuckDB), keeps
the rows whose sizes fit (``fitting``), and only then reads those rows whole.

A page always holds at least one event (one larger than the budget comes alone, else a
reader never got past it), and a page cut short has a ``next_cursor`` like a full one: the
next page starts right after its last event, so none is skipped or sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ..store.columns import COLUMNS, ident

PAGE_BYTES = 32 * 1024 * 1024  # text bytes of the events of one page (search, export's pages, tail's first)

# A row's size as the budget counts it: the bytes of its texts and JSON objects (numbers are a
# few bytes each and left out). DuckDB keeps a string's length beside it: strlen reads no text.
ROW_BYTES_SQL = "(" + " + ".join(
    f"coalesce(strlen(CAST({ident(n)} AS VARCHAR)), 0)" for n, t in COLUMNS
    if t in ("VARCHAR", "JSON")) + ")"


def fitting(sizes: Iterable[int], used: int, budget: int = PAGE_BYTES) -> int:
    """How many of ``sizes`` (in page order) fit once ``used`` bytes are on the page: at least
    one when the page is still empty."""
    n = 0
    for size in sizes:
        if used + size > budget and (n or used):
            break
        used += size
        n += 1
    return n


def event_bytes(ev: dict[str, Any]) -> int:
    """An event's size as :data:`ROW_BYTES_SQL` counts it, for events read outside DuckDB
    (query/rare.py's): its texts' bytes, an object's as its JSON text (near enough: the
    budget is a bound on memory, not an exact count)."""
    n = 0
    for value in ev.values():
        if isinstance(value, str):
            n += len(value)
        elif isinstance(value, (dict, list)):
            n += len(orjson.dumps(value))
    return n
