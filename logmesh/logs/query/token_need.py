"""The index keys a KQL query needs in a block (a :class:`~logmesh.logs.store.tokens.Need`).

What a token is, and the block index's format, belong to the store
(store/tokens.py); which words a query requires in ``message`` is the query
language's, so it is here, and the store never sees a KQL tree.
"""

from __future__ import annotations

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
