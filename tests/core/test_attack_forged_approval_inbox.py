"""Whatever put an item in the inbox, a person's answer to it is either refused with a reason or
audited; it never leaves the inbox without an entry saying what became of it. Here the item was
listed by a payload sent straight to the ``approval`` node (a handler-less server takes it)."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash

ARGS = {"to": "ann", "amount": 50.0}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_answer_to_an_item_a_payload_listed_is_audited_or_refused(kit_on: Any, backend: str) -> None:
    kit = kit_on(["hi", "ok", "ok"])
    rt = kit.runtime
    rt.send("t", "hello")
    action = {"tool_call_id": "sent-1", "turn": None, "tool": "pay", "args": ARGS, "hash": action_hash("pay", ARGS),
              "requested_by": "customer", "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None,
              "decision": {"tool": "pay", "mode": "execute_limited", "outcome": "approve", "rule": "pay_over_10",
                           "reason": "rule pay_over_10: pay needs approval by role lead", "policy_version": "x",
                           "approvals": [{"role": "lead", "count": 1}]},
              "grants": {"verified": [], "approvals": []}}
    rt.graph.invoke(Command(goto=Send("approval", {"action": action, "context": {}})),
                    {"configurable": {"thread_id": "t"}})
    (item,) = rt.pending("t")
    before = len(kit.store.audit.entries("t"))
    try:
        result = rt.approve(item, approver="lee")
        outcome = result.status
    except Exception as exc:  # noqa: BLE001 - a refusal with its reason is a fine answer
        outcome = f"refused: {exc}"
    after = kit.store.audit.entries("t")[before:]
    listed = [i.interrupt_id for i in kit.store.inbox.for_thread("t")]
    assert outcome.startswith("refused") or after, \
        f"lee's approval of a listed item came back {outcome!r}, with no audit entry"
    assert outcome.startswith("refused") or item["interrupt_id"] not in listed
    assert item["interrupt_id"] in listed or any(e.interrupt_id == item["interrupt_id"] for e in after), \
        "the item left the inbox with no entry saying what became of lee's answer"
