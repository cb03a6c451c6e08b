"""A library that installs as one: ``pip install .`` puts only ``agent_kit`` into site-packages
(the reference app runs from the repository), builds without warnings, and its optional parts
(Postgres, OpenAI) are extras that say how to install them when missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from agent_kit.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as pip builds it, from a copy (so nothing is written into the work tree),
    with every warning turned into an error."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("agent_kit", "graphs", "tools", "tests", "bench"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    build = ("import sys\nfrom setuptools import build_meta\n"
             "print(build_meta.build_wheel(sys.argv[1]))\n")
    done = subprocess.run([sys.executable, "-W", "error", "-c", build, str(out)], cwd=src, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr  # e.g. SetuptoolsDeprecationWarning
    return out / done.stdout.split()[-1]


def test_the_wheel_holds_only_agent_kit(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"agent_kit", "agent_kit-0.1.0.dist-info"}
    assert "agent_kit/cli.py" in names
    # the web inbox's templates and vendored static files travel with it
    assert {"agent_kit/web/templates/item.html", "agent_kit/web/static/htmx-2.0.10.min.js",
            "agent_kit/web/static/app.css"} <= set(names)


def test_pip_install_into_an_empty_folder_installs_only_agent_kit(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in target.iterdir()} == {"agent_kit", "agent_kit-0.1.0.dist-info", "bin"}
    assert {p.name for p in (target / "bin").iterdir()} == {"agent-kit"}


def test_the_core_needs_no_model_client_and_no_postgres_driver(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta = Parser().parsestr(zf.read("agent_kit-0.1.0.dist-info/METADATA").decode())
    requires = meta.get_all("Requires-Dist") or []
    core = {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip().lower() for r in requires if "extra ==" not in r}
    assert not core & {"langchain-openai", "openai", "psycopg", "psycopg-pool", "langgraph-checkpoint-postgres"}
    by_extra = {r.split("extra ==")[1].strip().strip("'\""): r for r in requires if "extra ==" in r}
    assert {"openai", "postgres", "dev"} <= set(meta.get_all("Provides-Extra") or [])
    assert any(r.startswith("langchain-openai") for r in requires if "extra == \"openai\"" in r), by_extra
    assert any(r.startswith("psycopg") for r in requires if "extra == \"postgres\"" in r), by_extra
    assert meta["License-Expression"] == "MIT"


def test_every_core_dependency_is_imported_by_the_library() -> None:
    """No unused dependency: each one is imported somewhere in agent_kit/."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    source = "\n".join(p.read_text() for p in (ROOT / "agent_kit").rglob("*.py"))
    module_of = {"langgraph-checkpoint": "langgraph.checkpoint", "langgraph-checkpoint-sqlite": "langgraph.checkpoint.sqlite",
                 "langchain-core": "langchain_core", "pyyaml": "yaml", "sqlite-utils": "sqlite_utils"}
    for dep in deps:
        name = dep.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        module = module_of.get(name, name.replace("-", "_"))
        assert f"import {module}" in source or f"from {module}" in source, f"{name} is never imported"


def test_a_postgres_store_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_kit.store import Store

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'agent_kit\[postgres\]'") as caught:
        Store.open(db_url="postgresql://postgres@127.0.0.1:5432/postgres")
    assert caught.value.extra == "postgres" and isinstance(caught.value, ImportError)


def test_the_sqlite_default_never_imports_the_postgres_driver(tmp_path: Path) -> None:
    probe = ("import sys\nsys.modules['psycopg'] = None\n"
             "from agent_kit.store import Store\n"
             f"s = Store.open(home={str(tmp_path)!r})\ns.audit.verify()\ns.checkpointer()\ns.close()\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_an_openai_model_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphs.models import make_model

    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'agent_kit\[openai\]'"):
        make_model("openai:gpt-4o-mini")


def test_the_reference_app_is_not_importable_from_outside_the_repository(tmp_path: Path) -> None:
    """The installed library never shadows a user's own ``graphs`` or ``tools`` package."""
    done = subprocess.run([sys.executable, "-c", "import agent_kit, importlib.util as u; "
                           "print(u.find_spec('graphs'), u.find_spec('tools'))"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None"]


@pytest.mark.parametrize(("target", "spec"), [(".venv/.installed-core", '-e "."'),
                                              (".venv/.installed", '-e ".[dev,bench]"')],
                         ids=["demo-installs-the-library", "test-installs-dev-and-bench"])
def test_make_installs_from_the_projects_own_files(target: str, spec: str) -> None:
    """What `make demo` / `make test` would run on a fresh clone (a dry run: nothing is installed)."""
    done = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(spec) == 2  # with uv, and with the plain-pip fallback
    assert '"$uv" pip install' in done.stdout and "-m pip install" in done.stdout
