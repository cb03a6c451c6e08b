"""Cases around a policy change and carried grants that hold: a duplicated approval in a payload is
one approver; a policy tightened to deny between two approvals pays nothing and audits both answers;
a policy tightened to two approvers between request and answer takes the answer and asks one more."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash
from tests.core.conftest import POLICY
from tests.core.test_attack_policy_change_roles import _paused


def _write(path: Path, rules: list[dict[str, Any]]) -> None:
    data = copy.deepcopy(POLICY)
    data["tools"]["pay"]["rules"] = rules
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_one_approval_named_twice_in_a_payload_is_one_approver(kit_on: Any, backend: str, tmp_path: Path) -> None:
    kit, rt, _path, item = _paused(kit_on, tmp_path, 150)
    rt.approve(item, approver="lee")
    (lee,) = kit.store.audit.entries("t", kind="approved")
    grant = {"approver": "lee", "role": "lead", "at": lee.at, "interrupt_id": lee.interrupt_id}
    args = {"to": "ann", "amount": 150.0}
    action = {"tool_call_id": "sent-2", "turn": None, "tool": "pay", "args": args, "hash": action_hash("pay", args),
              "requested_by": "customer", "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None,
              "decision": {}, "grants": {"verified": [], "approvals": [grant, dict(grant)]}}
    try:
        rt.graph.invoke(Command(goto=Send("execute", {"action": action, "context": {}})),
                        {"configurable": {"thread_id": "t"}})
    except Exception:  # noqa: BLE001
        pass
    assert kit.bank.payments() == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_policy_tightened_to_deny_between_two_approvals_pays_nothing(kit_on: Any, backend: str,
                                                                      tmp_path: Path) -> None:
    kit, rt, path, item = _paused(kit_on, tmp_path, 150)
    rt.approve(item, approver="lee")
    (second,) = rt.result("t").pending
    _write(path, [{"id": "no_pay", "deny": "payments are stopped"}])
    rt.approve(second, approver="sam")
    assert kit.bank.payments() == []
    assert sorted(e.actor for e in kit.store.audit.entries("t", kind="approved")) == ["lee", "sam"]
    assert kit.store.audit.entries("t", kind="denied")
    assert kit.store.inbox.for_thread("t") == []
    assert kit.store.audit.verify().ok


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_policy_tightened_to_two_approvers_takes_the_answer_and_asks_one_more(kit_on: Any, backend: str,
                                                                               tmp_path: Path) -> None:
    kit, rt, path, item = _paused(kit_on, tmp_path, 50)
    _write(path, [{"id": "two", "when": {"args.amount": {"gt": 10}}, "approval": {"role": "lead", "count": 2}}])
    rt.approve(item, approver="lee")
    assert kit.bank.payments() == []
    (second,) = rt.result("t").pending
    assert [i.interrupt_id for i in kit.store.inbox.for_thread("t")] == [second["interrupt_id"]]
    rt.approve(second, approver="sam")
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert kit.store.inbox.for_thread("t") == []
    assert kit.store.audit.verify().ok
