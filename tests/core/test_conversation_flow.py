"""What happens between turns: messages while a run waits, unparsable tool calls, and several
runtimes over one graph (on SQLite and Postgres)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from agent_kit import AgentRuntime, layer_of
from agent_kit.testing import tool_call


def _saw(texts: list[str]):
    """A scripted step that records what the model was shown and answers."""
    def step(messages: list[Any]) -> str:
        texts.extend(m.content for m in messages if isinstance(m, HumanMessage))
        return "noted your follow-up"
    return step


def test_messages_sent_while_the_run_waits_are_kept_audited_and_seen_after_the_decision(kit_on):
    seen: list[str] = []
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid", _saw(seen)])
    kit.runtime.send("t", "pay ann 50")
    waiting = kit.runtime.send("t", "also, my address changed")
    assert waiting.status == "paused"
    assert "needs approval" in waiting.reply and "noted your message" in waiting.reply
    again = kit.runtime.send("t", "hello? any news")
    assert again.status == "paused"
    held = kit.store.audit.entries("t", kind="message_held")
    assert [e.data["text"] for e in held] == ["also, my address changed", "hello? any news"]
    assert all(e.actor == "customer" for e in held)
    assert seen == []  # the model has not been asked while the person decides

    (item,) = kit.runtime.pending("t", kind="approval")
    result = kit.runtime.approve(item, approver="lee")
    assert kit.bank.payments() == [("ann", 50.0, 0)]
    assert result.reply == "noted your follow-up"
    assert seen[-2:] == ["also, my address changed", "hello? any news"]
    humans = [m.content for m in kit.runtime.state("t").values["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["pay ann 50", "also, my address changed", "hello? any news"]
    delivered = kit.store.audit.entries("t", kind="message_delivered")
    assert sorted(e.data["held"] for e in delivered) == [e.seq for e in held]
    assert kit.store.audit.verify().ok


def test_held_messages_wait_until_the_last_pending_decision(kit_on):
    seen: list[str] = []
    calls = [tool_call("pay", {"to": to, "amount": 50}, id=f"c_{to}") for to in ("ann", "bob")]
    kit = kit_on([calls, "done with both", _saw(seen)])
    kit.runtime.send("t", "pay both")
    kit.runtime.send("t", "please hurry")
    (first,) = kit.runtime.pending("t", kind="approval")  # one waits on a person at a time
    r = kit.runtime.approve(first, approver="lee")
    assert r.status == "paused" and seen == []
    assert not kit.store.audit.entries("t", kind="message_delivered")
    (second,) = kit.runtime.pending("t", kind="approval")
    assert (first.action["args"]["to"], second.action["args"]["to"]) == ("ann", "bob")
    r = kit.runtime.reject(second, approver="lee", reason="not bob")
    assert seen[-1] == "please hurry" and r.reply == "noted your follow-up"


def test_a_held_message_is_delivered_with_the_next_turn_if_the_run_was_decided_elsewhere(kit_on):
    """Decided straight through the graph (as a served graph is): the next turn brings it along."""
    from langgraph.types import Command

    seen: list[str] = []
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 5000}), "escalated", _saw(seen)])
    kit.runtime.send("t", "pay ann a lot")
    kit.runtime.send("t", "it is urgent")
    (intr,) = kit.runtime.state("t").interrupts
    kit.runtime.graph.invoke(Command(resume={intr.id: {"decisions": [{"type": "respond", "message": "no"}],
                                                      "approver": "morgan", "resolution": "return"}}),
                             {"configurable": {"thread_id": "t"}}, context=None)
    kit.runtime.send("t", "well?")
    assert seen[-2:] == ["it is urgent", "well?"]


def test_unparsable_tool_calls_are_refused_audited_and_answered(kit_on):
    broken = AIMessage(content="", invalid_tool_calls=[
        {"name": "pay", "args": '{"to": "ann", "amount": 5', "id": "bad1", "error": "Unterminated string",
         "type": "invalid_tool_call"},
        {"name": None, "args": "}{", "id": None, "error": None, "type": "invalid_tool_call"},
    ])
    seen: list[Any] = []

    def after(messages: list[Any]) -> str:
        seen.extend(m for m in messages if m.type == "tool")
        return "let me try again"

    kit = kit_on([broken, after])
    r = kit.runtime.send("t", "pay ann 5")
    assert r.reply == "let me try again"
    assert kit.bank.payments() == []
    denied = kit.store.audit.entries("t", kind="denied")
    assert len(denied) == 2 and all(e.data["rule"] == "validation" for e in denied)
    assert "could not be parsed (Unterminated string)" in denied[0].data["reason"]
    assert [m.tool_call_id for m in seen] == ["bad1", "invalid_call_1"]
    assert all(m.status == "error" and "could not be parsed" in m.content for m in seen)
    assert kit.runtime.state("t").values["strikes"] == 2


def test_unparsable_tool_calls_count_as_strikes_until_a_person_takes_over(kit_factory):
    broken = AIMessage(content="", invalid_tool_calls=[
        {"name": "pay", "args": "{", "id": f"bad{i}", "error": "bad json", "type": "invalid_tool_call"}
        for i in range(3)])
    kit = kit_factory([broken, "unreachable"])
    r = kit.runtime.send("t", "pay")
    assert r.status == "escalated"


def test_two_runtimes_over_one_graph_each_write_only_their_own_store(kit_on, open_store):
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    graph = kit.graph
    name, layer, builder, saver = graph.name, layer_of(graph), graph.builder, graph.checkpointer
    store_a, store_b = open_store("a"), open_store("b")
    a, b = AgentRuntime(graph, store=store_a), AgentRuntime(graph, store=store_b)
    # The graph given is left exactly as it was: not recompiled, not renamed, its layer unchanged.
    assert (graph.name, layer_of(graph), graph.builder, graph.checkpointer) == (name, layer, builder, saver)
    assert a.graph.builder is builder and b.graph.builder is builder and a.graph.name == name
    assert layer.kernel.default_store is kit.store

    a.send("ta", "pay ann 50")
    b.send("tb", "pay ann 50")
    (item_a,) = a.pending("ta")
    (item_b,) = b.pending("tb")
    assert a.pending("tb") == [] and b.pending("ta") == []
    a.approve(item_a, approver="lee")
    b.approve(item_b, approver="sam")
    threads_a = {e.thread_id for e in store_a.audit.entries()}
    threads_b = {e.thread_id for e in store_b.audit.entries()}
    assert threads_a == {"ta"} and threads_b == {"tb"}
    assert [e.actor for e in store_a.audit.entries(kind="approved")] == ["lee"]
    assert [e.actor for e in store_b.audit.entries(kind="approved")] == ["sam"]
    assert kit.store.audit.entries() == []  # the graph's own store got nothing from either
    assert [r.thread_id for r in store_a.ledger.for_thread("ta")] == ["ta"] and store_b.ledger.for_thread("ta") == []
    assert store_a.audit.verify().ok and store_b.audit.verify().ok


def test_a_held_message_delivered_before_a_crash_is_never_shown_twice(kit_on, monkeypatch):
    import pytest

    seen: list[str] = []
    kit = kit_on([tool_call("pay", {"to": "ann", "amount": 50}), "paid", _saw(seen), "and now this"])
    kit.runtime.send("t", "pay ann 50")
    kit.runtime.send("t", "note this")
    (item,) = kit.runtime.pending("t", kind="approval")
    real = kit.runtime._mark_delivered

    def crash_after_delivery(thread: str, held: list[Any]) -> None:
        if held:
            raise RuntimeError("process died before the delivery was recorded")
        real(thread, held)

    monkeypatch.setattr(kit.runtime, "_mark_delivered", crash_after_delivery)
    with pytest.raises(RuntimeError):
        kit.runtime.approve(item, approver="lee")
    monkeypatch.setattr(kit.runtime, "_mark_delivered", real)
    r = kit.runtime.send("t", "and now?")
    assert r.reply == "and now this"
    humans = [m.content for m in kit.runtime.state("t").values["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["pay ann 50", "note this", "and now?"]
    assert len(kit.store.audit.entries("t", kind="message_delivered")) == 1
