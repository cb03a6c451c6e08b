"""An approval round trip: pause on a gated call, approve, execute, reply; on SQLite and on Postgres.

agent_kit: ``AgentRuntime.send`` (pauses) then ``AgentRuntime.approve`` (lease, stale check,
resume validation, execute through the ledger, audit). LangChain: ``create_agent`` with
``HumanInTheLoopMiddleware(interrupt_on={"pay": True}, interrupt_mode="per_call")``: ``invoke``
then ``invoke(Command(resume={"type": "approve"}))`` (per-call mode takes one bare decision; the
``{"decisions": [...]}`` wrapper is the batched mode's and is refused per call). Both with
durability="sync", on a ``SqliteSaver`` file, then on ``PostgresSaver`` (each side in a database of
its own on the server). On Postgres the server also counts the transactions one round trip costs
each side (``pg_stat_database``; see :mod:`bench._pg`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from agent_kit import AgentRuntime

from . import Result, interleave, median, report
from . import _pg
from ._app import PAY, bare_saver, ours_graph, pay, pg_saver, scripted

NAME = "approval_round_trip"
GOAL = {"sqlite": 0.7, "postgres": 1.0}
LABEL = {"sqlite": "SqliteSaver", "postgres": "PostgresSaver"}


def open_ours(home: Path, db_url: str | None = None) -> tuple[Callable[[int], None], Callable[[], None]]:
    """agent_kit's round trip on a fresh store; returns ``(round_trip(i), close)``."""
    graph, store = ours_graph(home, PAY, "paid", db_url=db_url)
    runtime = AgentRuntime(graph, store=store)

    def round_trip(i: int) -> None:
        t = f"o{i}"
        assert runtime.send(t, "pay ann 50").status == "paused"
        assert runtime.approve(runtime.pending(t, kind="approval")[0], approver="lee").reply == "paid"

    return round_trip, store.close


def open_anchor(saver: Any) -> Callable[[int], None]:
    """LangChain's HITL round trip on ``saver``."""
    agent = create_agent(scripted(PAY, "paid"), [pay], checkpointer=saver,
                         middleware=[HumanInTheLoopMiddleware(interrupt_on={"pay": True},
                                                              interrupt_mode="per_call")])

    def round_trip(i: int) -> None:
        cfg = {"configurable": {"thread_id": f"l{i}"}}
        out = agent.invoke({"messages": [HumanMessage(content="pay ann 50")]}, cfg, durability="sync")
        assert out["__interrupt__"], out
        out = agent.invoke(Command(resume={"type": "approve"}), cfg, durability="sync")
        assert out["messages"][-1].content == "paid", out["messages"][-1]

    return round_trip


def _anchor_on(url: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    saver = pg_saver(url)
    return open_anchor(saver), saver.conn.close


def _measure(backend: str, rounds: int, warmup: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if backend == "sqlite":
            ours, close_ours = open_ours(home / "ours")
            saver = bare_saver(home / "lc" / "lc.sqlite")
            anchor, close_anchor = open_anchor(saver), saver.conn.close
            try:
                return interleave(ours, anchor, rounds=rounds, warmup=warmup)
            finally:
                close_ours()
                close_anchor()
        with _pg.database() as ours_url, _pg.database() as anchor_url:
            ours, close_ours = open_ours(home / "ours", ours_url)
            anchor, close_anchor = _anchor_on(anchor_url)
            try:
                return interleave(ours, anchor, rounds=rounds, warmup=warmup)
            finally:
                close_ours()
                close_anchor()


def transactions(calls: int = 10) -> tuple[float, float]:
    """Transactions one Postgres round trip costs: ``(agent_kit, LangChain HITL)``."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = _pg.transactions_per_call(lambda url: open_ours(Path(tempfile.mkdtemp(dir=tmp)), url),
                                         calls=calls)
    return ours, _pg.transactions_per_call(_anchor_on, calls=calls)


def evaluations_per_round_trip() -> int:
    """How many times the policy is evaluated in one approved round trip (each evaluation reads
    the tool's facts once). The anchor has no policy: it asks for every call of the tool."""
    from agent_kit.policy import Policy

    seen: list[str] = []
    evaluate = Policy.evaluate

    def counting(self: Policy, tool: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(tool)
        return evaluate(self, tool, *args, **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        round_trip, close = open_ours(Path(tmp))
        Policy.evaluate = counting  # type: ignore[method-assign]
        try:
            round_trip(0)
        finally:
            Policy.evaluate = evaluate  # type: ignore[method-assign]
            close()
    return len(seen)


def run(quick: bool = False) -> list[Result]:
    rounds, warmup = (20, 3) if quick else (60, 8)
    results = []
    backends = ["sqlite"] + (["postgres"] if _pg.available() else [])
    evaluations = evaluations_per_round_trip()  # a count: the same on both backends
    for backend in backends:
        a, b = _measure(backend, rounds, warmup)
        ours_m, lc_m = median(a), median(b)
        goal = GOAL[backend]
        name = NAME if backend == "sqlite" else f"{NAME}_{backend}"
        res = Result(name, ours_m, lc_m, "us", f"<={goal}x", ours_m / lc_m <= goal,
                     f"AgentRuntime.send + approve, {backend}",
                     f"create_agent + HumanInTheLoopMiddleware + {LABEL[backend]}",
                     extra={"rounds": rounds, "durability": "sync", "backend": backend,
                            "policy_evaluations_per_round_trip": evaluations})
        results.append(report(res, [
            f"pause + approve + execute + reply on {backend}, new thread per round, durability=sync, {rounds} rounds",
            f"agent_kit runtime   median {ours_m:8.0f} us  ({evaluations} policy evaluations per approved call; "
            "7 before they were made once per gate decision)",
            f"LangChain HITL      median {lc_m:8.0f} us",
        ]))
    if "postgres" in backends:
        ours_x, lc_x = transactions()
        results.append(report(
            Result(f"{NAME}_postgres_transactions", ours_x, lc_x, "transactions", "none(reported)", True,
                   "AgentRuntime.send + approve", "create_agent + HumanInTheLoopMiddleware",
                   extra={"counted_by": "pg_stat_database xact_commit + xact_rollback, own database"}),
            [f"transactions per round trip, counted by the server: agent_kit {ours_x:.1f}, LangChain HITL {lc_x:.1f}"]))
    return results
