"""An automatically allowed call: the full permission path vs bare LangGraph, per invoke."""

from __future__ import annotations

import tempfile
from pathlib import Path

from langchain_core.messages import HumanMessage

from agent_kit import AgentRuntime

from . import Result, interleave, median, report
from ._app import LOOKUP, bare_graph, bare_saver, ours_graph

NAME = "auto_allowed"
GOAL = 1.25


def run(quick: bool = False) -> Result:
    rounds, warmup = (30, 5) if quick else (200, 20)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        ours, store = ours_graph(home / "ours", LOOKUP)
        bare = bare_graph(bare_saver(home / "bare" / "bare.sqlite"), LOOKUP)
        msg = {"messages": [HumanMessage(content="what is my balance?")]}

        def run_ours(i: int) -> None:
            out = ours.invoke(msg, {"configurable": {"thread_id": f"o{i}"}}, durability="sync")
            assert out["messages"][-1].content == "done", out

        def run_bare(i: int) -> None:
            out = bare.invoke(msg, {"configurable": {"thread_id": f"b{i}"}}, durability="sync")
            assert out["messages"][-1].content == "done", out

        a, b = interleave(run_ours, run_bare, rounds=rounds, warmup=warmup)
        # For context: the same turn through AgentRuntime.send (lease, settle, inbox sweep).
        runtime = AgentRuntime(ours, store=store)
        rt, _ = interleave(lambda i: runtime.send(f"r{i}", "what is my balance?"), lambda i: None,
                           rounds=max(rounds // 3, 10), warmup=3)
        store.close()
    ours_m, bare_m = median(a), median(b)
    ratio = ours_m / bare_m
    res = Result(NAME, ours_m, bare_m, "us", f"<={GOAL}x", ratio <= GOAL,
                 "create_permissioned_agent + SqliteSaver", "StateGraph + ToolNode + SqliteSaver",
                 extra={"rounds": rounds, "runtime_send_us": median(rt), "durability": "sync",
                        "ours_p90_us": sorted(a)[int(len(a) * .9)], "anchor_p90_us": sorted(b)[int(len(b) * .9)]})
    return report(res, [
        f"one read_only call + reply, new thread per invoke, durability=sync, {rounds} rounds",
        f"agent_kit graph.invoke   median {ours_m:8.0f} us",
        f"bare LangGraph invoke    median {bare_m:8.0f} us",
        f"AgentRuntime.send        median {median(rt):8.0f} us (lease + settle on top of the invoke)",
    ])
