"""The floors of DESIGN.md, read from the code: every import points down, and no modules import
each other in a circle.

shared/ (floor 1) imports nothing above it; each service (floor 2) imports shared/ only;
services/ (floor 3) puts them together, its runtime below its tools; bench/ sits on top. Inside
shared/, the subpackages have floors of their own, and FastAPI is imported only by shared/web
and the services' doors: ``api.py``, ``app.py`` and the standards a service speaks over HTTP
(intake's ``open311/``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

SERVICES = ("intake", "dispatch", "handling", "closure", "assessment")
TOP_LEVEL = ("shared", *SERVICES, "services", "bench")
# Floors of the top-level packages, and of the subpackages inside shared/ and services/.
FLOORS = {"shared": 1, **dict.fromkeys(SERVICES, 2), "services": 3, "bench": 4}
SHARED_FLOORS = {"core": 1, "db": 2, "events": 2, "city": 3, "integration": 3, "messaging": 3, "service": 4, "web": 5}
SERVICES_FLOORS = {"runtime": 1, "tools": 2, "__main__": 3}
WEB_FRAMEWORKS = ("fastapi", "starlette")


@dataclass(frozen=True)
class Import:
    """One import statement's target, as a dotted module name."""

    source: str
    target: str
    line: int
    only_for_types: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> list[Path]:
    return sorted(p for top in TOP_LEVEL for p in (REPO / top).rglob("*.py") if "migrations" not in p.parts)


def imports_of(path: Path, modules: set[str]) -> Iterator[Import]:
    """Every import in ``path``; ``from a import b`` names module ``a.b`` when that is a module."""
    source = module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, node.lineno, id(node) in typing_only)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                target = candidate if candidate in modules else node.module
                yield Import(source, target, node.lineno, id(node) in typing_only)


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    files = project_files()
    modules = {module_name(path) for path in files}
    return [imp for path in files for imp in imports_of(path, modules)]


def floor(module: str) -> tuple[int, ...]:
    """A module's place in the house: its top-level floor, then its floor inside shared/ or services/."""
    top, _, rest = module.partition(".")
    inner = rest.partition(".")[0]
    if top == "shared":
        return (FLOORS[top], SHARED_FLOORS.get(inner, 0))
    if top == "services":
        return (FLOORS[top], SERVICES_FLOORS.get(inner, 0))
    return (FLOORS[top],)


def is_project(module: str) -> bool:
    return module.partition(".")[0] in TOP_LEVEL


def test_the_walk_sees_the_whole_house(graph: list[Import]) -> None:
    sources = {imp.source for imp in graph}
    assert {"shared.core.clock", "intake.handlers", "services.runtime.runtime", "bench.load"} <= sources
    assert any(imp.target == "shared.messaging.store" for imp in graph)


def test_every_import_points_down(graph: list[Import]) -> None:
    upward = []
    for imp in graph:
        if not is_project(imp.target):
            continue
        source_top, target_top = imp.source.partition(".")[0], imp.target.partition(".")[0]
        if source_top in SERVICES and target_top in SERVICES and source_top != target_top:
            upward.append(f"{imp.source}:{imp.line} imports another service: {imp.target}")
            continue
        same_room = imp.source.split(".")[:2] == imp.target.split(".")[:2]
        if not same_room and floor(imp.target) > floor(imp.source):
            upward.append(f"{imp.source}:{imp.line} imports {imp.target}, above it")
    assert upward == []


def test_no_modules_import_each_other_in_a_circle(graph: list[Import]) -> None:
    edges: dict[str, set[str]] = {}
    for imp in graph:
        if is_project(imp.target) and not imp.only_for_types and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    circles = find_circles(edges)
    assert circles == []


def find_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return circles


def test_the_circle_finder_finds_a_circle() -> None:
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_circles({"a": {"b"}, "b": set()}) == []


def test_the_web_framework_stays_at_the_edges(graph: list[Import]) -> None:
    """Domains, handlers, queries and the rest of shared/ run without FastAPI."""
    doors = {f"{service}.{module}" for service in SERVICES for module in ("api", "app", "open311")}
    misplaced = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in graph
        if imp.target.partition(".")[0] in WEB_FRAMEWORKS
        and not imp.only_for_types
        and imp.source.partition(".")[0] in ("shared", *SERVICES)
        and not imp.source.startswith("shared.web")
        and ".".join(imp.source.split(".")[:2]) not in doors
    ]
    assert misplaced == []
