"""The permission layer end to end on a tiny back office: every mode, parallel calls, edits."""

from __future__ import annotations

import itertools

import pytest
from langchain.agents.middleware.human_in_the_loop import HITLRequest
from pydantic import TypeAdapter

from agent_kit.testing import tool_call


def test_allowed_call_runs_once_and_is_audited(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 5}), "done"])
    result = kit.runtime.send("t", "pay ann 5")
    assert result.status == "replied" and result.reply == "done"
    assert kit.bank.payments() == [("ann", 5.0, 0)]
    assert kit.kinds() == ["started", "executed"]


def test_read_only_result_hides_fields_from_the_model_and_audits_them(kit_factory):
    kit = kit_factory([tool_call("lookup", {"account": "a1"}), "ok"])
    kit.runtime.send("t", "look")
    tool_msg = kit.runtime.state("t").values["messages"][-2]
    assert "s3cr3t" not in tool_msg.content and "x@example.com" not in tool_msg.content
    assert '"balance": 100.0' in tool_msg.content
    (entry,) = kit.store.audit.entries("t")
    assert entry.kind == "read" and entry.data["hidden_fields"] == ["owner", "secret"]


def _nodes_run(kit, thread: str, text: str) -> list[str]:
    from langchain_core.messages import HumanMessage

    chunks = kit.runtime.graph.stream({"messages": [HumanMessage(content=text)]}, {"configurable": {"thread_id": thread}},
                              stream_mode="updates", durability="sync")
    return [node for chunk in chunks for node in chunk]


def test_a_read_cleared_to_run_runs_in_the_permission_step_and_a_change_in_a_step_of_its_own(kit_factory):
    """A read changes nothing, so it needs no checkpointed step of its own before it runs (one
    step fewer per read: the step is what a bare ToolNode would take); a change still gets the
    execute step, whose start is recorded before its effect."""
    kit = kit_factory([tool_call("lookup", {"account": "a1"}), "ok", tool_call("pay", {"to": "ann", "amount": 5}), "paid"])
    assert _nodes_run(kit, "t", "look") == ["agent", "permission", "agent"]
    assert '"balance": 100.0' in kit.runtime.state("t").values["messages"][-2].content
    assert kit.kinds() == ["read"]
    assert _nodes_run(kit, "t", "pay") == ["agent", "permission", "execute", "agent"]
    assert kit.kinds() == ["read", "started", "executed"] and kit.bank.payments() == [("ann", 5.0, 0)]


def test_several_reads_of_one_message_run_in_parallel_execute_steps(kit_factory):
    calls = [tool_call("lookup", {"account": "a1"}, id="c_1"), tool_call("lookup", {"account": "a2"}, id="c_2")]
    kit = kit_factory([calls, "ok"])
    assert _nodes_run(kit, "t", "look") == ["agent", "permission", "execute", "execute", "agent"]
    answered = [m.tool_call_id for m in kit.runtime.state("t").values["messages"] if m.type == "tool"]
    assert answered == ["c_1", "c_2"] and kit.kinds() == ["read", "read"]


@pytest.mark.parametrize("reads", [1, 2])
def test_reads_beside_a_call_that_waits_are_answered_at_once_and_the_model_sees_every_answer(kit_factory, reads):
    calls = [tool_call("lookup", {"account": "a1"}, id="c_look"), tool_call("pay", {"to": "ann", "amount": 50}, id="c_pay"),
             tool_call("lookup", {"account": "a2"}, id="c_look2")][:reads + 1]
    kit = kit_factory([calls, "done"])
    kit.runtime.send("t", "look and pay")
    looks = ["c_look", "c_look2"][:reads]
    answered = [m.tool_call_id for m in kit.runtime.state("t").values["messages"] if m.type == "tool"]
    assert answered == looks  # the reads ran; the payment waits on a person
    (item,) = kit.runtime.pending("t")
    result = kit.runtime.approve(item, approver="lee")
    assert result.status == "replied" and kit.bank.payments() == [("ann", 50.0, 0)]
    messages = kit.runtime.state("t").values["messages"]
    assert [(m.type, getattr(m, "tool_call_id", None)) for m in messages] == [
        ("human", None), ("ai", None), *[("tool", c) for c in looks], ("tool", "c_pay"), ("ai", None)]
    assert messages[-1].content == "done"  # the model was asked for its reply once, with every answer in
    assert kit.kinds().count("read") == reads and kit.kinds().count("executed") == 1


