"""The library's own test support: the scripted model and the programmatic approver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from langchain_core.messages import HumanMessage, ToolMessage

from agent_kit.testing import ProgrammaticApprover, ScriptedChatModel, tool_call

ROOT = Path(__file__).resolve().parents[2]


def test_scripted_model_follows_its_steps_through_the_conversation_then_finishes():
    m = ScriptedChatModel(steps=[tool_call("pay", {"amount": 1}), "hello", lambda msgs: f"{len(msgs)} messages"])
    convo: list = [HumanMessage("x")]
    first = m.invoke(convo)
    assert first.tool_calls[0]["name"] == "pay" and first.tool_calls[0]["id"]
    convo += [first, ToolMessage("ok", tool_call_id=first.tool_calls[0]["id"])]
    second = m.invoke(convo)
    assert second.content == "hello"
    convo += [second, HumanMessage("y")]
    third = m.invoke(convo)
    assert third.content == f"{len(convo)} messages"
    convo.append(third)
    assert m.invoke(convo).content == "(script finished)"
    # The position is the conversation's: a new one starts over, another instance continues this one.
    assert m.invoke([HumanMessage("z")]).tool_calls
    assert ScriptedChatModel(steps=m.steps).invoke(convo[:3]).content == "hello"


RESUME_ELSEWHERE = """
import json, sys
from pathlib import Path
from tests.core.conftest import Kit
from agent_kit.testing import tool_call
kit = Kit(Path(sys.argv[1]), [tool_call("pay", {"to": "ann", "amount": 50}), "paid ann",
                              tool_call("pay", {"to": "bob", "amount": 5}), "paid bob"])
(item,) = kit.runtime.pending("t", kind="approval")
r = kit.runtime.approve(item, approver="lee")
print(json.dumps({"reply": r.reply, "payments": kit.bank.payments()}))
kit.store.close()
"""


def test_a_scripted_run_resumed_in_another_process_continues_where_it_was(kit_factory, tmp_path):
    steps = [tool_call("pay", {"to": "ann", "amount": 50}), "paid ann", tool_call("pay", {"to": "bob", "amount": 5}),
             "paid bob"]
    kit = kit_factory(steps)
    assert kit.runtime.send("t", "pay ann 50").status == "paused"
    out = subprocess.run([sys.executable, "-c", RESUME_ELSEWHERE, str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout.strip().splitlines()[-1])
    assert done == {"reply": "paid ann", "payments": [["ann", 50.0, 0]]}
    # And back in this process, the next turn takes the script's next step, not its first.
    r = kit.runtime.send("t", "and pay bob 5")
    assert r.reply == "paid bob" and kit.bank.payments() == [("ann", 50.0, 0), ("bob", 5.0, 0)]


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
    kit.runtime.approve(kit.runtime.pending("t", kind="approval")[0], approver="lee")
    assert kit.store.inbox.list() == []
