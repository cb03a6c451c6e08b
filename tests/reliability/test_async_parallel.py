"""Many parallel tool calls in an asyncio run (``ainvoke``, as LangGraph Server runs graphs) under
``durability="async"``: every gate waits for the checkpoint it was scheduled from, and that wait
must not hold one of the event loop's executor threads (an async checkpointer needs one to prepare
the very save awaited; with as many waiting gates as threads, nothing could be saved)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from agent_kit import _actions
from agent_kit.graph import RunContext, with_checkpointer
from tests.fixture_app import App

JANE = "Hi, I am Jane Doe, 94107"
CALLS = 8
THREADS = 4  # fewer executor threads than parallel calls, on any machine


def test_parallel_calls_under_ainvoke_with_few_executor_threads_all_run_once(
    app: App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_actions, "SAVED_WAIT_SECONDS", 20.0)
    app.say("t", JANE)
    message = " ".join(f"refund $4 on order {1001 + i % 2}" for i in range(CALLS))

    async def run() -> float:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(THREADS))
        async with app.store.acheckpointer() as saver:
            aput = saver.aput

            async def busy_aput(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
                await asyncio.sleep(0.01)  # waiting for its connection, as under load
                return await aput(config, checkpoint, metadata, versions)

            saver.aput = busy_aput  # type: ignore[method-assign]
            graph = with_checkpointer(app.runtime.graph, saver)
            started = time.monotonic()
            await graph.ainvoke({"messages": [HumanMessage(message)]}, {"configurable": {"thread_id": "t"}},
                                context=RunContext(store=app.store), durability="async")
            return time.monotonic() - started

    took = asyncio.run(run())
    assert took < 15, f"the run took {took:.1f} s: gates waited on saves that could not run"
    refunds = app.shop.refunds(1001) + app.shop.refunds(1002)
    assert len(refunds) == CALLS
    records = [r for r in app.store.ledger.for_thread("t") if r.tool == "issue_refund"]
    assert [r.status for r in records] == ["done"] * CALLS
    assert len({r.key for r in records}) == CALLS
    assert app.store.audit.verify().ok
