"""Fields a query names that no event has: a warning in the answer, with a guess.

Any name that is not a column is a key of ``labels`` (or ``params.a.b`` a path into
``params``: fields.py), so ``statuss >= 500`` is a valid query that quietly matches
nothing. The API's search, histogram and top answers say so instead
(``"warnings": ["field statuss is unknown ... did you mean http.response.status_code?"]``):
a name is unknown when it is not a column and no event in the range has that key.

The check costs nothing for a query that names columns only. For a key it is one
``LIMIT 1`` query over the range, which stops at the first event that has it; a key no
event has is looked for in every event (the query itself reads them all for it too), and
the guess reads the range's field names as ``/api/v1/fields`` does. Answers are kept a
few seconds, so the search, histogram and fields of one page look once.
"""

from __future__ import annotations

import difflib
import threading
import time
from typing import TYPE_CHECKING

from ..event import FIELD_TYPES
from ..store.columns import ident
from . import kql, plan
from .fields import resolve

if TYPE_CHECKING:
    from .engine import Engine

KEEP_SECONDS = 10.0  # how long an answer about a name is reused (for about the same range)
KEEP_NAMES = 256


def named_fields(node: kql.Node | None) -> list[str]:
    """The field names a query names, in order, each once (bare words name none)."""
    out: dict[str, None] = {}
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, (kql.And, kql.Or)):
            stack.extend(reversed(n.children))
        elif isinstance(n, kql.Not):
            stack.append(n.child)
        elif isinstance(n, kql.Group):
            out.setdefault(n.field)
            stack.append(n.inner)
        elif isinstance(n, (kql.Match, kql.Exists, kql.Range)) and n.field is not None:
            out.setdefault(n.field)
    return list(out)


def suggest(name: str, known: list[str]) -> str | None:
    """The known field most like ``name``: compared whole and by its dotted tails, so
    ``status`` finds ``http.response.status_code`` and ``upstream`` ``labels.upstream``.

    A name whose last part (three or more characters) begins a field's last part (``status`` of
    ``status_code``) is taken as its abbreviation first: by letters alone ``labels.state``
    (which every mesh's state events have) is nearer to ``status`` than ``status_code``."""
    aliases: dict[str, str] = {}
    for full in known:
        parts = full.split(".")
        for i in range(len(parts)):
            aliases.setdefault(".".join(parts[i:]), full)
    last = name.split(".")[-1]
    if len(last) >= 3:
        begun = sorted((full for full in known if full != name
                        and full.split(".")[-1].startswith(last)), key=len)
        if begun:
            return begun[0]
    for tail in (name, name.split(".")[-1]):
        best = difflib.get_close_matches(tail, list(aliases), n=1, cutoff=0.6)
        if best and aliases[best[0]] != name:
            return aliases[best[0]]
    return None


def message(name: str, guess: str | None) -> str:
    head = f"field {name} is unknown: no event in the range has it"
    if guess is not None:
        return f"{head}; did you mean {guess}?"
    return f"{head} (/api/v1/fields lists the fields there are)"


class FieldCheck:
    """Warnings about the fields of a query, for one engine (answers kept a few seconds)."""

    def __init__(self, engine: Engine, clock=time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self._kept: dict[tuple[str, int, int], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def warnings(self, node: kql.Node | None, start: int, end: int, *, also: tuple[str | None, ...] = ()) -> list[str]:
        """What to warn about ``node``'s fields (and ``also``: a top's field, a histogram's by)
        over [start, end]; [] for a range without events."""
        names = [n for n in dict.fromkeys([*named_fields(node), *also]) if n and n not in FIELD_TYPES]
        if not names:
            return []
        unknown = [n for n in names if not self._present(n, start, end)]
        if not unknown:
            return []
        known = [f["name"] for f in self.engine.fields(start, end)]
        return [message(n, suggest(n, known)) for n in unknown]

    def _present(self, name: str, start: int, end: int) -> bool:
        try:
            f = resolve(name)
        except ValueError:
            return True  # refused elsewhere with its own message
        if f.path is None:
            return True
        key = (name, start // 10_000, end // 10_000)
        now = self.clock()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        snap = self.engine.refresh(max_age=0.05)
        src = plan.source(snap, start, end)
        if src is None or src.sql is None:
            present = True  # no event in the range: nothing to tell
        else:
            _, rows = self.engine.db.run(
                f"SELECT 1 FROM ({src.sql}) WHERE json_extract({ident(f.column)}, ?) IS NOT NULL LIMIT 1",
                [f.path])
            present = bool(rows)
        with self._lock:
            if len(self._kept) >= KEEP_NAMES:
                self._kept.clear()
            self._kept[key] = (now + KEEP_SECONDS, present)
        return present
