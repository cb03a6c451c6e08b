"""Where an action goes next is a pure function of its decision and grants (``next_gate``), and
``gate_of`` decides and picks the gate without writing anything; ``route`` is the one place that
acts on the choice (audits a denial, counts a cleared change)."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit.testing import tool_call

LEE = {"approver": "lee", "role": "lead", "at": "2026-01-01T00:00:00+00:00"}
SAM = {"approver": "sam", "role": "lead", "at": "2026-01-01T00:00:01+00:00"}


@pytest.mark.parametrize(("tool", "args", "approvals", "gate"), [
    ("pay", {"to": "ann", "amount": 5}, [], "execute"),
    ("pay", {"to": "ann", "amount": 50}, [], "approval"),
    ("pay", {"to": "ann", "amount": 50}, [LEE], "execute"),
    ("pay", {"to": "ann", "amount": 500}, [LEE], "approval"),  # two leads
    ("pay", {"to": "ann", "amount": 500}, [LEE, SAM], "execute"),
    ("pay", {"to": "ann", "amount": 5000}, [LEE, SAM], "escalation"),
    ("lookup", {"account": "a1"}, [], "execute"),
    ("suggest", {"action": "refund"}, [], "record"),
    ("note", {"text": "hi"}, [], "record"),
    ("unpay", {"payment_id": 1}, [], "denied"),  # a compensation runs only through rollback
    ("nope", {}, [], "denied"),
    ("pay", {"to": "ann"}, [], "denied"),  # invalid arguments stay refused
])
def test_the_gate_follows_the_decision_and_the_grants(kit_factory: Any, tool: str, args: dict[str, Any],
                                                       approvals: list[dict[str, Any]], gate: str) -> None:
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 5}), "paid"])
    kernel = kit.graph.agent_kit.kernel
    action = kernel.new_action(tool, args, "c1", requested_by="customer", context={}, thread="t")
    action["grants"]["approvals"] = approvals
    before = (kit.store.audit.entries("t"), kit.store.ledger.for_thread("t"))
    decision, chosen = kernel.gate_of(action, {}, "t")
    assert chosen == gate == kernel.next_gate(action, decision)
    assert kernel.executable(action, decision) == (gate == "execute" and tool != "lookup")
    assert (kit.store.audit.entries("t"), kit.store.ledger.for_thread("t")) == before  # nothing written
