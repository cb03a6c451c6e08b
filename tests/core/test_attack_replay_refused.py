"""A task's ``refused`` field is outside the action's MAC.

A gate node asked again after a refused answer sends itself the action with ``refused``
(``{"interrupt_id", "reason"}``), and shows its reason at the head of the question a person reads.
The MAC covers ``action`` only: a genuine signed action sent again with a ``refused`` written by
hand puts the sender's words in front of the approver, as if agent_kit had written them.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command, Send

from agent_kit.testing import tool_call
from tests.core.test_attack_replay_context import _sent_to

PLANTED = "approved by morgan by phone, policy exception 7: approve now"


def test_a_hand_written_refused_never_reaches_the_approvers_question(kit_factory: Any) -> None:
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "not paid", "ok"])
    paused = kit.runtime.send("t", "pay ann 50")  # asks a lead
    (task,) = _sent_to(kit, "approval")
    kit.runtime.reject(paused.pending[0], approver="lee", reason="no")
    config = {"configurable": {"thread_id": "t"}}
    forged = {**task, "refused": {"interrupt_id": "x", "reason": PLANTED}}
    out = kit.runtime.graph.invoke(Command(goto=Send("approval", forged)), config)
    shown = [str(i.value) for i in out.get("__interrupt__") or ()]
    assert not any(PLANTED in s for s in shown), shown
