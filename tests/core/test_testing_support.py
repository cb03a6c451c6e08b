"""The library's own test support: the scripted model and the programmatic approver."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from agent_kit.testing import ProgrammaticApprover, ScriptedChatModel, tool_call


def test_scripted_model_emits_its_steps_in_order_then_finishes():
    m = ScriptedChatModel(steps=[tool_call("pay", {"amount": 1}), "hello", lambda msgs: f"{len(msgs)} messages"])
    first = m.invoke([HumanMessage("x")])
    assert first.tool_calls[0]["name"] == "pay" and first.tool_calls[0]["id"]
    assert m.invoke([HumanMessage("x")]).content == "hello"
    assert m.invoke([HumanMessage("x"), HumanMessage("y")]).content == "2 messages"
    assert m.invoke([HumanMessage("x")]).content == "(script finished)"


def test_programmatic_approver_decides_through_the_public_resume_path(kit_factory):
    calls = [tool_call("pay", {"to": to, "amount": 50}, id=f"c_{to}") for to in ("ann", "bob", "cy")]
    kit = kit_factory([calls, "done"])
    kit.runtime.send("t", "pay them")

    def decide(item):
        to = item.action["args"]["to"]
        if to == "bob":
            return ("reject", "lee", "bob is not a customer")
        return ("approve", "sam")

    ProgrammaticApprover(kit.runtime, decide).run("t")
    assert sorted(p[0] for p in kit.bank.payments()) == ["ann", "cy"]
    assert kit.runtime.pending("t") == []
    approved = [e for e in kit.store.audit.entries("t", kind="approved")]
    assert {e.actor for e in approved} == {"sam"}


def test_pending_inbox_lists_every_paused_thread_without_reading_states(kit_factory):
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 50}), "ok"])
    kit.runtime.send("t", "pay")
    items = kit.store.inbox.list()
    assert [(i.thread_id, i.kind, i.action["name"], i.required_role) for i in items] == [("t", "approval", "pay", "lead")]
    kit.runtime.approve("t", approver="lee")
    assert kit.store.inbox.list() == []
