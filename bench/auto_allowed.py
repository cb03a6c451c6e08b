"""An automatically allowed call: the full permission path vs bare LangGraph, per invoke, on SQLite
and on Postgres (each side in a database of its own; the server also counts each side's
transactions per call)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from agent_kit import AgentRuntime

from . import Result, _pg, interleave, median, report
from ._app import LOOKUP, bare_graph, bare_saver, ours_graph, pg_saver

NAME = "auto_allowed"
GOAL = 1.05
MSG = {"messages": [HumanMessage(content="what is my balance?")]}


def _call(graph: Any, prefix: str) -> Callable[[int], None]:
    def call(i: int) -> None:
        out = graph.invoke(MSG, {"configurable": {"thread_id": f"{prefix}{i}"}}, durability="sync")
        assert out["messages"][-1].content == "done", out

    return call


def _ours(home: Path, url: str | None = None) -> tuple[Callable[[int], None], Callable[[], None], Any]:
    graph, store = ours_graph(home, LOOKUP, db_url=url)
    return _call(graph, "o"), store.close, (graph, store)


def _bare_pg(url: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    saver = pg_saver(url)
    return _call(bare_graph(saver, LOOKUP), "b"), saver.conn.close


def _measure(backend: str, rounds: int, warmup: int) -> tuple[list[float], list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if backend == "sqlite":
            ours, close, (graph, store) = _ours(home / "ours")
            saver = bare_saver(home / "bare" / "bare.sqlite")
            bare, close_bare = _call(bare_graph(saver, LOOKUP), "b"), saver.conn.close
            return _timed(ours, bare, graph, store, close, close_bare, rounds, warmup)
        with _pg.database() as ours_url, _pg.database() as bare_url:
            ours, close, (graph, store) = _ours(home / "ours", ours_url)
            bare, close_bare = _bare_pg(bare_url)
            return _timed(ours, bare, graph, store, close, close_bare, rounds, warmup)


def _timed(ours: Callable[[int], None], bare: Callable[[int], None], graph: Any, store: Any,
           close: Callable[[], None], close_bare: Callable[[], None], rounds: int,
           warmup: int) -> tuple[list[float], list[float], list[float]]:
    try:
        a, b = interleave(ours, bare, rounds=rounds, warmup=warmup)
        # For context: the same turn through AgentRuntime.send (lease, settle, inbox sweep).
        runtime = AgentRuntime(graph, store=store)
        rt, _ = interleave(lambda i: runtime.send(f"r{i}", "what is my balance?"), lambda i: None,
                           rounds=max(rounds // 4, 10), warmup=3)
        return a, b, rt
    finally:
        close()
        close_bare()


def open_pg_side(home: Path, url: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """agent_kit's side on the Postgres database at ``url`` (its file-side home in ``home``):
    ``(call, close)``, as :func:`bench._pg.transactions_per_call` takes it."""
    return _ours(home, url)[:2]


def transactions(calls: int = 10) -> tuple[float, float]:
    """Transactions one Postgres invoke costs: ``(agent_kit graph, bare StateGraph + ToolNode)``."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = _pg.transactions_per_call(lambda url: open_pg_side(Path(tempfile.mkdtemp(dir=tmp)), url), calls=calls)
    return ours, _pg.transactions_per_call(_bare_pg, calls=calls)


def run(quick: bool = False) -> list[Result]:
    rounds, warmup = (30, 5) if quick else (120, 15)
    results = []
    backends = ["sqlite"] + (["postgres"] if _pg.available() else [])
    for backend in backends:
        a, b, rt = _measure(backend, rounds, warmup)
        ours_m, bare_m = median(a), median(b)
        saver = "SqliteSaver" if backend == "sqlite" else "PostgresSaver"
        res = Result(NAME if backend == "sqlite" else f"{NAME}_{backend}", ours_m, bare_m, "us", f"<={GOAL}x",
                     ours_m / bare_m <= GOAL, f"create_permissioned_agent + {saver}",
                     f"StateGraph + ToolNode + {saver}",
                     extra={"rounds": rounds, "runtime_send_us": median(rt), "durability": "sync",
                            "ours_p90_us": sorted(a)[int(len(a) * .9)], "anchor_p90_us": sorted(b)[int(len(b) * .9)]})
        results.append(report(res, [
            f"one read_only call + reply on {backend}, new thread per invoke, durability=sync, {rounds} rounds",
            f"agent_kit graph.invoke   median {ours_m:8.0f} us",
            f"bare LangGraph invoke    median {bare_m:8.0f} us",
            f"AgentRuntime.send        median {median(rt):8.0f} us (lease + settle on top of the invoke)",
        ]))
    if "postgres" in backends:
        ours_x, bare_x = transactions()
        results.append(report(
            Result(f"{NAME}_postgres_transactions", ours_x, bare_x, "transactions", "none(reported)", True,
                   "create_permissioned_agent", "StateGraph + ToolNode",
                   extra={"counted_by": "pg_stat_database xact_commit + xact_rollback, own database"}),
            [f"transactions per invoke, counted by the server: agent_kit {ours_x:.1f}, bare LangGraph {bare_x:.1f}"]))
    return results
