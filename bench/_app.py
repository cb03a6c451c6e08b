"""Shared set-up: one tool, one policy, the scripted model, and the bare LangGraph agent."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from agent_kit import Mode, Policy, create_permissioned_agent, register
from agent_kit.store import Store
from agent_kit.testing import ScriptedChatModel, tool_call

POLICY: dict[str, Any] = {
    "version": 1,
    "approvers": {"lee": ["lead"], "sam": ["lead"]},
    "rules": [{"id": "angry", "when": {"context.sentiment": "angry"}, "mode": "escalate"}],
    "tools": {
        "lookup": {"mode": "read_only"},
        "pay": {"mode": "execute_limited",
                "rules": [{"id": "pay_over_10", "when": {"args.amount": {"gt": 10}}, "approval": {"role": "lead"}}]},
    },
}


@tool
def lookup(account: str) -> dict[str, Any]:
    """Look up an account."""
    return {"account": account, "balance": 100.0, "currency": "EUR", "status": "open",
            "note": "a realistic small record " * 4}


@tool
def pay(to: str, amount: float) -> dict[str, Any]:
    """Pay an amount to someone."""
    return {"to": to, "amount": amount, "status": "paid"}


def scripted(call: dict[str, Any], reply: str | None = "done") -> ScriptedChatModel:
    """A model that answers every turn with one tool call, then a reply (None: no reply), forever."""
    return ScriptedChatModel(steps=[call, reply] if reply is not None else [call], cycle=True)


def ours_graph(home: Path, call: dict[str, Any], reply: str | None = "done", *, with_checkpointer: bool = True,
               db_url: str | None = None, schema: str | None = None) -> tuple[Any, Store]:
    """agent_kit's agent on a fresh store: SQLite in ``home``, or Postgres at ``db_url`` (in
    ``schema``, if given)."""
    store = Store.open(home=home, db_url=db_url, schema=schema)
    graph = create_permissioned_agent(
        scripted(call, reply), [register(lookup, Mode.READ_ONLY), register(pay, Mode.EXECUTE_LIMITED)],
        Policy.from_dict(POLICY), store=store, context_keys={"sentiment": str},
        checkpointer=store.checkpointer() if with_checkpointer else None)
    return graph, store


def bare_saver(path: Path) -> SqliteSaver:
    path.parent.mkdir(parents=True, exist_ok=True)
    saver = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
    # The same connection settings agent_kit's own SqliteSaver uses (WAL, synchronous=NORMAL), so the
    # anchor is the same SqliteSaver: the ratio measures the permission layer, not a pragma.
    saver.setup()
    saver.conn.execute("PRAGMA synchronous=NORMAL")
    return saver


def pg_saver(url: str) -> Any:
    """A ``PostgresSaver`` on its own connection, set up as LangGraph's docs say (the anchor's)."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    saver = PostgresSaver(psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row))
    saver.setup()
    return saver


def bare_graph(saver: Any, call: dict[str, Any]) -> Any:
    """Bare LangGraph: scripted model -> ToolNode -> model, routed by tools_condition."""
    model = scripted(call).bind_tools([lookup, pay])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([lookup, pay]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=saver)


def file_size(path: Path) -> int:
    """The SQLite file plus its WAL, in bytes."""
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            total += p.stat().st_size
    return total


LOOKUP = tool_call("lookup", {"account": "a1"})
PAY = tool_call("pay", {"to": "ann", "amount": 50})


