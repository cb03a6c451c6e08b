"""LangChain's HITL decisions, sent to the compiled graph as a served graph receives them, on both backends.

A LangGraph Server passes a client's ``command`` to the graph as it is, with the signed-in user in
``configurable.langgraph_auth_user``; here the graph is driven that way (no runtime checks in
front), so every guarantee below is the graph's own: one interrupt pending at a time, a refused
decision coming back in the next interrupt, "Mark as Resolved" (``goto: END``) closing a case or
being refused with the reason, and nothing running twice.
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.errors import UnknownInterruptError
from langgraph.graph import END
from langgraph.types import Command

from agent_kit.graph import RunContext
from agent_kit.testing import tool_call

APPROVE = {"decisions": [{"type": "approve"}]}


def served(kit: Any, command: Command[Any], user: str | None = None, thread: str = "t") -> Any:
    conf: dict[str, Any] = {"thread_id": thread}
    if user is not None:
        conf["langgraph_auth_user"] = {"identity": user}
    return kit.runtime.graph.invoke(command, {"configurable": conf}, context=RunContext(store=kit.store))


def only_interrupt(kit: Any, thread: str = "t") -> Any:
    (interrupt,) = kit.runtime.state(thread).interrupts
    return interrupt


def refused_reason(interrupt: Any) -> str:
    value = interrupt.value
    reason = str(value["refused"]["reason"])
    assert value["action_requests"][0]["description"].startswith(f"Refused: {reason}")
    return reason


def test_goto_end_closes_an_escalation_as_the_signed_in_person(kit_on: Any) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 5000}), "escalated"])
    kit.runtime.send("t", "pay ann a lot")
    assert only_interrupt(kit).value["review_configs"][0]["allowed_decisions"] == ["reject", "respond"]
    served(kit, Command(goto=END), user="morgan")
    snap = kit.runtime.state("t")
    assert snap.interrupts == () and snap.next == () and snap.values["status"] == "closed"
    (resolved,) = kit.store.audit.entries("t", kind="resolved")
    assert (resolved.actor, resolved.data["resolution"]) == ("morgan", "close")
    assert kit.bank.payments() == [] and kit.runtime.pending("t") == []
    served(kit, Command(goto=END), user="morgan")  # again, on a thread with nothing pending: nothing
    assert len(kit.store.audit.entries("t", kind="resolved")) == 1


@pytest.mark.parametrize(("amount", "user", "why"), [
    (50, "morgan", "closes escalated cases only"),
    (5000, None, "identified approver is required"),
    (5000, "lee", "cannot resolve escalations"),
], ids=["on-an-approval", "nobody-signed-in", "not-a-receiver"])
def test_a_refused_goto_end_is_asked_again_with_the_reason_and_stays_decidable(kit_on: Any, amount: int,
                                                                              user: str | None, why: str) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": amount}), "ok"])
    kit.runtime.send("t", "pay ann")
    first = only_interrupt(kit)
    for attempt in (1, 2):  # each attempt is refused on its own, and says so
        served(kit, Command(goto=END), user=user)
        again = only_interrupt(kit)
        assert again.id != first.id and why in refused_reason(again)
        assert len(kit.store.audit.entries("t", kind="refused")) == attempt
        (item,) = kit.runtime.pending("t")
        assert item.interrupt_id == again.id
        first = again
    assert kit.bank.payments() == []
    if amount == 50:
        kit.runtime.approve(kit.runtime.pending("t")[0], approver="lee")
        assert kit.bank.payments() == [("ann", 50.0, 0)]
    else:
        kit.runtime.resolve(kit.runtime.pending("t")[0], approver="morgan", note="handled")
        assert kit.runtime.result("t").status == "closed" and kit.bank.payments() == []


BAD = [
    pytest.param({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "exactly one decision", id="two"),
    pytest.param({"decisions": []}, "exactly one decision", id="none"),
    pytest.param({"decisions": [{"type": "respond", "message": "x"}]}, "not allowed", id="respond-on-approval"),
    pytest.param({"decisions": [{"type": "approve"}], "approver": "sam"}, "authenticated user", id="other-approver"),
    pytest.param({"decisions": [{"type": "edit", "edited_action": {"name": "pay"}}]}, "'args'", id="edit-no-args"),
    pytest.param({"decisions": [{"type": "reject"}]}, "needs a reason", id="reject-no-reason"),
    pytest.param({"decisions": [{"type": "approve"}], "evil": 1}, "unknown field", id="unknown-field"),
    pytest.param("approve", "must be an object", id="not-an-object"),
]


@pytest.mark.parametrize(("payload", "why"), BAD)
def test_a_refused_decision_comes_back_in_the_next_interrupt_and_nothing_runs(kit_on: Any, payload: Any,
                                                                             why: str) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    kit.runtime.send("t", "pay ann 50")
    out = served(kit, Command(resume=payload), user="lee")
    (returned,) = out["__interrupt__"]  # what the client that sent it receives
    assert why in refused_reason(returned) and returned.id == only_interrupt(kit).id
    assert kit.bank.payments() == [] and kit.store.audit.entries("t", kind="refused")[0].data["error"]
    served(kit, Command(resume=APPROVE), user="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]


def test_the_requester_approving_their_own_call_is_refused_with_the_reason(kit_on: Any) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    kit.runtime.send("t", "pay ann 50", actor="lee")  # lee is the conversation's end user here
    out = served(kit, Command(resume=APPROVE), user="lee")
    assert "cannot also decide it" in refused_reason(out["__interrupt__"][0])
    served(kit, Command(resume=APPROVE), user="sam")
    assert kit.bank.payments() == [("ann", 50.0, 0)]


def test_an_edit_with_numbers_as_strings_is_validated_and_decided_again(kit_on: Any) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    kit.runtime.send("t", "pay ann 50")
    edit = {"decisions": [{"type": "edit", "edited_action": {"name": "pay", "args": {"to": "ann", "amount": "5"}}}]}
    served(kit, Command(resume=edit), user="lee")
    assert kit.bank.payments() == [("ann", 5.0, 0)]  # within limits: no second approval
    assert [e.kind for e in kit.store.audit.entries("t")].count("edited") == 1


def test_an_edit_to_another_tool_gets_that_tools_policy_not_the_editors_approval(kit_on: Any) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "ok"])
    kit.runtime.send("t", "pay ann 50")
    edit = {"decisions": [{"type": "edit", "edited_action": {"name": "close_account", "args": {"account": "ann"}}}]}
    out = served(kit, Command(resume=edit), user="morgan")
    (asked,) = out["__interrupt__"]
    assert asked.value["action_requests"][0]["name"] == "close_account" and asked.value["requested_by"] == "morgan"
    out = served(kit, Command(resume=APPROVE), user="morgan")  # the editor asked for it: not theirs to approve
    assert "cannot also decide it" in refused_reason(out["__interrupt__"][0])
    assert kit.bank.closed() == [] and kit.bank.payments() == []


def test_two_decisions_for_one_interrupt_run_it_once(kit_on: Any) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid", "nothing more"])
    kit.runtime.send("t", "pay ann 50")
    served(kit, Command(resume=APPROVE), user="lee")
    served(kit, Command(resume=APPROVE), user="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert [e.kind for e in kit.store.audit.entries("t")].count("approved") == 1


def test_a_resume_keyed_to_a_stale_interrupt_is_an_error_and_writes_nothing(kit_on: Any) -> None:
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    kit.runtime.send("t", "pay ann 50")
    stale = only_interrupt(kit).id
    served(kit, Command(resume={"decisions": [{"type": "approve"}], "approver": "sam"}), user="lee")  # refused
    live = only_interrupt(kit).id
    with pytest.raises(UnknownInterruptError):
        served(kit, Command(resume={stale: APPROVE}), user="lee")
    assert only_interrupt(kit).id == live and kit.bank.payments() == []
    served(kit, Command(resume={live: APPROVE}), user="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]


def _escalation_then_payment(kit_on: Any) -> Any:
    calls = [tool_call("pay", {"to": "bob", "amount": 5000}, id="c_big"),
             tool_call("pay", {"to": "ann", "amount": 50}, id="c_small")]
    kit = kit_on([calls, "ok", "ok"])
    kit.runtime.send("t", "pay both")
    first = only_interrupt(kit)  # one waits on a person; the other waits its turn
    assert first.value["kind"] == "escalation" and len(kit.runtime.pending("t")) == 1
    return kit


def test_closing_a_case_answers_the_calls_still_waiting_and_runs_none(kit_on: Any) -> None:
    kit = _escalation_then_payment(kit_on)
    served(kit, Command(goto=END), user="morgan")
    snap = kit.runtime.state("t")
    assert snap.interrupts == () and snap.values["status"] == "closed" and kit.bank.payments() == []
    (closed,) = [e for e in kit.store.audit.entries("t", kind="denied") if e.data.get("rule") == "case_closed"]
    assert closed.data["reason"] == "the case was closed"
    tool_messages = [m for m in snap.values["messages"] if getattr(m, "tool_call_id", None) == "c_small"]
    assert len(tool_messages) == 1 and "Not run" in tool_messages[0].content


def test_a_handed_back_case_lets_the_next_call_be_asked(kit_on: Any) -> None:
    kit = _escalation_then_payment(kit_on)
    reject = {"decisions": [{"type": "reject", "message": "not this one; carry on"}]}
    out = served(kit, Command(resume=reject), user="morgan")  # Agent Chat UI's reject: hand back
    (resolved,) = kit.store.audit.entries("t", kind="resolved")
    assert resolved.data["resolution"] == "return"
    (asked,) = out["__interrupt__"]
    assert asked.value["kind"] == "approval" and asked.value["action_requests"][0]["args"]["to"] == "ann"
    served(kit, Command(resume=APPROVE), user="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert kit.runtime.state("t").interrupts == ()


def test_a_refused_goto_end_between_two_approvals_keeps_the_first(kit_on: Any) -> None:
    """Asked again in a new task, a four-eyes approval still holds the approval given before."""
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 500}), "paid"])
    kit.runtime.send("t", "pay ann 500")
    served(kit, Command(resume=APPROVE), user="lee")
    served(kit, Command(goto=END), user="morgan")
    again = only_interrupt(kit)
    assert "closes escalated cases only" in refused_reason(again)
    assert [a["approver"] for a in again.value["approvals_given"]] == ["lee"]
    out = served(kit, Command(resume=APPROVE), user="lee")  # the same person twice is still one
    assert "already approved" in refused_reason(out["__interrupt__"][0]) and kit.bank.payments() == []
    served(kit, Command(resume=APPROVE), user="sam")
    assert kit.bank.payments() == [("ann", 500.0, 0)]


def test_four_eyes_through_the_server_counts_both_signed_in_approvers(kit_on: Any) -> None:
    """The first approval (no approver field: the signed-in user's) is replayed when the node runs
    again for the second; it stays lee's, not refused for naming nobody."""
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 500}), "paid"])
    kit.runtime.send("t", "pay ann 500")
    out = served(kit, Command(resume=APPROVE), user="lee")
    assert [a["approver"] for a in out["__interrupt__"][0].value["approvals_given"]] == ["lee"]
    served(kit, Command(resume=APPROVE), user="sam")
    assert kit.bank.payments() == [("ann", 500.0, 0)]
    assert [(e.kind, e.actor) for e in kit.store.audit.entries("t") if e.kind in ("approved", "refused")] == [
        ("approved", "lee"), ("approved", "sam")]


