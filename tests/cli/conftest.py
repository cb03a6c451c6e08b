"""Running ``agent-kit``: in process (fast; the same ``main()`` as the console script) or as the
real console script in a subprocess (end to end), on the fixture app's graph (``--graph
tests.fixture_app.served:graph``; the reference app's CLI tests in tests/app override ``graph_option``
to use the project's langgraph.json)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "agent-kit"
FIXTURE_GRAPH = "tests.fixture_app.served:graph"
GRAPH = ["--graph", FIXTURE_GRAPH]
"""What every ``cli`` and ``script`` run is given first (a later ``--graph`` wins)."""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def one_error_line(self) -> str:
        """The single line a refused command prints on stderr (and never a traceback)."""
        assert "Traceback" not in self.stderr, self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), lines[0]
        return lines[0]


CLI = Callable[..., Run]
_built_for: dict[str, Path] = {}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))  # main() sets it; monkeypatch restores it
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    monkeypatch.delenv("AGENT_KIT_MODEL", raising=False)
    monkeypatch.chdir(ROOT)  # langgraph.json is found in the current folder
    return tmp_path


@pytest.fixture
def graph_option() -> list[str]:
    """The options naming the graph each run loads: the fixture app's (``[]``: langgraph.json's)."""
    return GRAPH


def forget_graph_module(graph_option: list[str]) -> None:
    """Forget the graph module the runs load, so the next run imports it afresh (it builds its
    graph on the home it first sees, as a real invocation does)."""
    from agent_kit._loader import graph_ref

    where = graph_ref(graph_option[-1] if graph_option else None, ROOT).rsplit(":", 1)[0]
    name = ".".join(Path(where).with_suffix("").parts) if where.endswith(".py") else where
    sys.modules.pop(name, None)


@pytest.fixture
def forget_graph(graph_option: list[str]) -> Callable[[], None]:
    """Called before the first run on a new home (tests/app adds the reference module's own cache)."""
    return lambda: forget_graph_module(graph_option)


@pytest.fixture
def cli(home: Path, graph_option: list[str], forget_graph: Callable[[], None]) -> CLI:
    """``cli("approve", "t1", "--as", "lee")``: run ``agent-kit --home <tmp_path> --graph <fixture app>
    ...`` in process (``cli(..., graph=False)``: without ``--graph``, as langgraph.json decides)."""
    from agent_kit.cli import main

    def run(*args: str, graph: bool = True) -> Run:
        # The graph module builds `graph` once per process on the home it first sees (as a real
        # invocation does); a test has a home of its own, so build it afresh for each test.
        if _built_for.get("home") != home:
            forget_graph()
        _built_for["home"] = home
        out, err = io.StringIO(), io.StringIO()
        code: Any = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(["--home", str(home), *(graph_option if graph else []), *args])
            except SystemExit as exc:
                code = exc.code
        return Run(code if isinstance(code, int) else (0 if code is None else 1), out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def script(home: Path, graph_option: list[str]) -> CLI:
    """Run the real console script in a subprocess, cwd = the project folder, on the same graph as ``cli``."""

    def run(*args: str, with_home: bool = True, extra_home: Path | None = None) -> Run:
        env = {k: v for k, v in os.environ.items() if k not in ("AGENT_KIT_DB_URL", "AGENT_KIT_MODEL")}
        env.pop("AGENT_KIT_HOME", None)
        if extra_home is not None:
            env["AGENT_KIT_HOME"] = str(extra_home)  # the environment variable works as --home does
        argv = [str(SCRIPT), *(["--home", str(home)] if with_home else []), *graph_option, *args]
        p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


def verified(cli: CLI, thread: str) -> None:
    """Start ``thread`` with Jane verified."""
    r = cli("chat", "--thread", thread, "--message", "Hi, I'm Jane Doe, zip 94107", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "replied"


def interrupt_of(cli: CLI, thread: str, kind: str | None = None) -> str:
    """The one pending interrupt id of ``thread`` (of ``kind``), as an operator reads it from pending."""
    r = cli("pending", "--thread", thread, "--ids", *(["--kind", kind] if kind else []))
    assert r.code == 0, r.stderr
    (iid,) = r.stdout.split()
    return iid
