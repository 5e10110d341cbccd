"""The chapter's own output: one tab-separated line per log packet.

``<local date>\\t<remote address>\\t<remote port>\\t<JSON of the packet>\\n``,
appended to ``--text-log PATH`` (a file per hour or day, like the segments:
``log.txt`` becomes ``log-2026112517.txt``) and/or printed with ``--echo``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import BinaryIO

import msgspec
import orjson

from ...terminal import shown


def book_date(t: time.struct_time) -> str:
    """``new Date().toLocaleDateString()`` in the en-US locale: 11/25/2026."""
    return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year}"


def _json_string(message: object) -> bytes:
    """The message as a JSON string; the ingest fast path already holds it encoded (Raw)."""
    if isinstance(message, msgspec.Raw):
        return bytes(message)
    return orjson.dumps(message)


class BookLog:
    def __init__(self, path: Path | None, *, echo: bool = False, rotate: str = "hour") -> None:
        self.path = Path(path) if path is not None else None
        self.echo = echo
        self.fmt = "%Y%m%d%H" if rotate == "hour" else "%Y%m%d"
        self._file: BinaryIO | None = None
        self._file_key = ""

    def _target(self, t: time.struct_time) -> BinaryIO | None:
        if self.path is None:
            return None
        key = time.strftime(self.fmt, t)
        if key != self._file_key:
            if self._file is not None:
                self._file.close()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            name = f"{self.path.stem}-{key}{self.path.suffix}"
            self._file = open(self.path.with_name(name), "ab")
            self._file_key = key
        return self._file

    def write(self, source: tuple[str, int], messages: list) -> None:
        """One line per event: the book's packet around the logged request text (``message``)."""
        t = time.localtime()
        head = f"{book_date(t)}\t{source[0]}\t{source[1]}\t".encode()
        data = b"".join(head + b'{"uri":"/logs","method":"POST","key":0,"params":'
                        + _json_string(m) + b"}\n" for m in messages)
        f = self._target(t)
        if f is not None:
            f.write(data)
            f.flush()
        if self.echo:  # shown: a request's C1 controls and bidi overrides cannot forge the screen
            lines = data.decode("utf-8", "replace").split("\n")[:-1]  # the book's tabs kept
            sys.stdout.write("".join("\t".join(map(shown, line.split("\t"))) + "\n" for line in lines))
            sys.stdout.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
