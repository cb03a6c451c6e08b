"""A customer's confirmation is bound to the action they were shown: a payload sent straight to the
``verification`` node with another action's hash must not leave a confirmation on record for that
other action (which a payload sent to ``execute`` would then spend)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash
from tests.core.conftest import POLICY

from tests.core.conftest import refused_as_forged


def _action(args: dict[str, Any], hashed: str, grants: dict[str, Any], call: str) -> dict[str, Any]:
    return {"tool_call_id": call, "turn": None, "tool": "close_account", "args": args, "hash": hashed,
            "requested_by": "customer", "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None,
            "decision": {"tool": "close_account", "mode": "execute_gated", "outcome": "verify", "rule": "confirm",
                         "reason": "the customer must confirm this exact action", "policy_version": "x",
                         "verification": ["confirm"]},
            "grants": grants}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_confirmation_of_what_was_shown_never_closes_what_the_hash_names(kit_on: Any, backend: str) -> None:
    policy = copy.deepcopy(POLICY)
    policy["tools"]["close_account"]["rules"] = [{"id": "confirm", "verification": "confirm"}]
    kit = kit_on(["hi", "ok", "ok"], policy)
    rt = kit.runtime
    rt.send("t", "hello")
    config = {"configurable": {"thread_id": "t"}}
    shown, meant = {"account": "old-savings"}, {"account": "victim"}
    hidden = action_hash("close_account", meant)
    out = rt.graph.invoke(Command(goto=Send("verification", {
        "action": _action(shown, hidden, {"verified": [], "approvals": []}, "sent-1"), "context": {}})), config)
    # Refused at the first wall: agent_kit's nodes MAC every action they send to a gate node;
    # a payload written by hand asks nobody, lists nothing, runs nothing, and is audited.
    assert not out.get("__interrupt__")
    assert refused_as_forged(kit, "verification")
    assert kit.runtime.pending("t") == [] and kit.bank.closed() == []
    assert kit.store.audit.verify().ok
