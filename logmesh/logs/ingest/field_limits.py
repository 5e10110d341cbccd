"""How many labels an event keeps as fields, and how long their names may be.

Nothing bounded the distinct field names a sender could make (found from outside:
200,000 names took a worker to 345 MB and ``/api/v1/fields`` to seconds). Log
systems bound them per line or per index: Elasticsearch's
``index.mapping.total_fields.limit`` (1000), VictoriaLogs' ``-insert.maxFieldsPerLine``
(1000). An acknowledged event is never refused for its fields here: the labels past
:data:`MAX_FIELDS`, and those whose name is longer than :data:`MAX_FIELD_NAME` (no query
can name one: query/fields.py refuses longer names), are *folded*: kept, in the order
they came, as the JSON text of one object in the label ``logmesh.folded``, so the stored
line still holds every byte of them and ``labels.logmesh.folded:*name*`` finds them.
Only the top level counts: an object value is one field, as ``/api/v1/fields`` lists it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_FIELDS = 1000  # labels an event keeps as fields, ``logmesh.folded`` included
MAX_FIELD_NAME = 256  # characters of a label's name; query/fields.py asks for no longer one
FOLDED_LABEL = "logmesh.folded"


class Folded:
    """What was folded in this process, for /metrics (logs/server.py publishes it)."""

    events = 0
    fields = 0


def over(labels: dict[str, Any]) -> bool:
    """Whether ``labels`` break a limit: one ``len`` for most events, the names' lengths (C,
    ``map``) for the rest."""
    return len(labels) > MAX_FIELDS or (bool(labels) and max(map(len, labels)) > MAX_FIELD_NAME)


def fold(labels: dict[str, Any]) -> dict[str, Any]:
    """``labels`` as stored: itself when within the limits, else the first ones that fit and
    the others folded into ``logmesh.folded`` (a label of that name sent by the sender is
    folded too, so nothing is overwritten)."""
    if not over(labels):
        return labels
    kept: dict[str, Any] = {}
    folded: dict[str, Any] = {}
    room = MAX_FIELDS - 1
    for name, value in labels.items():
        if len(kept) < room and len(name) <= MAX_FIELD_NAME and name != FOLDED_LABEL:
            kept[name] = value
        else:
            folded[name] = value
    kept[FOLDED_LABEL] = _json(folded)
    Folded.events += 1
    Folded.fields += len(folded)
    return kept


def _json(value: dict[str, Any]) -> str:
    """The folded labels' JSON text; an integer beyond 64 bits (orjson writes none) by the
    standard library, as common.json_text does."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
