"""hexa's modules import one another without cycles, counting imports made for types only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import hexa

PACKAGE = Path(hexa.__file__).parent


def _imported(node: ast.AST) -> Iterator[str]:
    """The `hexa.*` modules a module imports, anywhere in it (TYPE_CHECKING blocks too)."""
    for child in ast.walk(node):
        if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
            if child.module == "hexa":  # `from hexa import _app`
                yield from (f"hexa.{alias.name}" for alias in child.names)
            elif child.module.startswith("hexa."):
                yield child.module
        elif isinstance(child, ast.Import):
            yield from (a.name for a in child.names if a.name.startswith("hexa."))


def import_graph() -> dict[str, set[str]]:
    """`hexa._x` -> the `hexa._y` modules it imports (the package's `__init__` left out)."""
    modules = {
        f"hexa.{path.stem}": path for path in PACKAGE.glob("*.py") if path.stem != "__init__"
    }
    return {
        name: {m for m in _imported(ast.parse(path.read_text(encoding="utf-8"))) if m in modules}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as `[a, b, ..., a]`, or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for target in sorted(graph[node]):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return []


class TestImportGraph:
    def test_the_finder_sees_a_cycle_when_there_is_one(self) -> None:
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
        assert find_cycle(graph) == ["a", "b", "c", "a"]

    def test_the_graph_is_read_from_the_package(self) -> None:
        graph = import_graph()
        assert "hexa._beat" in graph["hexa._worker"]
        assert "hexa._definitions" in graph["hexa._beat"]

    def test_no_module_imports_itself_back_even_for_types(self) -> None:
        assert find_cycle(import_graph()) == []
