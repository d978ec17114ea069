"""No import cycles in the trace package, type-only imports (``if TYPE_CHECKING:``)
included: a cycle hidden behind TYPE_CHECKING is still two modules that cannot be read,
tested or moved one without the other."""

from __future__ import annotations

import ast
from pathlib import Path

import meshpath

PACKAGE = Path(meshpath.__file__).parent


def module_graph(sub: str) -> dict[str, set[str]]:
    """meshpath.<sub>.* -> the meshpath.<sub> modules it imports (any import statement)."""
    root = PACKAGE / sub
    mods = {f"meshpath.{sub}.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                targets = {a.name for a in node.names}
            else:
                continue
            graph[name] |= targets & mods.keys()
    return graph


def cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start, if there is one (depth-first)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_trace_modules_import_each_other_without_cycles() -> None:
    graph = module_graph("trace")
    assert "meshpath.trace.flowstate" in graph["meshpath.trace.classify"]  # the walk works
    cycles = [c for m in sorted(graph) if (c := cycle_from(m, graph)) is not None]
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycle_from("a", graph) == ["a", "b", "c", "a"]
    assert cycle_from("d", graph) is None
