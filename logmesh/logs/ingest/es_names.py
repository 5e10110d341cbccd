"""Elasticsearch's rules for an index name, and its words for a name that breaks one (sans-IO).

``PUT /../_doc/x`` stored an event under the index ``..``, which Elasticsearch refuses: a
client that works against logmesh must not break on the real server. The rules and their
order are those of Elasticsearch 8's ``MetadataCreateIndexService.validateIndexOrAliasName``
and ``validateIndexName``; a refused name is answered 400 ``invalid_index_name_exception``
(the single-document API: the request; a bulk body: the item) and counted as ``bad_index``.
"""

from __future__ import annotations

MAX_INDEX_NAME_BYTES = 255
_FORBIDDEN = frozenset('\\/*?"<>| ,')
# as Elasticsearch prints its set of forbidden characters in the reason
_FORBIDDEN_TEXT = '[ , ", *, \\, <, |, ,, >, /, ?]'


def index_problem(name: str) -> str | None:
    """Why Elasticsearch refuses ``name`` as an index name, in its words; None: it is fine."""
    if not name:
        return "must not be empty"
    if not _FORBIDDEN.isdisjoint(name):
        return f"must not contain the following characters {_FORBIDDEN_TEXT}"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_INDEX_NAME_BYTES:
        return f"index name is too long, ({size} > {MAX_INDEX_NAME_BYTES})"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name.lower() != name:
        return "must be lowercase"
    return None


def invalid_index_reason(name: str) -> str | None:
    """Elasticsearch's ``reason`` for refusing ``name`` (None: it is fine)."""
    why = index_problem(name)
    return None if why is None else f"Invalid index name [{name}], {why}"