def test_a_read_made_stricter_by_a_running_total_of_its_thread_does_not_run(kit_on):
    """A lone call is routed by the decision made when it was read from the model's message: that
    decision counts the thread's own totals (a rule on a per-thread total was blind to it there,
    and a read cleared on it ran)."""
    import copy

    from tests.core.conftest import POLICY

    policy = copy.deepcopy(POLICY)
    policy["tools"]["lookup"]["aggregates"] = {"paid_here": {"count": True, "tools": ["pay"], "per": "thread"}}
    policy["tools"]["lookup"]["rules"] = [{"id": "after_payment", "when": {"aggregates.paid_here": {"gt": 1}},
                                           "mode": "escalate"}]
    look = tool_call("lookup", {"account": "a1"})
    kit = kit_on([look, "looked", tool_call("pay", {"to": "ann", "amount": 5}), "paid", look, "looked"], policy)
    assert kit.runtime.send("t", "look").status == "replied"  # nothing paid in this thread yet: a read
    assert kit.runtime.send("t", "pay").status == "replied"
    assert kit.runtime.send("t", "look").status == "escalated"
    assert kit.kinds() == ["read", "started", "executed", "escalated"]


def test_a_confirmation_asked_by_a_running_total_of_its_thread_is_asked_and_runs_once_given(kit_on):
    """The verification gate decides with its thread: deciding without it, it saw no total, asked
    nothing and sent the call on, to be sent back to it until the recursion limit wedged the thread."""
    import copy

    from tests.core.conftest import POLICY

    policy = copy.deepcopy(POLICY)
    policy["tools"]["pay"] = {"mode": "execute_limited", "aggregates": {"paid_here": {"count": True, "per": "thread"}},
                              "rules": [{"id": "second_pay", "when": {"aggregates.paid_here": {"gt": 1}},
                                         "verification": "confirm"}]}
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 5}), "paid", tool_call("pay", {"to": "bob", "amount": 5}),
                  "paid again"], policy)
    assert kit.runtime.send("t", "pay ann").status == "replied"
    asked = kit.runtime.send("t", "pay bob")
    assert asked.status == "paused" and [p["kind"] for p in asked.pending] == ["verification"]
    assert kit.runtime.send("t", "yes").status == "replied"
    assert kit.bank.payments() == [("ann", 5.0, 0), ("bob", 5.0, 0)]


@pytest.mark.parametrize("beside", ["read", "denied call"])
def test_a_call_queued_behind_an_escalation_is_not_run_once_a_person_closes_the_case(kit_on, beside):
    """The agent is not woken beside a call that waits on a person: it would send the calls queued
    behind it on their way at once (asked, then paid after the case was closed)."""
    other = tool_call("lookup", {"account": "a1"}, id="c_other") if beside == "read" else \
        tool_call("drop_tables", {}, id="c_other")
    kit = kit_on([[tool_call("pay", {"to": "eve", "amount": 2000}, id="c_big"),
                   tool_call("pay", {"to": "bob", "amount": 60}, id="c_60"), other], "done"])
    assert kit.runtime.send("t", "pay them").status == "escalated"
    assert [a["tool_call_id"] for a in kit.runtime.state("t").values["queued"]] == ["c_60"]
    (item,) = kit.runtime.pending("t")
    assert kit.runtime.resolve(item, approver="morgan", note="fraud, closed").status == "closed"
    assert kit.runtime.pending("t") == [] and kit.bank.payments() == []
    answers = {m.tool_call_id: m.content for m in kit.runtime.state("t").values["messages"] if m.type == "tool"}
    assert answers["c_60"].startswith("Not run: a person closed the case") and len(answers) == 3
    assert kit.store.audit.verify().ok


def _edit_into_an_escalation_then_close_the_case(kit):
    """Send the message; the payment waiting on a lead is edited to 2,000 (decided again: escalated);
    a person closes the case. Nothing ran; the thread's messages."""
    kit.runtime.send("t", "go")
    (asked,) = kit.runtime.pending("t")
    kit.runtime.approve(asked, approver="lee", edit={"name": "pay", "args": {"to": "ann", "amount": 2000}})
    (escalated,) = kit.runtime.pending("t")
    assert escalated.kind == "escalation"
    assert kit.runtime.resolve(escalated, approver="morgan", note="fraud, closed").status == "closed"
    assert kit.runtime.pending("t") == [] and kit.bank.closed() == [] and kit.bank.payments() == []
    return kit.runtime.state("t").values["messages"]


