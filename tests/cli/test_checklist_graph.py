"""agent-kit checklist and agent-kit graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import CLI

GAPPED_GRAPH = '''
from pathlib import Path

from langchain_core.tools import tool

from agent_kit import Mode, create_permissioned_agent, register
from agent_kit.testing import ScriptedChatModel


@tool
def lookup(order_id: int) -> dict:
    """Read an order."""
    return {"order_id": order_id}


@tool
def wipe_account(customer_id: str) -> str:
    """Delete a customer's account."""
    return "gone"


@tool
def pay_out(amount: float) -> str:
    """Pay money out."""
    return "paid"


@tool
def export_data(table: str) -> str:
    """Export a table."""
    return "exported"


graph = create_permissioned_agent(
    ScriptedChatModel(steps=[]),
    [register(lookup, Mode.READ_ONLY, reads=("orders",)),
     register(wipe_account, Mode.EXECUTE_LIMITED, changes=("customers",)),
     register(pay_out, Mode.EXECUTE_LIMITED, changes=("payouts",), irreversible=True),
     register(export_data, Mode.EXECUTE_LIMITED, changes=("exports",), irreversible=True)],
    Path(__file__).with_name("gapped.yaml"),
)
'''

GAPPED_POLICY = """
version: 1
approvers:
  lee: [support_lead]
escalation:
  receivers: [night_shift]
tools:
  lookup: {mode: read_only}
  wipe_account: {mode: execute_limited}
  pay_out:
    mode: execute_limited
    rules:
      - id: payouts_need_a_lead
        when: {args.amount: {gt: 10}}
        approval: {role: support_lead}
      - id: payouts_loosened
        mode: read_only
"""


@pytest.fixture
def gapped(home: Path) -> list[str]:
    (home / "gapped_graph.py").write_text(GAPPED_GRAPH)
    (home / "gapped.yaml").write_text(GAPPED_POLICY)
    return ["--graph", f"{home / 'gapped_graph.py'}:graph"]


def test_checklist_names_each_gap_and_fails(cli: CLI, gapped: list[str]) -> None:
    r = cli(*gapped, "checklist", "--json")
    assert r.code == 1
    gaps = r.json()["gaps"]
    expected = [
        "tool export_data has no policy entry",
        "wipe_account executes but declares neither a compensation nor irreversible=True",
        "pay_out rule payouts_loosened: mode read_only is not stricter than pay_out's execute_limited",
        "escalations have nobody to receive them",
    ]
    for gap in expected:
        assert any(gap in g for g in gaps), (gap, gaps)
    assert len(gaps) == len(expected), gaps
    text = cli(*gapped, "checklist")
    assert text.code == 1 and "## Gaps" in text.stdout and "✗ tool export_data has no policy entry" in text.stdout
    assert "4 gap(s)" in text.one_error_line()


def test_checklist_of_another_policy_file(cli: CLI, gapped: list[str], home: Path) -> None:
    fixed = GAPPED_POLICY.replace("[night_shift]", "[support_lead]")
    (home / "fixed.yaml").write_text(fixed)
    gaps = cli(*gapped, "checklist", "--policy", str(home / "fixed.yaml"), "--json").json()["gaps"]
    assert not any("escalations" in g for g in gaps) and len(gaps) == 3
    r = cli("checklist", "--policy", str(home / "missing.yaml"))
    assert r.code == 1 and "cannot read policy file" in r.one_error_line()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("args.amount", "args.amont"), "tools.pay_out.rules.0.when.args.amont: pay_out has no argument 'amont'"),
        (("{gt: 10}", "{gt: '10'}"), "tools.pay_out.rules.0.when.args.amount: args.amount is number but gt compares it with '10' (string)"),
        (("args.amount: {gt: 10}", "facts.balance: {gt: 10}"), "pay_out declares no fact 'balance'"),
        (("args.amount: {gt: 10}", "context.vip: true"), "context key 'vip' is declared by neither"),
        (("{gt: 10}", "{gt: 10, lt: 5}"), "args.amount can never be both above 10 and below 5"),
        (("lookup: {mode: read_only}", "lookup: {mode: read_only, aggregates: {looked: {count: true, per: thread}}, "
                                       "rules: [{id: too_many, when: {aggregates.looked: {gt: 3}}, mode: escalate}]}"),
         "tools.lookup.aggregates.looked: it counts lookup, and no call of it is ever recorded in the ledger"),
    ],
    ids=["misspelt-argument", "string-operand", "undeclared-fact", "undeclared-context", "contradiction",
         "total-of-reads"],
)
def test_checklist_fails_on_a_rule_that_could_never_fire(cli: CLI, gapped: list[str], home: Path,
                                                         change: tuple[str, str], named: str) -> None:
    bad = GAPPED_POLICY.replace("[night_shift]", "[support_lead]").replace("      - id: payouts_loosened\n"
                                                                            "        mode: read_only\n", "")
    (home / "bad.yaml").write_text(bad.replace(*change))
    r = cli(*gapped, "checklist", "--policy", str(home / "bad.yaml"), "--json")
    assert r.code == 1
    gaps = r.json()["gaps"]
    assert any(named in g for g in gaps), gaps


def test_checklist_takes_a_read_limited_by_a_total_of_changes(cli: CLI, gapped: list[str], home: Path) -> None:
    """A read's own calls are not counted, but a total of changes it names is: no gap."""
    fixed = GAPPED_POLICY.replace("[night_shift]", "[support_lead]").replace(
        "lookup: {mode: read_only}", "lookup: {mode: read_only, aggregates: {paid: {count: true, tools: [pay_out], "
                                     "per: thread}}, rules: [{id: after_paying, when: {aggregates.paid: {gt: 3}}, "
                                     "mode: escalate}]}")
    (home / "fixed.yaml").write_text(fixed)
    gaps = cli(*gapped, "checklist", "--policy", str(home / "fixed.yaml"), "--json").json()["gaps"]
    assert not any("aggregates" in g for g in gaps) and len(gaps) == 3, gaps


def test_checklist_refuses_a_gate_nobody_can_open(cli: CLI, gapped: list[str], home: Path) -> None:
    (home / "nobody.yaml").write_text(GAPPED_POLICY.replace("{role: support_lead}", "{role: treasurer}"))
    r = cli(*gapped, "checklist", "--policy", str(home / "nobody.yaml"))
    assert r.code == 1
    assert "tools.pay_out.rules.0.approval needs 1 approver(s) with role 'treasurer'" in r.one_error_line()


def test_graph_is_mermaid_with_the_permission_nodes(cli: CLI) -> None:
    r = cli("graph")
    assert r.code == 0, r.stderr
    assert "graph TD" in r.stdout
    for node in ("agent", "permission", "verification", "approval", "escalation", "execute", "record"):
        assert f"\t{node}({node})" in r.stdout, node
    for edge in ("__start__ --> agent", "agent -.-> permission", "permission -.-> approval",
                 "approval -.-> execute", "permission -.-> escalation"):
        assert edge in r.stdout, edge


def test_graph_png_is_drawn_or_refused_in_one_line(cli: CLI, home: Path) -> None:
    target = home / "graph.png"
    r = cli("graph", "--png", str(target))
    try:
        import pygraphviz  # noqa: F401
    except ImportError:
        assert r.code == 1 and "pygraphviz is not installed" in r.one_error_line()
        assert not target.exists()
    else:
        assert r.code == 0 and target.read_bytes().startswith(b"\x89PNG")


def test_no_langgraph_json_here_is_one_clear_line(cli: CLI, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(home)
    r = cli("graph", graph=False)
    assert r.code == 1 and "no langgraph.json in" in r.one_error_line()


OPEN_AUTH = '''
from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    return "anyone"


