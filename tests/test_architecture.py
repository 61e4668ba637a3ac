"""The code's seams: no import cycles, services below the façade and the edges."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "zhiku"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module-level imports between zhiku's modules (imports inside functions and
    under ``if TYPE_CHECKING`` are deliberate late bindings and left out)."""
    mods = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        found: set[str] = set()
        for node in ast.parse(path.read_text("utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                cands = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                found.update(c for c in cands if c in mods)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in mods)
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                out.append([*stack[stack.index(v) :], v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return out


def test_the_graph_is_read() -> None:
    g = import_graph()
    assert "zhiku.storage.jobs" in g["zhiku.server.jobs"]
    assert "zhiku.services.retrieval" in g["zhiku.engine"]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_services_sit_below_the_facade_and_the_edges() -> None:
    g = import_graph()

    def reaches(start: str, target_prefix: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m.startswith(target_prefix):
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(g.get(m, ()))
        return False

    services = [m for m in g if m.startswith("zhiku.services.")]
    assert len(services) >= 8
    for m in services:
        for edge in ("zhiku.engine", "zhiku.server", "zhiku.cli"):
            assert not reaches(m, edge), (m, edge)