def test_a_call_queued_behind_an_edit_decided_into_an_escalation_is_not_run_once_the_case_is_closed(kit_on):
    """Whoever wakes the agent (here the message's two reads, each in an execute step, while the
    edited payment is decided again into an escalation), it sends the queue's next call on its way
    only when every other call of the message is answered."""
    kit = kit_on([[tool_call("pay", {"to": "ann", "amount": 50}, id="c_pay"),
                   tool_call("close_account", {"account": "a1"}, id="c_close"),
                   tool_call("lookup", {"account": "a1"}, id="c_look1"),
                   tool_call("lookup", {"account": "a2"}, id="c_look2")], "done"])
    messages = _edit_into_an_escalation_then_close_the_case(kit)
    answers = {m.tool_call_id: m.content for m in messages if m.type == "tool"}
    assert answers["c_close"].startswith("Not run: a person closed the case") and len(answers) == 4


def test_calls_queued_when_the_turn_reaches_the_strike_limit_go_to_a_person_not_on_their_way(kit_on):
    """Two denials, then the waiting payment rejected: three strikes with a call still queued. A
    person takes over with that call, not yet run (it was asked and run, and the person was then
    handed a call that had already run)."""
    kit = kit_on([[tool_call("drop_a", {}, id="d1"), tool_call("drop_b", {}, id="d2"),
                   tool_call("pay", {"to": "a", "amount": 50}, id="c_pay"),
                   tool_call("close_account", {"account": "a1"}, id="c_close")], "done"])
    kit.runtime.send("t", "go")
    (asked,) = kit.runtime.pending("t")
    result = kit.runtime.reject(asked, approver="lee", reason="no")
    assert result.status == "escalated"
    (escalated,) = kit.runtime.pending("t")
    assert escalated.kind == "escalation" and escalated.tool_call_id == "c_close" and escalated.rule == "max_strikes"
    assert kit.runtime.resolve(escalated, approver="morgan", note="not today").status == "closed"
    assert kit.bank.closed() == [] and kit.bank.payments() == []
    answers = {m.tool_call_id for m in kit.runtime.state("t").values["messages"] if m.type == "tool"}
    assert answers == {"d1", "d2", "c_pay", "c_close"}


def test_a_queued_call_is_asked_and_its_approval_window_starts_only_when_its_turn_comes(kit_on):
    import time

    from tests.core.conftest import POLICY

    policy = {**POLICY, "tools": {**POLICY["tools"], "pay": {**POLICY["tools"]["pay"], "approval_expiry": 2}}}
    kit = kit_on([[tool_call("close_account", {"account": "a1"}, id="c_close"),
                   tool_call("pay", {"to": "bob", "amount": 60}, id="c_60"),
                   tool_call("lookup", {"account": "a1"}, id="c_look")], "done"], policy)
    kit.runtime.send("t", "close and pay")
    (first,) = kit.runtime.pending("t")
    assert first.action["name"] == "close_account"
    time.sleep(2.5)  # longer than the payment's window: it must not have started yet
    kit.runtime.approve(first, approver="morgan")
    (second,) = kit.runtime.pending("t")
    assert second.action["name"] == "pay"
    assert kit.runtime.approve(second, approver="lee").status == "replied"
    assert kit.bank.payments() == [("bob", 60.0, 0)]


@pytest.mark.parametrize("mode", ["read_only", "execute_limited", "draft_only"])
def test_a_tool_that_calls_interrupt_fails_with_the_reason_and_the_thread_goes_on(kit_on, mode):
    """A tool cannot pause the run (its pause would be no inbox item, resumed by no one the policy
    names; a change would be found begun on resume, its outcome unknown): its call fails, the model
    hears why, and nothing waits."""
    from langchain_core.tools import tool
    from langgraph.types import interrupt

    from agent_kit import Mode, register
    from tests.core.conftest import POLICY

    @tool
    def ask_first(account: str) -> str:
        """Ask someone before acting on an account."""
        return str(interrupt({"question": f"ok for {account}?"}))

    def draft(account: str, idempotency_key: str) -> str:  # a draft_only tool's draft, written by the app
        return str(interrupt({"question": f"draft for {account}?"}))

    policy = {**POLICY, "tools": {**POLICY["tools"], "ask_first": {"mode": mode}}}
    extra = {"read_only": {}, "execute_limited": {"irreversible": True},
             "draft_only": {"irreversible": True, "changes": ["drafts"], "draft": draft}}[mode]
    kit = kit_on([tool_call("ask_first", {"account": "a1"}), "told"], policy,
                 tools=[register(ask_first, Mode(mode), **extra)])
    result = kit.runtime.send("t", "go")
    assert result.status == "replied" and result.pending == [] and kit.runtime.state("t").interrupts == ()
    said = kit.runtime.state("t").values["messages"][-2].content
    assert "ask_first called interrupt(): a tool cannot pause the run" in said
    assert kit.kinds()[-1] == "failed"
    if mode != "read_only":
        assert [(r.tool, r.status) for r in kit.store.ledger.for_thread("t")] == [("ask_first", "failed")]


