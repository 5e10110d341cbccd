"""The package's layout, checked from the source (ast; nothing is imported).

docs/architecture.md says which room may import which. Three rules are
checked here: no import cycle between modules of ``logmesh/``, nothing under
``logmesh/logs/`` imports ``logmesh.logs.server``, the one module that wires
the log service's parts together, and nothing under ``logmesh/logs/store/``
imports the read path or the servers above it (``logs.query``, ``logs.http``,
``logs.server``): the store owns the data directory and its formats.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "logmesh"
SERVER = "logmesh.logs.server"
STORE = "logmesh.logs.store"
ABOVE_THE_STORE = ("logmesh.logs.query", "logmesh.logs.http", SERVER)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The logmesh modules ``name`` imports, at any depth of its code (also under
    ``if TYPE_CHECKING:`` and inside functions: a cycle there is a cycle of the design)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # "from a.b import c": c may be a module (a.b.c) or a name in a.b.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "logmesh":
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if origin.split(".")[0] != "logmesh":
                continue
            for alias in node.names:
                add(f"{origin}.{alias.name}")
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(edges[node]):
            if colour[nxt] == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour[nxt] == WHITE and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(edges):
        if colour[node] == WHITE and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_walk_sees_the_package():
    edges = graph()
    assert "logmesh.protocol" in edges and SERVER in edges
    assert "logmesh.logs.store.segment" in edges[SERVER]  # a relative import, resolved
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_under_logs_imports_the_server():
    offenders = sorted(name for name, deps in graph().items()
                       if name.startswith("logmesh.logs.") and name != SERVER and SERVER in deps)
    assert not offenders, (f"{', '.join(offenders)} import {SERVER}; hand them what they need "
                           "from logs/server.py instead (docs/architecture.md)")


def test_the_store_imports_nothing_above_it():
    edges = graph()
    assert "logmesh.logs.store.columns" in edges["logmesh.logs.store.compact"]  # the walk sees the store
    assert within("logmesh.logs.query.kql", "logmesh.logs.query") and not within("logmesh.logs.queryx", "logmesh.logs.query")
    offenders = sorted(f"{name} -> {dep}" for name, deps in edges.items() if within(name, STORE)
                       for dep in deps if any(within(dep, up) for up in ABOVE_THE_STORE))
    assert not offenders, (f"{', '.join(offenders)}: logs/store/ may not import logs/query/, "
                           "logs/http/ or logs/server.py; move what it needs into the store "
                           "(docs/architecture.md)")
