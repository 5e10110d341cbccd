"""The duckdb module, imported at its first use: ``from ..store.duck import duckdb`` where a
module would ``import duckdb``.

Importing duckdb costs ~25 MB of resident memory (its shared library's pages), as much as
the rest of a logs worker, and an idle worker never uses it: a sibling opens DuckDB at its
first question or when it compacts or the health monitor finds events to read
(issue 18: an idle worker under 60 MB; bench/idle_memory.py measures it). The proxy loads
the real module at the first attribute read (``duckdb.connect``, ``except duckdb.Error``
when an exception is matched) and from then on is the real module's namespace, so the
cost after that is one dictionary lookup, as for any module attribute.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any

_loading = threading.Lock()


class _Lazy(ModuleType):
    def __getattr__(self, name: str) -> Any:  # only called for names not copied in yet
        if name.startswith("__") and name.endswith("__") and not loaded():
            raise AttributeError(name)  # introspection (copy, pickle, doctest): no import
        with _loading:
            real = importlib.import_module("duckdb")
            self.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
        return getattr(real, name)


duckdb: Any = _Lazy("duckdb")


def loaded() -> bool:
    """Has anything in this process imported duckdb yet (the tests' and the benchmark's check)?"""
    return "duckdb" in sys.modules