@pytest.mark.parametrize("ids", [("x", "x", "x"), (None, None, None), ("call_1", None, "call_1"), ("", "", "x_1")],
                         ids=["repeated", "missing", "mixed", "empty"])
def test_calls_of_one_message_without_ids_of_their_own_each_get_one_and_each_an_answer(kit_on, ids):
    """Some model servers send no tool call ids, or repeat one within a message for another call:
    each call gets an id of its own, so each is decided, answered and recorded apart (a call
    sharing an id was dropped: never asked, never answered, the model replying while it stayed
    queued). A call sent twice whole (same id, tool and arguments) stays one call
    (tests/core/test_attack_one_approval.py)."""
    from langchain_core.messages import AIMessage

    message = AIMessage(content="", tool_calls=[
        {"name": "lookup", "args": {"account": "a1"}, "id": ids[0], "type": "tool_call"},
        {"name": "pay", "args": {"to": "ann", "amount": 50}, "id": ids[1], "type": "tool_call"},
        {"name": "close_account", "args": {"account": "a1"}, "id": ids[2], "type": "tool_call"}])
    kit = kit_on([message, "done"])
    result = kit.runtime.send("t", "go")
    for approver in ("lee", "morgan"):
        (item,) = result.pending
        result = kit.runtime.approve(item, approver=approver)
    assert result.status == "replied" and result.reply == "done"
    assert kit.bank.payments() == [("ann", 50.0, 0)] and kit.bank.closed() == ["a1"]
    messages = kit.runtime.state("t").values["messages"]
    asked = [tc["id"] for tc in messages[1].tool_calls]
    assert len(set(asked)) == 3 and all(asked)
    assert sorted(m.tool_call_id for m in messages if m.type == "tool") == sorted(asked)


def test_a_call_sent_twice_whole_is_one_call_even_beside_another_call_with_its_id(kit_on):
    from langchain_core.messages import AIMessage

    calls = [{"name": "pay", "args": {"to": "ann", "amount": 5}, "id": "x", "type": "tool_call"},
             {"name": "pay", "args": {"to": "bob", "amount": 5}, "id": "x", "type": "tool_call"},
             {"name": "pay", "args": {"to": "bob", "amount": 5}, "id": "x", "type": "tool_call"}]
    kit = kit_on([AIMessage(content="", tool_calls=calls), "done"])
    assert kit.runtime.send("t", "go").status == "replied"
    assert sorted(kit.bank.payments()) == [("ann", 5.0, 0), ("bob", 5.0, 0)]


@pytest.mark.parametrize("clash", ["the model's unparsable call", "a refused call"])
def test_a_refused_call_never_shares_an_id_with_a_call_that_waits(kit_on, clash):
    """A refused call's answer under a waiting call's id made that call look answered: the agent,
    woken by the message's reads, sent the queue on, and after a person closed the case the
    queued account closure was asked and run."""
    from langchain_core.messages import AIMessage

    pay_id = "call_0" if clash == "the model's unparsable call" else "refused_call_4"
    calls = [{"name": "pay", "args": {"to": "ann", "amount": 50}, "id": pay_id, "type": "tool_call"},
             {"name": "close_account", "args": {"account": "a1"}, "id": "c", "type": "tool_call"},
             {"name": "lookup", "args": {"account": "x"}, "id": "l1", "type": "tool_call"},
             {"name": "lookup", "args": {"account": "y"}, "id": "l2", "type": "tool_call"}]
    invalid = []
    if clash == "the model's unparsable call":
        invalid = [{"name": "pay", "args": "{not json", "id": "call_0", "error": None, "type": "invalid_tool_call"}]
    else:
        calls.append({"name": "pay", "args": {"to": "bob", "amount": float("nan")}, "id": "z", "type": "tool_call"})
    kit = kit_on([AIMessage(content="", tool_calls=calls, invalid_tool_calls=invalid), "done"])
    messages = _edit_into_an_escalation_then_close_the_case(kit)
    ids = [tc["id"] for tc in messages[1].tool_calls] + [b["id"] for b in messages[1].invalid_tool_calls]
    answers = [m.tool_call_id for m in messages if m.type == "tool"]
    assert len(set(ids)) == len(ids) and sorted(answers) == sorted(ids)


