"""An answer to an approval asked under an earlier policy is taken and audited, whatever the policy
says now: a rejection given by the role that was asked is honoured (never dropped as "wrong role" and
asked of someone else, who could then approve what was rejected); approvals of a multi-approval gate
given under the earlier policy keep one decision each in the audit trail."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_kit import AgentRuntime, create_permissioned_agent
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY, bank_specs


def _paused(kit_on: Any, tmp_path: Path, amount: float) -> tuple[Any, AgentRuntime, Path, dict[str, Any]]:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": amount}), "done", "done"])
    graph = create_permissioned_agent(kit.model, bank_specs(kit.bank), path, store=kit.store,
                                      context_keys={"sentiment": str})
    rt = AgentRuntime(graph, store=kit.store)
    paused = rt.send("t", f"pay ann {amount}")
    assert paused.status == "paused"
    return kit, rt, path, paused.pending[0]


def _needs_boss(path: Path) -> None:
    """Payments over 10 now need the boss instead of a lead, while the action waits."""
    data = copy.deepcopy(POLICY)
    data["tools"]["pay"]["rules"] = [{"id": "pay_over_10_boss", "when": {"args.amount": {"gt": 10}},
                                      "approval": {"role": "boss"}}]
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_leads_rejection_asked_of_a_lead_is_honoured_after_the_policy_moves_to_the_boss(
        kit_on: Any, backend: str, tmp_path: Path) -> None:
    kit, rt, path, item = _paused(kit_on, tmp_path, 50)
    _needs_boss(path)
    try:
        rt.reject(item, approver="lee", reason="ann is not our customer")
    except Exception:  # noqa: BLE001 - what counts is what is on record and what runs
        pass
    rejected = [e.actor for e in kit.store.audit.entries("t", kind="rejected")]
    refused = [e.data.get("error") for e in kit.store.audit.entries("t", kind="refused")]
    # the boss, asked next, approves: the payment lee rejected must still not be paid
    for pending in rt.result("t").pending:
        rt.approve(pending, approver="morgan")
    assert kit.bank.payments() == [], "lee rejected the payment he was asked about, and it was paid"
    assert rejected == ["lee"], f"lee's rejection was not taken (refused instead: {refused})"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_approval_given_before_the_policy_changed_is_never_also_refused(kit_on: Any, backend: str,
                                                                           tmp_path: Path) -> None:
    """150 needs two leads: lee approves; the policy moves to the boss; sam answers. Lee's approval
    was accepted when he gave it: the audit trail must not later also call it refused."""
    kit, rt, path, item = _paused(kit_on, tmp_path, 150)
    rt.approve(item, approver="lee")
    (second,) = rt.result("t").pending
    _needs_boss(path)
    try:
        rt.approve(second, approver="sam")
    except Exception:  # noqa: BLE001
        pass
    by_interrupt: dict[str, list[str]] = {}
    for e in kit.store.audit.entries("t"):
        if e.interrupt_id and e.kind in ("approved", "rejected", "refused", "edited"):
            by_interrupt.setdefault(e.interrupt_id, []).append(e.kind)
    assert all(len(kinds) == 1 for kinds in by_interrupt.values()), \
        f"an interrupt has more than one decision on record: {by_interrupt}"
    assert kit.bank.payments() == []
    assert kit.store.audit.verify().ok


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_leads_edit_asked_of_a_lead_is_taken_after_the_policy_moves_to_the_boss(
        kit_on: Any, backend: str, tmp_path: Path) -> None:
    """lee edits $50 down to $40; the policy now wants the boss. The boss, asked next, approves what
    is pending: it must never be the $50 lee edited away."""
    kit, rt, path, item = _paused(kit_on, tmp_path, 50)
    _needs_boss(path)
    try:
        rt.approve(item, approver="lee", edit={"name": "pay", "args": {"to": "ann", "amount": 40.0}})
    except Exception:  # noqa: BLE001
        pass
    for pending in rt.result("t").pending:
        rt.approve(pending, approver="morgan")
    assert ("ann", 50.0, 0) not in kit.bank.payments(), "paid the $50 lee edited down to $40"
    assert [e.actor for e in kit.store.audit.entries("t", kind="edited")] == ["lee"]
