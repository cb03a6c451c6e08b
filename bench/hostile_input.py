"""Hostile input: how a customer message's handling time grows with its size.

ours: the reference agent (``graphs.customer_service``: its scripted model reads the message,
agent_kit checks it at the runtime's door, routes the calls it leads to, audits and checkpoints)
through ``AgentRuntime.send``, each message on a new thread. anchor: bare LangGraph with the same
model in one node on a ``SqliteSaver``, the same messages. The message is a customer's question (identity, an order)
then customer-like text (amounts, an address, odd characters) to 100 KB and to 1 MB (agent_kit's
default ``InputLimits.max_message_chars``).

The BENCH line's ``ours`` / ``anchor`` are seconds for the 1 MB message; the goal is linear time:
a 10x longer message takes at most 15x as long (``scaling = t(1 MB) / t(100 KB) <= 15``). Before
the reference app's regexes were made linear, 60,000 characters took 17 s.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph

from agent_kit import AgentRuntime
from agent_kit.store import Store

from . import Result, report

NAME = "hostile_input"
SIZES = (100_000, 1_000_000)
GOAL = 15.0
HEAD = "Hi, I'm Jane Doe, zip 94107. Where is my order 1001? "
FILLER = ("The parcel was late, the box was dented (2 of 3 items, 20% of it, $80.50) and the note said "
          "e-mail support@example.com; caf\u00e9 \U0001F642 \u2028 ")


def message(size: int) -> str:
    """A customer's question, then customer-like text (numbers, an address, odd characters) to ``size``."""
    return (HEAD + FILLER * (size // len(FILLER) + 1))[:size]


def _bare(home: Path) -> Any:
    from graphs.scripted_model import CustomerServiceModel

    model = CustomerServiceModel()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    saver = SqliteSaver(sqlite3.connect(str(home / "bare.sqlite"), check_same_thread=False))
    saver.setup()
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    return g.compile(checkpointer=saver)


def run(quick: bool = False) -> Result:
    from graphs.customer_service import build_graph

    rounds = 1 if quick else 3
    times: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = Store.open(home=home)
        runtime = AgentRuntime(build_graph(home=home, store=store), store=store)
        bare = _bare(home)
        runtime.send("warm-up", message(10_000))  # imports, first compile and first writes, untimed
        bare.invoke({"messages": [HumanMessage(content=message(10_000))]}, {"configurable": {"thread_id": "warm-up"}})
        for r in range(rounds):
            for size in SIZES:
                text = message(size)
                for who in (("ours", "anchor") if r % 2 == 0 else ("anchor", "ours")):
                    t0 = time.perf_counter()
                    if who == "ours":
                        runtime.send(f"o{r}-{size}", text)
                    else:
                        bare.invoke({"messages": [HumanMessage(content=text)]},
                                    {"configurable": {"thread_id": f"a{r}-{size}"}}, durability="sync")
                    times.setdefault((who, size), []).append(time.perf_counter() - t0)
        assert store.audit.verify().ok
        store.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    small, big = SIZES
    scaling = med[("ours", big)] / med[("ours", small)]
    anchor_scaling = med[("anchor", big)] / med[("anchor", small)]
    result = Result(NAME, med[("ours", big)], med[("anchor", big)], "s", f"t(1MB)/t(100KB)<={GOAL:.0f}",
                    scaling <= GOAL, ours_label="AgentRuntime.send, reference agent, 1 MB",
                    anchor_label="bare LangGraph, same model, 1 MB",
                    extra={"rounds": rounds, "seconds": {f"{w}_{s}": v for (w, s), v in times.items()},
                           "scaling": scaling, "anchor_scaling": anchor_scaling})
    return report(result, [
        f"customer-like message, new thread each, {rounds} round(s), medians",
        f"agent_kit  100 KB {med[('ours', small)]:6.2f} s   1 MB {med[('ours', big)]:6.2f} s   scaling {scaling:5.1f}x",
        f"bare LG    100 KB {med[('anchor', small)]:6.2f} s   1 MB {med[('anchor', big)]:6.2f} s   scaling "
        f"{anchor_scaling:5.1f}x",
        "(10x the text: linear is 10x)",
    ])
