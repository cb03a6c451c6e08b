"""A limit adds up what the ledger holds and the other calls of the same model message: the
``siblings`` a payload carries can only add to a total, never take from it. A payload sent straight to
``execute`` whose siblings carry a negative amount must not make room under the limit."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY

ARGS = {"to": "ann", "amount": 8.0}


def _limited() -> dict[str, Any]:
    policy = copy.deepcopy(POLICY)
    policy["tools"]["pay"]["aggregates"] = {"paid": {"sum": "args.amount", "per": "thread", "within": "24h"}}
    policy["tools"]["pay"]["rules"] = [{"id": "paid_over_10", "when": {"aggregates.paid": {"gt": 10}},
                                        "mode": "escalate"}]
    return policy


def _send(kit: Any, siblings: list[dict[str, Any]] | None) -> None:
    action: dict[str, Any] = {
        "tool_call_id": "sent-2", "turn": None, "tool": "pay", "args": ARGS, "hash": action_hash("pay", ARGS),
        "requested_by": "customer", "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None,
        "decision": {"tool": "pay", "mode": "execute_limited", "outcome": "allow", "rule": None,
                     "reason": "made up", "policy_version": "x"},
        "grants": {"verified": [], "approvals": []}}
    if siblings is not None:
        action["siblings"] = siblings
    try:
        kit.runtime.graph.invoke(Command(goto=Send("execute", {"action": action, "context": {}})),
                                 {"configurable": {"thread_id": "t"}})
    except Exception:  # noqa: BLE001 - what counts is what was paid
        pass


@pytest.mark.parametrize("siblings", [
    None,
    [{"key": "made-up", "call": "made-up", "tool": "pay", "args": {"to": "x", "amount": -100.0}}],
], ids=["no_siblings", "a_negative_sibling"])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_siblings_in_a_payload_never_make_room_under_a_limit(kit_on: Any, backend: str,
                                                            siblings: list[dict[str, Any]] | None) -> None:
    kit = kit_on([tool_call("pay", ARGS), "paid", "ok", "ok"], _limited())
    kit.runtime.send("t", "pay ann 8")
    assert kit.bank.payments() == [("ann", 8.0, 0)]  # $8 of the $10 the thread may pay without a person
    _send(kit, siblings)
    assert kit.bank.payments() == [("ann", 8.0, 0)], "paid $16 on a thread limited to $10"
