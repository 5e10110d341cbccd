"""What a query can fail with: the two the API answers, and the two the engine handles itself.

``QueryError`` and ``QueryTimeout`` reach logs/http/ (a 400 and a 503).
``DamagedFile`` and ``FileGone`` never leave the engine: ``Engine.with_deadline``
sets the damaged file aside or refreshes, and asks again.
"""

from __future__ import annotations

from pathlib import Path


class QueryError(ValueError):
    """A request the engine cannot answer as asked (an HTTP 400); the message says why."""


class QueryTimeout(Exception):
    """A query ran past its deadline and was interrupted (an HTTP 503)."""


class DamagedFile(Exception):
    """A Parquet file of the store cannot be read: quarantined, and the query asked again."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class FileGone(Exception):
    """A file the query's snapshot named was removed meanwhile: refresh and ask again."""