def test_goto_end_reaches_a_graph_compiled_from_the_builder(kit_on: Any) -> None:
    """A custom graph compiled from ``PermissionLayer.builder()`` takes "Mark as Resolved" too."""
    from agent_kit import AgentRuntime
    from agent_kit.graph import layer_of

    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 5000}), "escalated"])
    kit.runtime = AgentRuntime(layer_of(kit.graph).builder().compile(), store=kit.store)
    kit.runtime.send("t", "pay ann a lot")
    served(kit, Command(goto=END), user="morgan")
    assert kit.runtime.state("t").interrupts == () and kit.runtime.result("t").status == "closed"


def test_a_new_message_while_a_call_waits_on_a_person_closes_it_visibly_never_an_orphan(kit_on: Any) -> None:
    """A served graph without its auth handler takes a message while an approval waits; LangGraph runs
    the input from the start and the interrupt is gone. The waiting call is answered "not run:
    superseded", leaves the inbox, is audited, and a resume of the gone interrupt is an error."""
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "Sure, what else?"])
    kit.runtime.send("t", "pay ann")
    gone = only_interrupt(kit)
    assert [i.interrupt_id for i in kit.runtime.pending("t")] == [gone.id]
    served(kit, {"messages": [{"role": "user", "content": "hello?"}]}, user="customer:abc")  # type: ignore[arg-type]
    snap = kit.runtime.state("t")
    assert snap.interrupts == () and kit.runtime.pending("t") == []
    kinds = [(m.type, getattr(m, "tool_call_id", None)) for m in snap.values["messages"]]
    call = snap.values["messages"][1].tool_calls[0]["id"]
    assert kinds[1:] == [("ai", None), ("tool", call), ("human", None), ("ai", None)], kinds
    assert "superseded" in snap.values["messages"][2].content
    assert snap.values["messages"][3].content == "hello?"
    (entry,) = [e for e in kit.store.audit.entries("t", kind="refused") if e.data.get("rule") == "superseded"]
    assert (entry.tool, entry.interrupt_id, entry.actor) == ("pay", gone.id, "customer:abc")
    with pytest.raises(UnknownInterruptError):
        served(kit, Command(resume={gone.id: APPROVE}), user="lee")
    assert kit.bank.payments() == []


