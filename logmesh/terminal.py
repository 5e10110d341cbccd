"""Text from peers made safe for a terminal: the CLI's tables and every process's log lines.

Log text and peers' names come from anyone who can send a request or register a node (a URL
path through the gateway, an NDJSON line, a distributor registration). Printed raw, an ESC
sequence in them cleared the reader's screen (``ESC[2J``), set its title or, where allowed,
its clipboard (OSC 52); a CR overwrote the line with other text; a newline forged a log line.
:func:`shown` shows each such character as a sign of itself instead.
"""

from __future__ import annotations

import logging
from typing import Any

# C0 controls as their control pictures (ESC as ␛, CR as ␍, NUL as ␀), a newline as ⏎ and a
# tab as a space (stack traces: readable on one line), DEL as ␡, C1 controls (U+009B is a CSI to
# many terminals) and the bidirectional overrides and isolates (they reorder what follows on
# the line) as \x9b, \u202e
_SHOWN = {c: chr(0x2400 + c) for c in range(0x20)} | {0x0A: "⏎", 0x09: " ", 0x7F: "\u2421"}
_SHOWN |= {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}
_SHOWN |= {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_TABLE = str.maketrans(_SHOWN)


def shown(value: Any) -> str:
    """``value`` as text a terminal prints and does nothing else with."""
    return str(value).translate(_TABLE)


class SafeFormatter(logging.Formatter):
    """A log line's message through :func:`shown` (a traceback after it keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = shown(record.message)
        return super().formatMessage(record)
