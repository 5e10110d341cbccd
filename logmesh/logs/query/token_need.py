"""The index keys a KQL query needs in a block (a :class:`~logmesh.logs.store.tokens.Need`).

What a token is, and the block index's format, belong to the store
(store/tokens.py); which words a query requires in ``message`` is the query
language's, so it is here, and the store never sees a KQL tree.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store import tokens
from ..store.tokens import Need
from . import kql


def _keys(value: object) -> list[str]:
    if isinstance(value, kql.Literal):
        return tokens.word_keys(tokens.tokens(value.text))
    if isinstance(value, kql.Pattern):
        return tokens.pattern_keys([tokens.STAR if p is kql.Wild.STAR else tokens.ONE
                                    if p is kql.Wild.ONE else p for p in value.parts])
    return []


def need(node: kql.Node, field: str | None = None) -> Need | None:
    """The keys a KQL tree requires in ``message`` (None: every block may match)."""
    if isinstance(node, kql.Match):
        name = node.field if node.field is not None else field
        if name not in (None, "message"):
            return None
        keys = _keys(node.value)
        return Need("keys", tuple(keys)) if keys else None
    if isinstance(node, kql.Group):
        return need(node.inner, node.field)
    if isinstance(node, kql.And):
        kids = tuple(n for n in (need(c, field) for c in node.children) if n is not None)
        return Need("and", children=kids) if kids else None
    if isinstance(node, kql.Or):
        kids = tuple(need(c, field) for c in node.children)
        if any(k is None for k in kids):
            return None
        return Need("or", children=kids)  # type: ignore[arg-type]
    return None  # not, ranges, exists, match-all: no constraint


def word_check(node: kql.Node, field: str | None = None) -> Callable[[str | None], bool] | None:
    """``message`` -> does it match ``node``, when ``node`` is words and phrases of ``message``
    alone under and/or (as the SQL of kql.py reads them: whole tokens, one after the other,
    tokens.tokens the reference); None for any other query (DuckDB answers it). The rare
    path (rare.py) checks its few candidate rows with this instead of a DuckDB statement."""
    if isinstance(node, kql.Match):
        name = node.field if node.field is not None else field
        if name not in (None, "message") or not isinstance(node.value, kql.Literal):
            return None
        words = tokens.tokens(node.value.text)
        if not words:
            return None  # no token: a substring (ILIKE), left to DuckDB
        return _phrase(words)
    if isinstance(node, kql.Group):
        return word_check(node.inner, node.field)
    if isinstance(node, kql.And | kql.Or):
        kids = [word_check(c, field) for c in node.children]
        if any(k is None for k in kids):
            return None
        every = all if isinstance(node, kql.And) else any
        return lambda msg: every(k(msg) for k in kids)  # type: ignore[misc]
    return None


def _phrase(words: list[str]) -> Callable[[str | None], bool]:
    n = len(words)

    def has(message: str | None) -> bool:
        if message is None:
            return False
        found = tokens.tokens(message)
        return any(found[i:i + n] == words for i in range(len(found) - n + 1))

    return has