def test_a_message_reaching_the_graph_while_a_call_waits_closes_it_though_the_model_reuses_its_ids(kit_on):
    """The model numbers its calls the same in every message (p, c): the calls of the earlier
    message are answered, the later ones wait. A message sent straight to the graph supersedes
    the waiting ones, each answered "not run" and its item gone (they were taken for answered:
    no answer, the item left listed with no interrupt behind it)."""
    from langchain_core.messages import HumanMessage

    from agent_kit.graph import RunContext

    kit = kit_on([[tool_call("pay", {"to": "a", "amount": 5}, id="p"), tool_call("lookup", {"account": "q"}, id="c")],
                  "one", [tool_call("pay", {"to": "a", "amount": 50}, id="p"),
                          tool_call("close_account", {"account": "z"}, id="c")], "two", "three"])
    kit.runtime.send("t", "first")
    assert kit.runtime.send("t", "second").status == "paused"
    kit.runtime.graph.invoke({"messages": [HumanMessage(content="never mind")]}, {"configurable": {"thread_id": "t"}},
                             context=RunContext(store=kit.store, actor="customer"), durability="sync")
    messages = kit.runtime.state("t").values["messages"]
    second = [m for m in messages if m.type == "ai" and m.tool_calls][1]
    after = messages[messages.index(second) + 1:]
    assert sorted(m.tool_call_id for m in after if m.type == "tool") == ["c", "p"]
    assert all("superseded" in m.content for m in after if m.type == "tool")
    assert kit.runtime.pending("t") == [] and kit.bank.payments() == [("a", 5.0, 0)]


def test_recommend_only_and_draft_only_never_run_the_tool(kit_factory):
    kit = kit_factory([[tool_call("suggest", {"action": "refund"}), tool_call("note", {"text": "hi"})], "ok"])
    kit.runtime.send("t", "go")
    assert sorted(kit.kinds()) == ["drafted", "recommended"]
    assert len(kit.store.drafts.list("t")) == 1
    assert kit.bank.payments() == []


def test_unknown_tool_is_denied_by_default(kit_factory):
    kit = kit_factory([tool_call("drop_tables", {}), "ok"])
    kit.runtime.send("t", "go")
    msgs = kit.runtime.state("t").values["messages"]
    assert "denied by default" in msgs[-2].content
    assert kit.kinds() == ["denied"]


def test_invalid_arguments_go_back_to_the_model_not_to_the_tool(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": "lots"}), "ok"])
    kit.runtime.send("t", "go")
    msgs = kit.runtime.state("t").values["messages"]
    assert "invalid arguments for pay" in msgs[-2].content and "amount" in msgs[-2].content
    assert kit.bank.payments() == []


def test_model_cannot_set_the_injected_idempotency_key(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 5, "idempotency_key": "mine"}), "ok"])
    kit.runtime.send("t", "go")
    assert kit.bank.payments() == []
    assert "set by agent_kit" in kit.runtime.state("t").values["messages"][-2].content


