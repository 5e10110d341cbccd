"""Field names -> where their values live: the one place a name becomes SQL.

A name of ``event.FIELD_TYPES`` is a column; ``params.a.b`` is a path into the
``params`` JSON; ``labels.k``, and any other name, is one key of ``labels`` (a
label's key may hold dots). The KQL compiler (kql.py) and the engine's ``top``
and histogram ``by`` (:func:`field_expr`) both resolve names here, so a field
means the same in a query as in a facet.

Column names come only from FIELD_TYPES (anything else is refused before it is
written as SQL) and JSON paths are ``?`` parameters: user text never becomes
SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..event import FIELD_TYPES
from ..store.columns import ident
from .errors import QueryError

MAX_FIELD_NAME = 256  # a longer name in ?field= or ?by= is refused


def _column(name: str) -> str:
    if name not in FIELD_TYPES:  # the whitelist: nothing else is ever written as SQL
        raise AssertionError(f"not a column: {name!r}")
    return ident(name)


def _json_path(keys: list[str]) -> str:
    return "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)


@dataclass(frozen=True)
class Field:
    kind: str  # a FIELD_TYPES type, or "json" for a key inside params/labels
    column: str
    path: str | None = None  # the JSON path inside ``column``

    def sql(self, param: Callable[[Any], str]) -> str:
        """The SQL expression; ``param(value)`` writes the ``?`` for the JSON path and keeps
        the value, so parameters stay in the order their placeholders are written."""
        if self.path is None:
            return _column(self.column)
        return f"json_extract_string({_column(self.column)}, {param(self.path)})"

    def text_sql(self, param: Callable[[Any], str]) -> str:
        """The value as text (for LIKE and ILIKE)."""
        if self.kind in ("keyword", "text", "json"):
            return self.sql(param)
        return f"CAST({self.sql(param)} AS VARCHAR)"


def resolve(name: str) -> Field:
    """A field name -> where it lives. Raises ValueError for names that can't be a field."""
    if name in FIELD_TYPES:
        return Field(FIELD_TYPES[name], name)
    column, _, rest = name.partition(".")
    if column == "params" and rest:
        keys = rest.split(".")
        if "" in keys:
            raise ValueError(f'empty key in "{name}": write params.a.b')
        return Field("json", "params", _json_path(keys))
    if column == "labels" and rest:
        return Field("json", "labels", _json_path([rest]))
    if name in ("params.", "labels."):
        raise ValueError(f'expected a key after "{name}"')
    return Field("json", "labels", _json_path([name]))


def field_expr(name: str) -> tuple[str, list[Any], str]:
    """A field name -> (SQL expression, its parameters, type) for top and histogram ``by``;
    a key inside params or labels is read as text, so its type is keyword."""
    if not name or len(name) > MAX_FIELD_NAME:
        raise QueryError("field: give a field name, e.g. service.name or url.path")
    try:
        f = resolve(name)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if f.kind == "object":
        raise QueryError(f'"{name}" is an object: pick one of its keys, e.g. {name}.id')
    return (f.sql(lambda _: "?"), [] if f.path is None else [f.path],
            "keyword" if f.kind == "json" else f.kind)
