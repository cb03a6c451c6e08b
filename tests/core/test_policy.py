"""Policy files: validation names the key; evaluation is pure, deny-by-default, stricter-only."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import agent_kit
from agent_kit import Mode, Policy, PolicyError, load_policy
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY

FIXTURE_POLICY = Path(__file__).resolve().parents[1] / "fixture_app" / "policy.yaml"


def test_a_policy_file_loads_and_has_a_content_hash_version():
    p = load_policy(FIXTURE_POLICY)
    assert len(p.version) == 16
    assert p.version == load_policy(FIXTURE_POLICY).version


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["tools"]["pay"].update(mode="yolo"), "tools.pay.mode"),
        (lambda d: d["tools"]["pay"]["rules"][0].update(when={"args.amount": {"bigger": 1}}), "tools.pay.rules.0"),
        (lambda d: d["tools"]["pay"]["rules"][0].update(when={"amount": {"gt": 1}}), "tools.pay.rules.0"),
        (lambda d: d["tools"]["pay"]["rules"][0].update(approval={"role": "lead", "count": 0}), "tools.pay.rules.0.approval.count"),
        (lambda d: d["tools"]["pay"].update(colour="red"), "tools.pay.colour"),
        (lambda d: d["tools"]["pay"]["rules"].append({"id": "noop", "when": {}}), "tools.pay.rules.3"),
        (lambda d: d["tools"]["pay"]["rules"].append({"id": "pay_over_10", "deny": "x"}), "(top level)"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["defaults"].update(approval_expiry="soon"), "defaults.approval_expiry"),
    ],
    ids=["bad-mode", "bad-operator", "bad-path", "zero-approvers", "unknown-key", "rule-without-effect",
         "duplicate-rule-id", "unknown-version", "bad-duration"],
)
def test_invalid_policy_fails_naming_the_key(mutate, key):
    data = copy.deepcopy(POLICY)
    mutate(data)
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data, source="p.yaml")
    assert key in str(info.value) and "p.yaml" in str(info.value)


def test_invalid_yaml_and_missing_file_fail_clearly(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tools: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")


def test_unlisted_tool_is_denied_by_default():
    d = Policy.from_dict(POLICY).evaluate("wire_money", {"amount": 1})
    assert d.outcome == "deny" and "denied by default" in d.reason


def test_rules_only_make_a_call_stricter():
    data = copy.deepcopy(POLICY)
    data["tools"]["close_account"]["rules"].append({"id": "loosen", "mode": "read_only"})
    d = Policy.from_dict(data).evaluate("close_account", {"account": "a"})
    assert d.mode is Mode.EXECUTE_GATED and d.outcome == "approve"


def test_registered_ceiling_is_never_loosened_by_policy():
    p = Policy.from_dict(POLICY)
    assert p.evaluate("pay", {"to": "a", "amount": 1}, ceiling=Mode.DRAFT_ONLY).outcome == "draft"


@pytest.mark.parametrize(
    ("amount", "outcome", "count"),
    [(5, "allow", 0), (50, "approve", 1), (500, "approve", 2), (5000, "escalate", 0)],
    ids=["within-limit", "one-lead", "two-leads", "escalates"],
)
def test_amount_thresholds(amount, outcome, count):
    d = Policy.from_dict(POLICY).evaluate("pay", {"to": "a", "amount": amount})
    assert d.outcome == outcome
    if outcome == "approve":
        assert d.approvals_needed == count and d.required_role == "lead"


def test_missing_reference_fails_closed():
    data = copy.deepcopy(POLICY)
    data["tools"]["pay"]["rules"].append(
        {"id": "own", "when": {"args.to": {"ne": {"ref": "context.customer_id"}}}, "deny": "not yours"})
    p = Policy.from_dict(data)
    assert p.evaluate("pay", {"to": "a", "amount": 1}, {}).outcome == "deny"
    assert p.evaluate("pay", {"to": "a", "amount": 1}, {"customer_id": "a"}).outcome == "allow"


def test_evaluation_is_pure():
    p = Policy.from_dict(POLICY)
    args, ctx = {"to": "a", "amount": 50}, {"sentiment": "calm"}
    first = p.evaluate("pay", args, ctx)
    assert all(p.evaluate("pay", args, ctx) == first for _ in range(5))
    assert args == {"to": "a", "amount": 50} and ctx == {"sentiment": "calm"}


def test_roles_include_other_roles():
    p = Policy.from_dict(POLICY)
    assert p.can_act_as("morgan", "lead") and not p.can_act_as("lee", "boss")


def test_resumed_run_is_decided_again_under_a_changed_policy(kit_factory, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "ok"], policy=None)
    # Rebuild the kit's graph on the policy *file* so a change is picked up.
    from agent_kit import AgentRuntime, create_permissioned_agent
    from tests.core.conftest import bank_specs

    graph = create_permissioned_agent(kit.model, bank_specs(kit.bank), path, store=kit.store,
                                      context_keys={"sentiment": str})
    rt = AgentRuntime(graph, store=kit.store)
    rt.send("t", "pay ann 50")
    stricter = copy.deepcopy(POLICY)
    stricter["tools"]["pay"]["rules"].append({"id": "freeze", "when": {"args.amount": {"gt": 1}}, "mode": "escalate"})
    path.write_text(yaml.safe_dump(stricter))
    import os

    os.utime(path, (os.stat(path).st_atime + 5, os.stat(path).st_mtime + 5))
    result = rt.approve(rt.pending("t", kind="approval")[0], approver="lee")
    assert result.status == "escalated" and kit.bank.payments() == []
    assert result.pending[0]["rule"] == "freeze"
    assert result.pending[0]["action_hash"]


def test_public_names_are_sorted_and_complete():
    assert agent_kit.__all__ == sorted(agent_kit.__all__)
    public = {n for n in dir(agent_kit) if not n.startswith("_") and n[0].isupper() or n in (
        "create_permissioned_agent", "load_policy", "register", "layer_of")}
    exported = {n for n in public if not isinstance(getattr(agent_kit, n), type(agent_kit))}
    assert exported <= set(agent_kit.__all__)


def test_approvers_can_live_in_a_file_the_policy_names(tmp_path):
    (tmp_path / "people.yaml").write_text("ava: [lead]\nbo: [boss]\n")
    data = copy.deepcopy(POLICY)
    del data["approvers"]
    data["approvers_file"] = "people.yaml"
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data))
    p = load_policy(tmp_path / "policy.yaml")
    assert p.roles_of("ava") == {"lead"} and p.can_act_as("bo", "lead")
    data["approvers_file"] = "missing.yaml"
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match="approvers_file"):
        load_policy(tmp_path / "policy.yaml")


_MISSING_VALUE = object()


@pytest.mark.parametrize("op,expected", [
    ("eq", 5), ("gt", 5), ("gte", 5), ("lt", 5), ("lte", 5), ("in", ["eu", "uk", 5]), ("not_in", ["eu", 5]),
    ("ne", "eu"), ("ne", 5), ("exists", True), ("exists", False),
])
def test_a_test_of_one_key_decides_as_the_general_test_of_a_nested_key(op: str, expected: object) -> None:
    """A comparison of one key (eq, gt, gte, lt, lte) takes a fast path; a nested key the general
    one. Whatever path a test takes, the two must agree on every value: present, missing, NaN,
    None, the wrong type (fail closed where it cannot compare)."""
    from agent_kit._policy_schema import Condition

    fast = Condition(path="args.v", op=op, value=expected).compile()
    general = Condition(path="args.n.v", op=op, value=expected).compile()
    for value in (5, 4, 6, 5.0, float("nan"), "eu", "us", None, True, [1], {"a": 1}, _MISSING_VALUE):
        node = {} if value is _MISSING_VALUE else {"v": value}
        got = fast({"args": node, "context": {}, "facts": {}, "aggregates": {}})
        want = general({"args": {"n": node}, "context": {}, "facts": {}, "aggregates": {}})
        assert got == want, (op, expected, value, got, want)