def _shape(tp: Any) -> Any:
    """A type with TypedDicts spelled out (keys, required keys, value shapes), to compare across modules."""
    from typing import get_args, get_origin, get_type_hints

    from typing_extensions import is_typeddict

    if is_typeddict(tp):  # (NotRequired kept as it is written: required-key sets differ by how they are built)
        return ("TypedDict", {k: _shape(v) for k, v in get_type_hints(tp, include_extras=True).items()})
    origin = get_origin(tp)
    return (origin, tuple(_shape(a) for a in get_args(tp))) if origin is not None else tp


def test_the_interrupt_request_is_langchains_hitl_request_field_for_field() -> None:
    from langchain.agents.middleware import human_in_the_loop as hitl

    from agent_kit import types

    assert _shape(types.ActionRequest) == _shape(hitl.ActionRequest)
    assert _shape(types.ReviewConfig) == _shape(hitl.ReviewConfig)
    assert _shape(types.DecisionType) == _shape(hitl.DecisionType)
    ours, theirs = _shape(types.InterruptRequest), _shape(hitl.HITLRequest)
    assert {k: ours[1][k] for k in theirs[1]} == theirs[1]  # every HITLRequest field, the same


def test_every_request_the_graph_asks_has_the_typed_shape(kit_on: Any) -> None:
    from typing import get_type_hints

    from agent_kit.types import InterruptRequest

    known, required = set(get_type_hints(InterruptRequest)), InterruptRequest.__required_keys__
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "asked", tool_call("pay", {"to": "bo", "amount": 5000}),
                  "escalated"])
    kit.runtime.send("t", "pay ann")
    served(kit, Command(resume={"decisions": [{"type": "approve"}]}), user="ann")  # refused: not an approver
    asked = [only_interrupt(kit).value]
    assert "refused" in asked[0]
    kit.runtime.reject(kit.runtime.pending("t")[0], approver="lee", reason="no")
    kit.runtime.send("t", "pay bo a lot")
    asked.append(only_interrupt(kit).value)
    assert [a["kind"] for a in asked] == ["approval", "escalation"]
    for request in asked:
        assert required <= set(request) and set(request) <= known, set(request) ^ known
