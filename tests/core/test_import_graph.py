"""The arrows inside agent_kit run one way: no module imports, at load time or inside a function,
a module that imports it back (imports for type checking only are not followed)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "agent_kit"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for a in node.names:
                found.add(f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module)

    Visitor().visit(ast.parse(path.read_text()))
    # The package itself only re-exports; an edge to it is an edge to what it re-exports.
    return {m for m in found if m in mods and m not in (name, "agent_kit")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_agent_kit() -> None:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items() if name != "agent_kit"}
    assert len(graph) > 40  # the walk found the package
    assert "agent_kit.store" in graph["agent_kit.runtime"] or "agent_kit.graph" in graph["agent_kit.runtime"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_library_never_imports_the_reference_app() -> None:
    mods = _modules()
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for t in targets:
                assert t.split(".")[0] not in ("graphs", "tools", "tests"), f"{name} imports {t}"


ARROWS = [
    ("agent_kit.policy", "agent_kit.registry"),
    ("agent_kit.kernel",),
    ("agent_kit._nodes", "agent_kit._gates"),
    ("agent_kit.graph",),
    ("agent_kit.runtime",),
    ("agent_kit.cli",),
]
"""The core's layers, lowest first: each imports only from layers below it."""


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_arrows_run_policy_and_registry_to_kernel_to_nodes_to_graph_to_runtime_to_cli() -> None:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items() if name != "agent_kit"}
    for level, layer in enumerate(ARROWS):
        above = {m for later in ARROWS[level + 1:] for m in later}
        for module in layer:
            assert module in graph, module
            assert not _reach(graph, module) & above, f"{module} reaches up to {sorted(_reach(graph, module) & above)}"
    # and each layer does build on the one below it
    assert {"agent_kit.policy", "agent_kit.registry"} <= graph["agent_kit.kernel"]
    assert "agent_kit.kernel" in graph["agent_kit._nodes"]  # (the gates take a Kernel too: a type-only import)
    assert {"agent_kit._nodes", "agent_kit._gates", "agent_kit.kernel"} <= graph["agent_kit.graph"]
    assert "agent_kit.graph" in graph["agent_kit.runtime"]
    assert "agent_kit.runtime" in _reach(graph, "agent_kit.cli")
