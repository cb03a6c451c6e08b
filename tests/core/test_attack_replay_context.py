"""Replay of a genuine signed action with a context of the attacker's choosing.

A gate node's action carries a MAC, but the task's context is only checked key by key for *this
thread*: any value a node of the thread ever signed passes, and any key can be left out. The
verification node decides again under the task's context and routes the action on, newly signed,
so a replayed task carrying the thread's old context (or none of its keys) is decided as if the
customer's current state were not there.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langgraph.types import Command, Send

from agent_kit.graph import layer_of
from agent_kit.interrupts import now_iso
from agent_kit.testing import tool_call
from tests.core.conftest import POLICY


def _sent_to(kit: Any, node: str, thread: str = "t") -> list[dict[str, Any]]:
    """Every payload agent_kit's nodes sent to ``node`` on the thread, as a client reads them from
    the checkpoints' pending sends (``/threads/{id}/history`` serves the same)."""
    saver = kit.runtime.graph.checkpointer
    out: list[dict[str, Any]] = []
    for tup in saver.list({"configurable": {"thread_id": thread}}):
        sends = list(tup.checkpoint.get("channel_values", {}).get("__pregel_tasks") or [])
        sends += [v for _t, c, v in tup.pending_writes or [] if c == "__pregel_tasks"]
        for value in sends:
            if isinstance(value, Send) and value.node == node and value.arg not in out:
                out.append(copy.deepcopy(value.arg))
    return out


@pytest.mark.parametrize("context", ["as-sent", "current-minus-sentiment"])
def test_a_replayed_verification_task_with_a_chosen_context_escapes_the_angry_escalation(kit_factory: Any,
                                                                                         context: str) -> None:
    policy = copy.deepcopy(POLICY)
    policy["tools"]["close_account"]["rules"] = [{"id": "confirm", "verification": "confirm"}]
    kit = kit_factory([tool_call("close_account", {"account": "a"}), "not closed then", "I hear you",
                       "closed", "ok"], policy)
    kit.runtime.send("t", "close my account")  # calm: sent to verification, asks the customer to confirm
    (task,) = _sent_to(kit, "verification")
    kit.runtime.send("t", "no")  # the customer says no: nothing closed
    assert kit.bank.closed() == []
    kit.runtime.send("t", "this is outrageous!!!")  # now angry: policy escalates every call
    kernel = layer_of(kit.graph).kernel
    state = kit.runtime.graph.get_state({"configurable": {"thread_id": "t"}}).values
    now = kernel.trust(state.get("context"), {"configurable": {"thread_id": "t"}}, node="test")
    assert now.get("sentiment") == "angry"
    assert kernel.decide(task["action"], now, thread="t").outcome == "escalate"  # what a request now gets
    # The genuine task, replayed: its action still carries its MAC; its context is the thread's own,
    # either as signed when the customer was calm, or as it is now with the sentiment key left out.
    if context == "current-minus-sentiment":
        signed = dict(state["context"])
        signed.pop("sentiment")
        signed["_signed"] = {k: v for k, v in signed["_signed"].items() if k != "sentiment"}
        task = {**task, "context": signed}
    config = {"configurable": {"thread_id": "t"}}
    out = kit.runtime.graph.invoke(Command(goto=Send("verification", task)), config)
    (asked,) = out["__interrupt__"]
    assert asked.value["kind"] == "verification"
    # The customer, still angry, answers the confirmation they were asked (as the runtime answers it).
    answer = {"decisions": [{"type": "respond", "message": "yes!!!"}], "approver": "customer",
              "action_hash": asked.value["action_hash"], "decided_at": now_iso()}
    kit.runtime.graph.invoke(Command(resume={asked.id: answer}), config)
    assert kit.bank.closed() == [], "an angry customer's account was closed: the escalate rule was bypassed"
