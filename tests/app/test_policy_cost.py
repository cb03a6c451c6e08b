"""What one approved refund costs the policy: evaluations and fact reads, counted (not timed).

The policy is evaluated once per gate decision (the permission node, the approval request, the
answer, and the start of the effect, decided again inside its transaction) and facts are read once
per evaluation. A later change that re-decides more often fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit.policy import Policy

EVALUATIONS_PER_APPROVED_REFUND = 4  # was 7 before the policy was evaluated once per gate decision


def test_an_approved_refund_costs_four_evaluations_and_four_fact_reads(sqlite_app: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = sqlite_app
    app.say("t", "Hi, I'm Jane Doe, zip 94107")
    evaluated: list[str] = []
    facts_read: list[Any] = []
    evaluate = Policy.evaluate

    def counting_evaluate(self: Policy, tool: str, *args: Any, **kwargs: Any) -> Any:
        evaluated.append(tool)
        return evaluate(self, tool, *args, **kwargs)

    spec = app.runtime.kernel.registry["issue_refund"]
    read = spec.facts

    def counting_facts(args: Any, context: Any) -> Any:
        facts_read.append(args)
        return read(args, context)

    monkeypatch.setattr(Policy, "evaluate", counting_evaluate)
    object.__setattr__(spec, "facts", counting_facts)
    try:
        result = app.runtime.send("t", "Refund $80 on order 1001")
        (pending,) = result.pending
        app.runtime.approve(pending, approver="lee")
    finally:
        object.__setattr__(spec, "facts", read)
    assert [r["amount"] for r in app.shop.refunds(1001)] == [80.0]
    assert evaluated == ["issue_refund"] * EVALUATIONS_PER_APPROVED_REFUND, evaluated
    assert len(facts_read) == EVALUATIONS_PER_APPROVED_REFUND
