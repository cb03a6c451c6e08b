"""The library's tests prove it on their own: nothing in tests/core, tests/storage,
tests/reliability, tests/scale, tests/cli or tests/web, nor anything they import from tests/
(followed transitively, imports inside functions, worker scripts and code kept in strings
included), nor the root conftest pytest loads for them, imports the reference app (``graphs`` or
``tools``). They run on tests/fixture_app, so deleting graphs/ and tools/ leaves them green."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY_TESTS = ("core", "storage", "reliability", "scale", "cli", "web")
REFERENCE_APP = ("graphs", "tools")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module ``tree`` imports, anywhere in it (relative imports resolved against ``module``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(p for p in [*parts, base] if p)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # may name submodules
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "import " in node.value:
            try:
                inner = ast.parse(node.value)
            except SyntaxError:
                continue
            yield from _imports(inner, module, is_package)  # a script run with python -c or as a file


def _file_of(module: str, root: Path) -> Path | None:
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_of(path: Path, root: Path) -> tuple[str, bool]:
    rel = path.relative_to(root).with_suffix("")
    is_package = rel.name == "__init__"
    parts = rel.parts[:-1] if is_package else rel.parts
    return ".".join(parts), is_package


def reference_imports(root: Path, start: list[Path]) -> list[str]:
    """``"a -> b -> graphs.x"`` for every chain by which a file of ``start`` reaches the reference app."""
    chains: dict[Path, list[str]] = {p: [_module_of(p, root)[0]] for p in start}
    queue, found = list(start), []
    while queue:
        path = queue.pop()
        module, is_package = _module_of(path, root)
        for name in _imports(ast.parse(path.read_text(), str(path)), module, is_package):
            top = name.split(".")[0]
            if top in REFERENCE_APP:
                found.append(" -> ".join([*chains[path], name]))
            elif top == "tests":
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                    target = _file_of(".".join(parts[:i]), root)
                    if target is not None and target not in chains:
                        chains[target] = [*chains[path], ".".join(parts[:i])]
                        queue.append(target)
    return sorted(set(found))


def _library_test_files(root: Path) -> list[Path]:
    files = [p for d in LIBRARY_TESTS for p in sorted((root / "tests" / d).rglob("*.py"))]
    return [*files, root / "tests" / "conftest.py", root / "tests" / "__init__.py"]


def test_no_library_test_reaches_the_reference_app() -> None:
    start = _library_test_files(ROOT)
    assert len(start) > 40 and all(p.is_file() for p in start)
    assert reference_imports(ROOT, start) == []


def test_the_check_finds_an_import_hidden_in_a_function_a_helper_or_a_worker_script(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    for d in ("core", "helpers", "helpers/deep"):
        (tests / d).mkdir(parents=True)
        (tests / d / "__init__.py").write_text("")
    (tests / "__init__.py").write_text("")
    (tests / "helpers" / "deep" / "shop.py").write_text("def f():\n    from tools.shop import Shop\n")
    (tests / "helpers" / "relay.py").write_text("from .deep import shop\n")
    (tests / "core" / "test_a.py").write_text("def test():\n    import tests.helpers.relay\n")
    (tests / "core" / "test_b.py").write_text('SCRIPT = """\nimport os\nfrom graphs.customer_service import graph\n"""\n')
    (tests / "core" / "test_c.py").write_text("from tests.helpers import deep\nimport json\n")
    found = reference_imports(tmp_path, [tests / "core" / n for n in ("test_a.py", "test_b.py", "test_c.py")])
    assert found == ["tests.core.test_a -> tests.helpers.relay -> tests.helpers.deep.shop -> tools.shop",
                     "tests.core.test_a -> tests.helpers.relay -> tests.helpers.deep.shop -> tools.shop.Shop",
                     "tests.core.test_b -> graphs.customer_service",
                     "tests.core.test_b -> graphs.customer_service.graph"]
