"""What ``record`` keeps (a draft, a recommendation) is on record under the hash of its own tool and
arguments: a payload sent straight to the node with another action's hash must not file it there."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit._canonical import action_hash


@pytest.mark.parametrize(("tool", "args", "other"), [
    ("note", {"text": "see you soon"}, {"text": "your refund of $5,000 is approved"}),
    ("suggest", {"action": "send a card"}, {"action": "refund $5,000"}),
])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_draft_or_recommendation_is_filed_under_its_own_hash(kit_on: Any, backend: str, tool: str,
                                                               args: dict[str, Any], other: dict[str, Any]) -> None:
    kit = kit_on(["hi", "ok"])
    kit.runtime.send("t", "hello")
    action = {"tool_call_id": "sent-1", "turn": None, "tool": tool, "args": args, "hash": action_hash(tool, other),
              "requested_by": "customer", "requested_at": "2026-01-01T00:00:00.000+00:00", "expires_at": None,
              "decision": {}, "grants": {"verified": [], "approvals": []}}
    try:
        kit.runtime.graph.invoke(Command(goto=Send("record", {"action": action, "context": {}})),
                                 {"configurable": {"thread_id": "t"}})
    except Exception:  # noqa: BLE001 - refused is fine
        pass
    kept = [e for e in kit.store.audit.entries("t", kind=("drafted", "recommended"))]
    assert all(e.action_hash == action_hash(tool, args) for e in kept), \
        f"{tool}({args}) is on record under the hash of {other}"
    assert all(d.action_hash == action_hash(d.tool, d.args) for d in kit.store.drafts.list("t"))