def test_gated_call_pauses_with_a_hitl_request_and_runs_once_after_approval(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    result = kit.runtime.send("t", "pay ann 50")
    assert result.status == "paused" and kit.bank.payments() == []
    snap = kit.runtime.state("t")
    (intr,) = snap.interrupts
    TypeAdapter(HITLRequest).validate_python(intr.value)
    assert intr.value["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    assert intr.value["kind"] == "approval" and intr.value["required_role"] == "lead"
    assert intr.value["rule"] == "pay_over_10" and len(intr.value["action_hash"]) == 64
    (item,) = kit.runtime.pending("t")
    assert item.interrupt_id == intr.id
    result = kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    assert result.status == "replied" and result.reply == "paid"
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert kit.kinds() == ["approval_requested", "approved", "started", "executed"]
    entries = kit.store.audit.entries("t")
    assert all(e.checkpoint_id and e.policy_version and e.at and e.thread_id == "t" for e in entries)
    assert {e.actor for e in entries} == {"policy", "lee", "agent"}
    assert entries[1].interrupt_id == intr.id and entries[1].data["role"] == "lead"
    assert kit.runtime.pending("t") == []


def test_rejected_call_never_executes_and_the_model_is_told_why(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "sorry"])
    kit.runtime.send("t", "pay")
    kit.runtime.reject(kit.runtime.pending("t", kind="approval")[0], approver="lee", reason="not this month")
    assert kit.bank.payments() == []
    msgs = kit.runtime.state("t").values["messages"]
    assert "not this month" in msgs[-2].content and "lee" in msgs[-2].content
    assert kit.kinds() == ["approval_requested", "rejected"]


CHOICES = list(itertools.product(["approve", "reject"], repeat=3))


@pytest.mark.parametrize("choices", CHOICES, ids=["-".join(c) for c in CHOICES])
def test_three_gated_calls_of_one_message_wait_on_a_person_one_at_a_time(kit_factory, choices):
    """One pending interrupt at a time (a client answering unkeyed always has exactly one to
    answer), in the message's order; each decided on its own, and none runs twice."""
    calls = [tool_call("pay", {"to": to, "amount": 20 + i}, id=f"c_{to}") for i, to in enumerate("abc")]
    kit = kit_factory([calls, "done"])
    kit.runtime.send("t", "pay all")
    for to, choice in zip("abc", choices, strict=True):
        (item,) = kit.runtime.pending("t")
        assert len(kit.runtime.state("t").interrupts) == 1
        assert item.action["args"]["to"] == to
        if choice == "reject":
            kit.runtime.reject(item, approver="lee", reason="no")
        else:
            kit.runtime.approve(item, approver="lee")
        assert all(n == 1 for n in _counts(kit.bank.payments()).values())
    assert sorted(p[0] for p in kit.bank.payments()) == [to for to, c in zip("abc", choices) if c == "approve"]
    assert kit.kinds().count("executed") == choices.count("approve")
    assert kit.kinds().count("rejected") == choices.count("reject")
    assert kit.kinds().count("approval_requested") == 3
    # Three rejections in one turn reach the policy's strike limit: a person takes over.
    assert kit.runtime.result("t").status == ("escalated" if choices.count("reject") == 3 else "replied")


def _counts(rows):
    out: dict[str, int] = {}
    for to, _, _ in rows:
        out[to] = out.get(to, 0) + 1
    return out


def test_edit_to_a_larger_amount_is_decided_again_and_may_escalate(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "ok"])
    kit.runtime.send("t", "pay")
    result = kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee", edit={"name": "pay", "args": {"to": "ann", "amount": 5000}})
    assert result.status == "escalated"
    assert kit.bank.payments() == []
    assert "edited" in kit.kinds() and "escalated" in kit.kinds()


def test_edit_to_a_smaller_amount_runs_within_limits(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "ok"])
    kit.runtime.send("t", "pay")
    kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee", edit={"name": "pay", "args": {"to": "ann", "amount": 5}})
    assert kit.bank.payments() == [("ann", 5.0, 0)]


def test_edit_to_another_tool_gets_that_tools_policy(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "ok"])
    kit.runtime.send("t", "pay")
    result = kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee", edit={"name": "close_account", "args": {"account": "ann"}})
    # close_account needs a boss; the editor's own approval does not count for the new action.
    assert result.status == "paused"
    (p,) = result.pending
    assert p["action"]["name"] == "close_account" and p["required_role"] == "boss"
    assert kit.bank.closed() == []
    kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="morgan")
    assert kit.bank.closed() == ["ann"] and kit.bank.payments() == []


def test_two_approvals_from_distinct_people(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 500}), "ok"])
    kit.runtime.send("t", "pay")
    kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    assert kit.runtime.result("t").status == "paused" and kit.bank.payments() == []
    from agent_kit import ApprovalError

    with pytest.raises(ApprovalError, match="already approved"):
        kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="sam")
    assert kit.bank.payments() == [("ann", 500.0, 0)]
    assert kit.kinds().count("approved") == 2


def test_repeated_denials_escalate_instead_of_looping(kit_factory):
    bad = tool_call("pay", {"to": "x", "amount": -1})
    kit = kit_factory([bad, bad, bad, "never"])
    result = kit.runtime.send("t", "pay")
    assert result.status == "escalated"
    assert result.pending[0]["rule"] == "max_strikes"


def test_frustrated_customer_escalates_by_policy(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 1}), "ok"])
    result = kit.runtime.send("t", "pay ann now!!!")
    assert result.status == "escalated" and kit.bank.payments() == []
    result = kit.runtime.resolve(kit.runtime.pending("t", kind="escalation")[0], approver="morgan", note="refunded by phone")
    assert result.status == "closed" and result.reply == "refunded by phone"
