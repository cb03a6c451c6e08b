"""Exactly once across a crash in an asyncio run (``ainvoke``, as LangGraph Server runs graphs) under
``durability="async"`` with slow saves: the process is SIGKILLed in the execute node before or
after the effect, while the checkpoints of the steps that asked for it may still be on their way;
the customer's same message again runs the action exactly once (the nodes wait on the event loop
for those checkpoints before acting)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from tests.fixture_app import App
from tests.storage._procs import run_to_exit

from ._checks import assert_executed_exactly_once

pytestmark = pytest.mark.slow

THREAD = "t-async"
JANE = "Hi, I am Jane Doe, 94107"
MESSAGE = "open a ticket about a broken zipper"


def _ainvoke_and_get_killed(home: str, db_url: str | None, schema: str | None, crash_at: str) -> None:
    """In a spawned process: the message through ``ainvoke`` on the async checkpointer, every save
    slow, SIGKILLed at ``crash_at``."""
    os.environ["AGENT_KIT_HOME"] = home
    os.environ["AGENT_KIT_CRASH_AT"] = crash_at
    from agent_kit.graph import RunContext, with_checkpointer
    from tests.fixture_app import make_app

    app = make_app(Path(home), db_url=db_url, schema=schema)

    async def run() -> None:
        async with app.store.acheckpointer() as saver:
            aput = saver.aput

            async def slow_aput(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
                await asyncio.sleep(0.4)
                return await aput(config, checkpoint, metadata, versions)

            saver.aput = slow_aput  # type: ignore[method-assign]
            graph = with_checkpointer(app.runtime.graph, saver)
            await graph.ainvoke({"messages": [HumanMessage(MESSAGE)]}, {"configurable": {"thread_id": THREAD}},
                                context=RunContext(store=app.store), durability="async")

    asyncio.run(run())
    os._exit(3)  # the crash point was not reached: the test sees exit code 3, not -9


@pytest.mark.parametrize("crash_at", ["before_effect", "after_effect"])
def test_an_asyncio_run_killed_around_the_effect_runs_the_action_once(app: App, crash_at: str) -> None:
    app.say(THREAD, JANE)
    code = run_to_exit(_ainvoke_and_get_killed, (str(app.home), app.db_url, app.schema, crash_at))
    assert code == -signal.SIGKILL
    assert len(app.shop.tickets()) == (1 if crash_at == "after_effect" else 0)
    assert app.runtime.send(THREAD, MESSAGE).status == "replied"  # the customer says it again
    assert_executed_exactly_once(app.store, app.home, THREAD, "create_ticket")
