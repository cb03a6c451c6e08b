"""The policy is re-decided when a change starts. A person's decision on a waiting action is still a
decision: when the policy file changes between the request and the answer, the answer is audited and
the inbox item leaves with it; a rejection is never turned into an execution."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_kit import AgentRuntime, create_permissioned_agent
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY, bank_specs


def _runtime(kit: Any, path: Path) -> AgentRuntime:
    graph = create_permissioned_agent(kit.model, bank_specs(kit.bank), path, store=kit.store,
                                      context_keys={"sentiment": str})
    return AgentRuntime(graph, store=kit.store)


def _paused_pay(kit_on: Any, tmp_path: Path) -> tuple[Any, AgentRuntime, Path, dict[str, Any]]:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "done"])
    rt = _runtime(kit, path)
    paused = rt.send("t", "pay ann 50")
    assert paused.status == "paused"
    return kit, rt, path, paused.pending[0]


def _loosen(path: Path) -> None:
    """The rule that asked for a lead's approval is removed while the action waits."""
    data = copy.deepcopy(POLICY)
    data["tools"]["pay"]["rules"] = [r for r in data["tools"]["pay"]["rules"] if r["id"] != "pay_over_10"]
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_rejection_given_after_the_policy_was_loosened_never_executes(kit_on: Any, backend: str,
                                                                        tmp_path: Path) -> None:
    kit, rt, path, item = _paused_pay(kit_on, tmp_path)
    _loosen(path)
    rt.reject(item, approver="lee", reason="ann is not our customer")
    assert kit.bank.payments() == [], "lee rejected the payment he was shown, and it was paid"
    assert [e.actor for e in kit.store.audit.entries("t", kind="rejected")] == ["lee"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_answer_given_after_the_policy_changed_is_audited_and_leaves_the_inbox(kit_on: Any, backend: str,
                                                                                 tmp_path: Path) -> None:
    kit, rt, path, item = _paused_pay(kit_on, tmp_path)
    _loosen(path)
    rt.approve(item, approver="lee")
    assert kit.store.inbox.for_thread("t") == [], "the answered interrupt is still listed as pending"
    decided = [e for e in kit.store.audit.entries("t") if e.interrupt_id == item["interrupt_id"]
               and e.kind not in ("approval_requested",)]
    assert decided, "lee's answer to the interrupt left no audit entry"
