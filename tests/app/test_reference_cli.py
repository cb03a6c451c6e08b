"""The command line on the reference app, as the project's langgraph.json serves it: its checklist
and auth handler, the reference demo, and finding it through langgraph.json in the current folder.
(The command line's own behaviour is tested on the fixture app in tests/cli.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import CLI, ROOT, cli, forget_graph_module, home, script

__all__ = ["cli", "home", "script"]  # tests/cli's fixtures, on the reference graph here


@pytest.fixture
def graph_option() -> list[str]:
    """No ``--graph``: the graph langgraph.json names, the reference app's."""
    return []


@pytest.fixture
def forget_graph(graph_option: list[str]) -> Callable[[], None]:
    """Forget graphs.serve and the graph graphs.customer_service builds lazily on its first home."""

    def forget() -> None:
        forget_graph_module(graph_option)
        reference = sys.modules.get("graphs.customer_service")
        if reference is not None:
            reference._graph = None  # type: ignore[attr-defined]

    return forget


def test_checklist_passes_on_the_reference_app(cli: CLI) -> None:
    r = cli("checklist")
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("# Pre-deployment checklist")
    for question in ("What systems can the agent access?", "Which actions require human approval",
                     "Can the business audit and reverse each action?"):
        assert question in r.stdout
    assert "none: every question has an answer" in r.stdout
    report = cli("checklist", "--json").json()
    assert report["ok"] is True and report["gaps"] == [] and len(report["questions"]) == 7


def test_checklist_names_the_reference_apps_auth_handler(cli: CLI) -> None:
    report = cli("checklist", "--json").json()
    (approvals,) = [q for q in report["questions"] if q["id"] == "approvals"]
    assert any("graphs/auth.py:auth" in a and "deny by default" in a for a in approvals["answers"])


def test_demo_runs_offline_twice_in_a_row_on_a_fresh_demo_home(script: CLI, home: Path) -> None:
    first = script("demo")
    assert first.code == 0, first.stderr
    assert "Traceback" not in first.stderr
    demo_home = home / "demo"
    for shown in ("read_only", "recommend_only", "draft_only", "execute_limited", "execute_gated", "escalate",
                  "operator lee (support_lead) approves", "audit chain intact",
                  f"agent-kit --home {demo_home} resolve demo-jane --interrupt "):
        assert shown in first.stdout, shown
    second = script("demo", "--json")
    assert second.code == 0, second.stderr
    summary = second.json()
    assert summary["audit_ok"] is True and summary["home"] == str(demo_home)
    statuses = [s["status"] for s in summary["steps"]]
    assert statuses[-1] == "escalated" and "paused" in statuses
    # The printed operator commands work on the demo's home, and its trail starts afresh each run.
    pending = script("pending", "--json", with_home=False, extra_home=demo_home)
    assert [p["kind"] for p in pending.json()] == ["escalation"]
    assert len({p["thread_id"] for p in pending.json()}) == 1  # the first run's case was wiped
    assert not (home / "agent_kit.sqlite").exists()  # the operator's own home is untouched


def test_the_reference_app_is_found_through_langgraph_json_in_the_current_folder(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "agent-kit"
    here = subprocess.run([str(exe), "--home", str(tmp_path / "h"), "graph"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert here.returncode == 0 and "approval" in here.stdout, here.stderr
    elsewhere = subprocess.run([str(exe), "--home", str(tmp_path / "h"), "graph"], cwd=tmp_path, capture_output=True,
                               text=True, timeout=120)
    assert elsewhere.returncode == 1
    assert f"no langgraph.json in {tmp_path}" in elsewhere.stderr