@auth.on.threads.create
async def create(ctx, value) -> None:
    return None
'''


@pytest.mark.parametrize(("auth", "named"), [
    (None, "serves the graph with no auth handler"),
    ({"path": "./missing_auth.py:auth", "disable_studio_auth": True}, "cannot be loaded"),
    ({"path": "./open_auth.py:auth", "disable_studio_auth": True}, "has no default @auth.on handler"),
    ({"path": "./fixture_app/auth.py:auth"}, "disable_studio_auth is not true"),
    ("./open_auth.py:auth", "has no default @auth.on handler"),  # and studio auth left on: a second gap
], ids=["no-auth", "missing-file", "allows-what-it-does-not-name", "studio-bypass", "bare-path"])
def test_checklist_reports_a_served_configuration_without_authorization(
        cli: CLI, home: Path, monkeypatch: pytest.MonkeyPatch, auth: object, named: str) -> None:
    import json
    import shutil
    import sys

    from tests.cli.conftest import ROOT

    # The fixture app as a project of its own, served through its langgraph.json.
    shutil.copytree(ROOT / "tests" / "fixture_app", home / "fixture_app", ignore=shutil.ignore_patterns("__pycache__"))
    for name in [m for m in sys.modules if m == "fixture_app" or m.startswith("fixture_app.")]:
        monkeypatch.delitem(sys.modules, name)  # another test's copy, in another home
    (home / "open_auth.py").write_text(OPEN_AUTH)
    config: dict[str, object] = {"dependencies": ["."], "graphs": {"fixture_app": "./fixture_app/served.py:graph"}}
    if auth is not None:
        config["auth"] = auth
    (home / "langgraph.json").write_text(json.dumps(config))
    monkeypatch.chdir(home)
    monkeypatch.syspath_prepend(str(home))
    r = cli("checklist", "--json", graph=False)
    assert r.code == 1
    gaps = r.json()["gaps"]
    assert len(gaps) == (2 if isinstance(auth, str) else 1) and named in gaps[0], gaps
    # the same graph checked on its own (--graph): its policy and tools have no gap
    ok = cli("--graph", "fixture_app.served:graph", "checklist", "--json")
    assert ok.code == 0, ok.stdout
    # and with a handler that denies by default, Studio's scheme shut out, the served configuration has none
    config["auth"] = {"path": "./fixture_app/auth.py:auth", "disable_studio_auth": True}
    (home / "langgraph.json").write_text(json.dumps(config))
    served = cli("checklist", "--json", graph=False)
    assert served.code == 0, served.stdout
    (approvals,) = [q for q in served.json()["questions"] if q["id"] == "approvals"]
    assert any("fixture_app/auth.py:auth" in a and "deny by default" in a for a in approvals["answers"])
