"""Where stored events can also go. Each forwarding sink is one directory of the same shape.

``SINKS`` names them; :func:`load_sink` resolves a name once, at startup, so a
missing optional dependency or a typo fails before any event is read.
"""

from __future__ import annotations

import importlib

SINKS = {
    "elasticsearch": "logmesh.logs.sinks.elasticsearch.sink:ElasticsearchSink",
}


def load_sink(name: str) -> type:
    try:
        target = SINKS[name]
    except KeyError:
        raise ValueError(f"unknown sink {name!r}; known: {', '.join(sorted(SINKS))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
