"""An approval is consumed by exactly one execution of exactly its action: attacks that hold."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.types import Command

from agent_kit.testing import tool_call


@pytest.mark.parametrize("same_id", [False, True], ids=["distinct_ids", "same_id"])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_identical_calls_in_one_message_need_two_approvals(kit_on: Any, backend: str, same_id: bool) -> None:
    call = {"to": "ann", "amount": 50}
    ids = ("c1", "c1") if same_id else ("c1", "c2")
    kit = kit_on([[tool_call("pay", call, ids[0]), tool_call("pay", call, ids[1])], "done"])
    first = kit.runtime.send("t", "pay ann 50 twice")
    assert first.status == "paused" and len(first.pending) == 1
    second = kit.runtime.approve(first.pending[0], approver="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    if same_id:
        # one call id twice in one message is one call: at most one payment, whatever is decided
        for item in second.pending:
            kit.runtime.approve(item, approver="sam")
        assert kit.bank.payments() == [("ann", 50.0, 0)]
        return
    assert second.status == "paused" and len(second.pending) == 1, "lee's one approval paid for the twin call"
    kit.runtime.approve(second.pending[0], approver="sam")
    assert len(kit.bank.payments()) == 2


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_refused_answer_then_a_reasked_approval_pays_once(kit_on: Any, backend: str) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 500}), "done"])
    paused = kit.runtime.send("t", "pay ann 500")
    after_lee = kit.runtime.approve(paused.pending[0], approver="lee")  # one of two leads
    assert after_lee.status == "paused"
    (intr,) = kit.runtime.state("t").interrupts
    # lee again (refused: a repeat), then a goto END on an approval (refused, asked again in a new task)
    kit.runtime.graph.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}], "approver": "lee"}}),
                             {"configurable": {"thread_id": "t"}})
    assert kit.bank.payments() == []
    item = kit.runtime.result("t").pending[0]
    kit.runtime.approve(item, approver="sam")
    assert kit.bank.payments() == [("ann", 500.0, 0)]
    # the spent grants cannot be answered again
    assert kit.runtime.result("t").pending == []
    assert kit.kinds().count("executed") == 1
