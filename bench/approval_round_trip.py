"""An approval round trip: pause on a gated call, approve, execute, reply.

agent_kit: ``AgentRuntime.send`` (pauses) then ``AgentRuntime.approve`` (lease, stale check,
resume validation, execute through the ledger, audit). LangChain: ``create_agent`` with
``HumanInTheLoopMiddleware(interrupt_on={"pay": True}, interrupt_mode="per_call")``: ``invoke``
then ``invoke(Command(resume={"type": "approve"}))`` (per-call mode takes one bare decision; the
``{"decisions": [...]}`` wrapper is the batched mode's and is refused per call). Both on a SqliteSaver file,
both with durability="sync".
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from agent_kit import AgentRuntime

from . import Result, interleave, median, report
from ._app import PAY, bare_saver, ours_graph, pay, scripted

NAME = "approval_round_trip"
GOAL = 1.0


def run(quick: bool = False) -> Result:
    rounds, warmup = (20, 3) if quick else (100, 10)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        graph, store = ours_graph(home / "ours", PAY, "paid")
        runtime = AgentRuntime(graph, store=store)
        saver = bare_saver(home / "lc" / "lc.sqlite")
        agent = create_agent(scripted(PAY, "paid"), [pay], checkpointer=saver,
                             middleware=[HumanInTheLoopMiddleware(interrupt_on={"pay": True},
                                                                  interrupt_mode="per_call")])

        def run_ours(i: int) -> None:
            t = f"o{i}"
            assert runtime.send(t, "pay ann 50").status == "paused"
            assert runtime.approve(runtime.pending(t, kind="approval")[0], approver="lee").reply == "paid"

        def run_lc(i: int) -> None:
            cfg = {"configurable": {"thread_id": f"l{i}"}}
            out = agent.invoke({"messages": [HumanMessage(content="pay ann 50")]}, cfg, durability="sync")
            assert out["__interrupt__"], out
            out = agent.invoke(Command(resume={"type": "approve"}), cfg, durability="sync")
            assert out["messages"][-1].content == "paid", out["messages"][-1]

        a, b = interleave(run_ours, run_lc, rounds=rounds, warmup=warmup)
        store.close()
    ours_m, lc_m = median(a), median(b)
    ratio = ours_m / lc_m
    res = Result(NAME, ours_m, lc_m, "us", f"<={GOAL}x", ratio <= GOAL,
                 "AgentRuntime.send + approve", "create_agent + HumanInTheLoopMiddleware",
                 extra={"rounds": rounds, "durability": "sync"})
    return report(res, [
        f"pause + approve + execute + reply, new thread per round, durability=sync, {rounds} rounds",
        f"agent_kit runtime   median {ours_m:8.0f} us",
        f"LangChain HITL      median {lc_m:8.0f} us",
    ])
