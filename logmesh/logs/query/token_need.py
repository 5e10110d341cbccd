"""The index keys a KQL query needs in a block (a :class:`~logmesh.logs.store.tokens.Need`).

What a token is, and the block index's format, belong to the store
(store/tokens.py); which words a query requires in ``message`` is the query
language's, so it is here, and the store never sees a KQL tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..store import tokens
from ..store.tokens import Need
from . import kql

if TYPE_CHECKING:
    import pyarrow as pa


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


def word_check(node: kql.Node, field: str | None = None) -> Callable[[pa.Array], pa.Array] | None:
    """``message`` column -> per row, does it match ``node`` (null: no), when ``node`` is words
    and phrases of ``message`` alone under and/or; None for any other query (DuckDB answers
    it). The same RE2 regex as kql.py's SQL (tokens.phrase_regex; pyarrow's RE2 runs it as
    DuckDB's does), without the ILIKE before it: the regex alone decides (its words folded in
    ASCII only, as ILIKE's are in any case). The rare path (rare.py) checks its candidate rows
    with this instead of a DuckDB statement."""
    if isinstance(node, kql.Match):
        name = node.field if node.field is not None else field
        if name not in (None, "message") or not isinstance(node.value, kql.Literal):
            return None
        words = tokens.tokens(node.value.text)
        if not words:
            return None  # no token: a substring (ILIKE), left to DuckDB
        regex = tokens.phrase_regex(words)

        def has(message: pa.Array) -> pa.Array:
            import pyarrow.compute as pc
            return pc.fill_null(pc.match_substring_regex(message, regex), False)

        return has
    if isinstance(node, kql.Group):
        return word_check(node.inner, node.field)
    if isinstance(node, kql.And | kql.Or):
        kids = [word_check(c, field) for c in node.children]
        if any(k is None for k in kids):
            return None

        def every(message: pa.Array) -> pa.Array:
            import pyarrow.compute as pc
            join = pc.and_ if isinstance(node, kql.And) else pc.or_
            out = kids[0](message)  # type: ignore[misc]
            for k in kids[1:]:
                out = join(out, k(message))  # type: ignore[misc]
            return out

        return every
    return None
