"""Refusals of a decision carry who tried and why, as data (ApprovalError.approver / .reason), and
misuse of the API is a UsageError."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit import AgentRuntime, UsageError
from agent_kit.errors import ApprovalError
from agent_kit.testing import tool_call


def _paused(kit_factory: Any, amount: float) -> tuple[Any, Any]:
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": amount}), "paid"])
    paused = kit.runtime.send("t", "pay ann")
    assert paused.status == "paused"
    return kit, paused.pending[0]


@pytest.mark.parametrize(("approver", "amount", "reason"), [
    ("zed", 50, "unknown_approver"),
    ("morgan", 50, None),  # a boss is also a lead: allowed, no error
])
def test_unknown_approver_is_named_with_its_reason(kit_factory: Any, approver: str, amount: float,
                                                   reason: str | None) -> None:
    kit, item = _paused(kit_factory, amount)
    if reason is None:
        assert kit.runtime.approve(item, approver=approver).status == "replied"
        return
    with pytest.raises(ApprovalError) as info:
        kit.runtime.approve(item, approver=approver)
    assert (info.value.approver, info.value.reason) == (approver, reason)
    assert kit.bank.payments() == []


def test_repeat_approval_is_named_with_its_reason(kit_factory: Any) -> None:
    kit, item = _paused(kit_factory, 500)  # two leads needed
    second = kit.runtime.approve(item, approver="lee").pending[0]
    with pytest.raises(ApprovalError) as info:
        kit.runtime.approve(second, approver="lee")
    assert (info.value.approver, info.value.reason) == ("lee", "repeat_approval")
    assert kit.bank.payments() == []


def test_wrong_role_is_named_with_its_reason(kit_factory: Any) -> None:
    kit = kit_factory([tool_call("close_account", {"account": "a1"}), "closed"])
    item = kit.runtime.send("t", "close a1").pending[0]
    with pytest.raises(ApprovalError) as info:
        kit.runtime.approve(item, approver="lee")  # needs a boss
    assert (info.value.approver, info.value.reason) == ("lee", "wrong_role")
    assert kit.bank.closed() == []


def test_misuse_is_a_usage_error(kit_factory: Any) -> None:
    kit, _ = _paused(kit_factory, 50)
    with pytest.raises(UsageError, match="durability 'exit' is refused"):
        AgentRuntime(kit.graph, store=kit.store, durability="exit")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="store must be an agent_kit.store.Store"):
        AgentRuntime(kit.graph, store="not a store")
    with pytest.raises(UsageError, match="names a thread id or a pending item"):
        kit.runtime.approve(42, approver="lee")  # type: ignore[arg-type]
