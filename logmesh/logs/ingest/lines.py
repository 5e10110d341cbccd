"""Framing of the line protocols (syslog over TCP, JSON lines): bytes in, whole lines out, no I/O.

Two framings, as RFC 6587 describes them for syslog over TCP:

* non-transparent framing: each message ends with ``\\n`` (a trailing ``\\r``
  is dropped); a NUL ends one too, because Python's ``SysLogHandler`` ends
  each message with NUL and no newline over TCP;
* octet counting: ``LEN SP MSG``, used when a connection's first byte is a
  digit (rsyslog's ``TCP_Framing="octet-counted"``, ``logger --octet-count``).

A line longer than ``max_bytes`` is never kept: its bytes are skipped up to
its end (the next newline, or the count it declared) and it is reported as
one ``too_large`` error, so the lines around it and the connection survive.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_COUNT_DIGITS = 10  # an octet count longer than this is no count: bad_frame


@dataclass(slots=True)
class FrameError:
    reason: str  # too_large | bad_frame
    detail: str


class LineSplitter:
    """Feed bytes, get whole lines and the errors met; ``buffered`` is the partial line held."""

    def __init__(self, max_bytes: int, *, octet_counting: bool = True) -> None:
        self.max_bytes = max_bytes
        self.octet_counting = octet_counting  # allowed: decided by the connection's first byte
        self.counted: bool | None = None if octet_counting else False
        self._buf = b""
        self._skip = 0  # bytes still to skip of an oversize counted frame
        self._discarding = False  # skipping an oversize line up to its newline

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> tuple[list[bytes], list[FrameError]]:
        errors: list[FrameError] = []
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return [], errors
            data = data[self._skip:]
            self._skip = 0
        buf = self._buf + data if self._buf else data
        if self.counted is None:
            stripped = buf.lstrip()
            if not stripped:
                self._buf = b""
                return [], errors
            self.counted = stripped[:1].isdigit()
        if self.counted:
            lines = self._counted(buf, errors)
        else:
            lines = self._newline(buf, errors)
        return lines, errors

    def finish(self) -> tuple[list[bytes], list[FrameError]]:
        """The connection ended cleanly (the sender's FIN): its last line needs no newline.

        ``printf '%s' "$json" | nc`` and a program's last write before it closes end the
        stream with the line unterminated; rsyslog, syslog-ng, Vector and Logstash take
        it as a line, and it was dropped here without a count. A counted frame cut short
        is a ``bad_frame``: its sender said how long it is.
        """
        buf, self._buf = self._buf, b""
        if self._skip or self._discarding:  # the end of a line already reported too_large
            self._skip, self._discarding = 0, False
            return [], []
        if self.counted:
            rest = buf.strip(b" \r\n\0")
            if not rest:
                return [], []
            return [], [FrameError("bad_frame", f"the connection ended inside a counted message: "
                                                f"{rest[:16]!r}... ({len(rest)} bytes)")]
        line = buf.replace(b"\0", b"").rstrip(b"\r")
        return ([line] if line.strip() else []), []

    def _newline(self, buf: bytes, errors: list[FrameError]) -> list[bytes]:
        if b"\0" in buf:
            buf = buf.replace(b"\0", b"\n")
        cut = buf.rfind(b"\n")
        if cut < 0:
            if self._discarding:
                buf = b""
            elif len(buf) > self.max_bytes:
                errors.append(FrameError("too_large", f"a line of more than {self.max_bytes} bytes"))
                self._discarding = True
                buf = b""
            self._buf = buf
            return []
        lines = buf[:cut].split(b"\n")
        self._buf = buf[cut + 1:]
        if self._discarding:  # the rest of the oversize line we were skipping
            self._discarding = False
            del lines[0]
        if len(self._buf) > self.max_bytes:
            errors.append(FrameError("too_large", f"a line of more than {self.max_bytes} bytes"))
            self._discarding = True
            self._buf = b""
        if lines and max(map(len, lines)) > self.max_bytes:
            kept = [line for line in lines if len(line) <= self.max_bytes]
            errors.extend(FrameError("too_large", f"a line of more than {self.max_bytes} bytes")
                          for _ in range(len(lines) - len(kept)))
            lines = kept
        if b"\r" in buf:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return [line for line in lines if line] if b"" in lines else lines

    def _counted(self, buf: bytes, errors: list[FrameError]) -> list[bytes]:
        lines: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            if buf[pos] in b" \r\n\0":  # separators some senders add between frames
                pos += 1
                continue
            space = buf.find(b" ", pos, pos + MAX_COUNT_DIGITS + 1)
            if space < 0:
                if end - pos > MAX_COUNT_DIGITS:
                    return self._resync(buf, pos, lines, errors)
                break  # the count is not complete yet
            digits = buf[pos:space]
            if not digits.isdigit():
                return self._resync(buf, pos, lines, errors)
            count = int(digits)
            start = space + 1
            if count > self.max_bytes:
                errors.append(FrameError("too_large", f"a message of {count} bytes, over "
                                                      f"{self.max_bytes}"))
                skip_to = start + count
                if skip_to > end:
                    self._skip = skip_to - end
                    pos = end
                    break
                pos = skip_to
                continue
            if start + count > end:
                break
            lines.append(buf[start:start + count])
            pos = start + count
        self._buf = buf[pos:]
        return lines

    def _resync(self, buf: bytes, pos: int, lines: list[bytes], errors: list[FrameError]) -> list[bytes]:
        """Not a count where one should be: report it and read the rest as newline-framed."""
        errors.append(FrameError("bad_frame", f"expected an octet count, got {buf[pos:pos + 16]!r}"))
        self.counted = False
        return lines + self._newline(buf[pos:], errors)
