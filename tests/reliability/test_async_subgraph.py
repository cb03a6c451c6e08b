"""The permissioned graph as a node (a subgraph) of an application's own graph, under
``durability="async"``: the parent saves its checkpoints in its own background chain, apart from the
subgraph's. A crash after the effect, while the parent's step that started the subgraph is still
being saved, must not lose the customer's message (the recovery would send it again, the model
would ask again, and its new call, under a new key, would run the effect twice)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from tests.fixture_app import App
from tests.storage._procs import run_to_exit

from ._checks import assert_executed_exactly_once

pytestmark = pytest.mark.slow

THREAD = "t-sub"
MESSAGE = "open a ticket about a broken zipper"


def _parent_graph(home: str, store: Any) -> Any:
    """An application's graph: its own first node, then the permissioned agent as a subgraph."""
    from langgraph.graph import END, START, StateGraph

    from agent_kit.graph import AgentState
    from tests.fixture_app import build_graph

    parent = StateGraph(AgentState)
    parent.add_node("prepare", lambda state: {})
    parent.add_node("support", build_graph(home=Path(home), store=store))
    parent.add_edge(START, "prepare")
    parent.add_edge("prepare", "support")
    parent.add_edge("support", END)
    return parent.compile(checkpointer=store.checkpointer())


def _send_and_get_killed(home: str, db_url: str | None, schema: str | None) -> None:
    """In a spawned process: the parent graph's saves are slow; SIGKILLed right after the effect."""
    os.environ["AGENT_KIT_HOME"] = home
    os.environ["AGENT_KIT_CRASH_AT"] = "after_result"
    from agent_kit.graph import RunContext
    from agent_kit.store import Store

    store = Store.open(home=Path(home), db_url=db_url, schema=schema) if db_url else Store.open(home=Path(home))
    graph = _parent_graph(home, store)
    saver = graph.checkpointer
    put = saver.put

    def slow_parent_put(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if not config["configurable"].get("checkpoint_ns"):
            time.sleep(1.5)  # the parent's own checkpoints only: the subgraph's save at full speed
        return put(config, checkpoint, metadata, versions)

    saver.put = slow_parent_put
    graph.invoke({"messages": [HumanMessage(MESSAGE)]}, {"configurable": {"thread_id": THREAD}},
                 context=RunContext(store=store, actor="customer"), durability="async")
    os._exit(3)  # the crash point was not reached: the test sees exit code 3, not -9


def test_a_subgraph_acts_only_once_its_parents_step_is_saved(app: App) -> None:
    from agent_kit.graph import RunContext

    code = run_to_exit(_send_and_get_killed, (str(app.home), app.db_url, app.schema))
    assert code == -signal.SIGKILL
    assert len(app.shop.tickets()) == 1
    graph = _parent_graph(str(app.home), app.store)
    config = {"configurable": {"thread_id": THREAD}}
    context = RunContext(store=app.store, actor="customer")
    snap = graph.get_state(config)
    if snap.next:  # the run is resumed where it stopped
        graph.invoke(None, config, context=context, durability="async")
    else:  # the customer's message was lost with the crash: they send it again
        graph.invoke({"messages": [HumanMessage(MESSAGE)]}, config, context=context, durability="async")
    assert_executed_exactly_once(app.store, app.home, THREAD, "create_ticket")
    assert snap.next == ("support",)  # the message was kept: the parent's step was saved before the effect
