"""The trigrams a KQL query needs in a block (a :class:`~logmesh.logs.store.trigrams.Need`).

The block index's format, and what a word's trigrams are, belong to the store
(store/trigrams.py); which words a query requires in ``message`` is the query
language's, so it is here, and the store never sees a KQL tree.
"""

from __future__ import annotations

from ..store.trigrams import Need, word_mask
from . import kql


def _literal_parts(value: object) -> list[str]:
    if isinstance(value, kql.Literal):
        return [value.text]
    if isinstance(value, kql.Pattern):
        return [p for p in value.parts if isinstance(p, str)]
    return []


def need(node: kql.Node, field: str | None = None) -> Need | None:
    """The trigram constraint of a KQL tree on ``message`` (None: every block may match)."""
    if isinstance(node, kql.Match):
        name = node.field if node.field is not None else field
        if name not in (None, "message"):
            return None
        mask = word_mask(_literal_parts(node.value))
        return Need("mask", mask) if mask else None
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
