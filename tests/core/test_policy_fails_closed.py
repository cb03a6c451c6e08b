"""Configuration that fails open: every mistake that would leave a rule inert is a load error
naming the key, and authority is re-read on any change of content of the policy or a file it names."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_kit import AgentRuntime, Mode, Policy, PolicyError, create_permissioned_agent, load_policy, register
from agent_kit.testing import ScriptedChatModel, tool_call
from tests.core.conftest import POLICY, bank_specs


def _graph(kit: Any, policy: Any, **kw: Any) -> Any:
    return create_permissioned_agent(kit.model, bank_specs(kit.bank), policy, store=kit.store,
                                     context_keys={"sentiment": str}, **kw)


def _with_rule(rule: dict[str, Any], tool: str = "pay") -> dict[str, Any]:
    data = copy.deepcopy(POLICY)
    data["tools"][tool]["rules"] = [rule, *data["tools"][tool].get("rules", [])]
    return data


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (_with_rule({"id": "typo", "when": {"args.amont": {"gt": 50}}, "approval": {"role": "lead"}}),
         "tools.pay.rules.0.when.args.amont: pay has no argument 'amont'"),
        (_with_rule({"id": "str", "when": {"args.amount": {"gt": "50"}}, "approval": {"role": "lead"}}),
         "tools.pay.rules.0.when.args.amount: args.amount is number but gt compares it with '50' (string)"),
        (_with_rule({"id": "eq", "when": {"args.to": 5}, "approval": {"role": "lead"}}),
         "tools.pay.rules.0.when.args.to: args.to is string but eq compares it with 5 (number)"),
        (_with_rule({"id": "in", "when": {"args.amount": {"in": ["1", 2]}}, "approval": {"role": "lead"}}),
         "args.amount is number but in compares it with '1' (string)"),
        (_with_rule({"id": "fact", "when": {"facts.balance": {"lt": 0}}, "deny": "overdrawn"}),
         "tools.pay.rules.0.when.facts.balance: pay declares no fact 'balance'"),
        (_with_rule({"id": "ctx", "when": {"context.vip": True}, "mode": "escalate"}),
         "tools.pay.rules.0.when.context.vip: context key 'vip' is declared by neither"),
        (_with_rule({"id": "ref", "when": {"args.to": {"ne": {"ref": "context.custmer_id"}}}, "deny": "x"}),
         "ref context.custmer_id: context key 'custmer_id'"),
        (_with_rule({"id": "agg", "when": {"aggregates.daily": {"gt": 10}}, "approval": {"role": "lead"}}),
         "tools.pay.rules.0.when.aggregates.daily: pay declares no aggregate 'daily'"),
        ({**copy.deepcopy(POLICY), "rules": [{"id": "global_typo", "when": {"args.amont": {"gt": 1}},
                                               "mode": "escalate", "tools": ["pay"]}]},
         "rules.0.when.args.amont (for pay): pay has no argument 'amont'"),
    ],
    ids=["misspelt-argument", "string-vs-number", "number-vs-string", "in-list-type", "undeclared-fact",
         "undeclared-context", "misspelt-ref", "undeclared-aggregate", "global-rule-typo"],
)
def test_a_rule_that_could_never_fire_is_a_load_error_naming_the_key(kit_factory, data, named):
    kit = kit_factory(["unused"])
    with pytest.raises(PolicyError) as info:
        _graph(kit, Policy.from_dict(data, source="p.yaml"))
    assert named in str(info.value) and "p.yaml" in str(info.value)


def test_the_misspelt_amount_no_longer_lets_an_80_payment_run_unapproved(kit_factory, tmp_path):
    """The reported case end to end: the typo is refused, the spelt-right rule gates the payment."""
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 80}), "ok"])
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(_with_rule({"id": "over_50", "when": {"args.amont": {"gt": 50}},
                                               "approval": {"role": "lead"}})))
    with pytest.raises(PolicyError, match=r"args\.amont"):
        _graph(kit, path)
    path.write_text(path.read_text().replace("args.amont", "args.amount"))
    rt = AgentRuntime(_graph(kit, path), store=kit.store)
    assert rt.send("t", "pay ann 80").status == "paused" and kit.bank.payments() == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("version: 1\ntools:\n  pay: {mode: execute_limited}\n  pay: {mode: read_only}\n", "duplicate key 'pay'"),
        ("version: 1\nversion: 1\n", "duplicate key 'version'"),
        ("tools:\n  pay:\n    mode: execute_limited\n    rules:\n      - id: a\n        when: {args.amount: {gt: 1}, "
         "args.amount: {gt: 100}}\n        mode: escalate\n", "duplicate key 'args.amount'"),
    ],
    ids=["tool-twice", "top-level-twice", "condition-twice"],
)
def test_duplicate_yaml_keys_are_refused(tmp_path, text, named):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "p.yaml")
    assert named in str(info.value) and "line" in str(info.value)


def test_duplicate_keys_in_the_approvers_file_are_refused(tmp_path):
    (tmp_path / "people.yaml").write_text("ava: [lead]\nava: [boss]\n")
    data = copy.deepcopy(POLICY)
    data["approvers_file"] = "people.yaml"
    del data["approvers"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match="approvers_file.*duplicate key 'ava'"):
        load_policy(tmp_path / "p.yaml")


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"mode": "execute_gated"}, "tools.close_account: Value error, an execute_gated tool needs approval"),
        ({"mode": "execute_gated", "approval": {"role": "treasurer"}},
         "tools.close_account.approval needs 1 approver(s) with role 'treasurer', but 0 hold it (nobody)"),
        ({"mode": "execute_gated", "approval": {"role": "boss", "count": 2}},
         "tools.close_account.approval needs 2 approver(s) with role 'boss', but 1 hold it (morgan)"),
        ({"mode": "execute_limited", "approval": {"role": "boss"}}, "need mode execute_gated"),
        ({"mode": "execute_limited", "rules": [{"id": "g", "mode": "execute_gated"}]},
         "makes calls execute_gated but names no approval or verification"),
    ],
    ids=["gated-without-gate", "role-nobody-holds", "too-few-holders", "approval-on-limited", "gated-rule-no-gate"],
)
def test_a_gate_nobody_can_open_is_a_load_error(entry, named):
    data = copy.deepcopy(POLICY)
    data["tools"]["close_account"] = entry
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    assert named.replace("Value error, ", "") in str(info.value)


def test_execute_gated_names_its_approver_on_the_tool_entry(kit_factory):
    data = copy.deepcopy(POLICY)
    data["tools"]["close_account"] = {"mode": "execute_gated", "approval": {"role": "boss"}}
    policy = Policy.from_dict(data)
    d = policy.evaluate("close_account", {"account": "a"})
    assert (d.outcome, d.required_role, d.rule) == ("approve", "boss", "tools.close_account")
    kit = kit_factory([tool_call("close_account", {"account": "a"}), "closed"], policy=data)
    assert kit.runtime.send("t", "close a").pending[0]["required_role"] == "boss"
    assert kit.runtime.approve("t", approver="morgan", interrupt_id=kit.runtime.result("t").pending[0]["interrupt_id"]).reply == "closed" and kit.bank.closed() == ["a"]


def test_a_tool_registered_execute_gated_needs_a_gated_entry(kit_factory):
    from langchain_core.tools import tool

    @tool
    def wipe(account: str) -> str:
        """Wipe an account."""
        return "wiped"

    kit = kit_factory(["unused"])
    data = {"approvers": {"lee": ["lead"]}, "tools": {"wipe": {"mode": "execute_limited"}}}
    spec = register(wipe, Mode.EXECUTE_GATED, changes=["accounts"], irreversible=True)
    with pytest.raises(PolicyError, match="tools.wipe.mode: wipe is registered execute_gated"):
        create_permissioned_agent(ScriptedChatModel(steps=[]), [spec], Policy.from_dict(data), store=kit.store)
    data["tools"]["wipe"] = {"mode": "execute_gated", "approval": {"role": "lead"}}
    create_permissioned_agent(ScriptedChatModel(steps=[]), [spec], Policy.from_dict(data), store=kit.store)


def test_global_rules_can_target_tags():
    data = copy.deepcopy(POLICY)
    data["tools"]["pay"]["tags"] = ["money", "writes"]
    data["tools"]["close_account"]["tags"] = ["writes"]
    data["rules"].append({"id": "writes_need_boss", "tags": ["writes"], "approval": {"role": "boss"}})
    data["rules"].append({"id": "money_frozen", "tags": ["money"], "when": {"context.sentiment": "calm"},
                          "mode": "escalate"})
    p = Policy.from_dict(data)
    assert p.evaluate("pay", {"to": "a", "amount": 1}).required_role == "boss"
    assert p.evaluate("close_account", {"account": "a"}).required_role == "boss"
    assert p.evaluate("lookup", {"account": "a"}).outcome == "allow"
    assert p.evaluate("pay", {"to": "a", "amount": 1}, {"sentiment": "calm"}).outcome == "escalate"
    assert p.evaluate("close_account", {"account": "a"}, {"sentiment": "calm"}).outcome == "approve"


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"id": "r", "tags": ["moneyy"], "mode": "escalate"}, "rules.1 (r): no tool carries tag(s) moneyy"),
        ({"id": "r", "tools": ["payy"], "mode": "escalate"}, "rules.1 (r): no tool entry named payy"),
    ],
    ids=["unknown-tag", "unknown-tool"],
)
def test_a_global_rule_that_targets_nothing_is_a_load_error(rule, named):
    data = copy.deepcopy(POLICY)
    data["rules"].append(rule)
    with pytest.raises(PolicyError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Policy.from_dict(data)


def test_tags_on_a_tools_own_rule_are_refused():
    data = _with_rule({"id": "r", "tags": ["money"], "mode": "escalate"})
    with pytest.raises(PolicyError, match="tags and tools target global rules"):
        Policy.from_dict(data)


# -- fresh authority -------------------------------------------------------------------------

def _write_keeping_mtime(path: Path, text: str) -> None:
    st = os.stat(path)
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_version_is_a_hash_of_the_policy_and_every_file_it_names(tmp_path):
    (tmp_path / "people.yaml").write_text("ava: [lead]\nbo: [lead, boss]\n")
    data = copy.deepcopy(POLICY)
    del data["approvers"]
    data["approvers_file"] = "people.yaml"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    first = load_policy(tmp_path / "p.yaml")
    assert first.files == (str(tmp_path / "p.yaml"), str(tmp_path / "people.yaml"))
    _write_keeping_mtime(tmp_path / "people.yaml", "ava: [lead]\nbo: [boss]\n")
    second = load_policy(tmp_path / "p.yaml")
    assert second.version != first.version and second.roles_of("bo") == {"boss", "lead"}


@pytest.mark.parametrize("which", ["policy", "approvers_file"])
def test_a_change_with_the_old_mtime_is_seen_before_the_next_decision(kit_factory, tmp_path, which):
    (tmp_path / "people.yaml").write_text("lee: [lead]\nsam: [lead]\nmorgan: [boss]\n")
    data = copy.deepcopy(POLICY)
    del data["approvers"]
    data["approvers_file"] = "people.yaml"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 5}), "ok"])
    kernel = _graph(kit, path).agent_kit.kernel
    before = kernel.policy.version
    if which == "policy":
        data["tools"]["pay"]["rules"].append({"id": "freeze", "mode": "escalate"})
        _write_keeping_mtime(path, yaml.safe_dump(data))
        assert kernel.policy.evaluate("pay", {"to": "a", "amount": 1}).rule == "freeze"
    else:
        _write_keeping_mtime(tmp_path / "people.yaml", "lee: [lead]\nsam: [lead]\nmorgan: [boss]\nzoe: [lead]\n")
        assert kernel.policy.can_act_as("zoe", "lead")
    assert kernel.policy.version != before


def test_a_broken_change_fails_closed(kit_factory, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 5}), "ok"])
    rt = AgentRuntime(_graph(kit, path), store=kit.store)
    path.write_text(path.read_text().replace("args.amount", "args.amont"))
    with pytest.raises(PolicyError, match="args.amont"):
        rt.send("t", "pay ann 5")
    assert kit.bank.payments() == []


@pytest.mark.parametrize("count", [1, 2], ids=["sole-approver-revoked", "first-of-two-revoked"])
def test_an_approver_revoked_while_an_action_waits_cannot_approve_it(kit_factory, tmp_path, count):
    people = tmp_path / "people.yaml"
    people.write_text("lee: [lead]\nsam: [lead]\nmorgan: [boss]\n")
    data = copy.deepcopy(POLICY)
    del data["approvers"]
    data["approvers_file"] = "people.yaml"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    amount = 50 if count == 1 else 500
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": amount}), "ok"])
    rt = AgentRuntime(_graph(kit, path), store=kit.store)
    assert rt.send("t", f"pay ann {amount}").status == "paused"
    if count == 2:
        assert rt.approve("t", approver="lee", interrupt_id=rt.result("t").pending[0]["interrupt_id"]).status == "paused"  # one of two given
    _write_keeping_mtime(people, "sam: [lead]\nmorgan: [boss]\n")  # lee leaves; the file's mtime kept
    if count == 1:
        with pytest.raises(Exception, match="lee"):
            rt.approve("t", approver="lee", interrupt_id=rt.result("t").pending[0]["interrupt_id"])
        assert kit.bank.payments() == []
        assert rt.approve("t", approver="sam", interrupt_id=rt.result("t").pending[0]["interrupt_id"]).reply == "ok"
    else:
        # lee's earlier approval no longer counts: sam's makes one of two, still paused
        r = rt.approve("t", approver="sam", interrupt_id=rt.result("t").pending[0]["interrupt_id"])
        assert r.status == "paused" and kit.bank.payments() == []
        assert rt.approve("t", approver="morgan", interrupt_id=rt.result("t").pending[0]["interrupt_id"]).reply == "ok"
    assert [p[1] for p in kit.bank.payments()] == [amount]
