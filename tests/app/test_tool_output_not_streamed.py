"""A tool's raw result never leaves the graph through LangChain callbacks or any stream mode.

The policy hides fields of a result from the model (``visible_fields``: the full card number,
the customer's email and address). Those values must not reach a client either: not through
``stream_mode="events"`` (``on_tool_end`` carries a tool's output), not through tracing, not
through any other stream mode. The served graph is attacked the same way in
``tests/app/test_served_auth.py``.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from agent_kit.graph import RunContext

HIDDEN = ("4242424242424242", "jane@example.com", "500 Market St")
MODES = ["values", "updates", "debug", "messages", "custom", "checkpoints", "tasks"]


class Everything(BaseCallbackHandler):
    """Every callback LangChain makes, with everything it is handed (what events and tracing see)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.tools: list[str] = []

    def _keep(self, *args: Any, **kwargs: Any) -> None:
        self.seen.append(json.dumps([args, kwargs], default=repr))

    on_chain_start = on_chain_end = on_llm_start = on_chat_model_start = on_llm_end = _keep  # type: ignore[assignment]
    on_custom_event = on_retriever_end = on_text = _keep  # type: ignore[assignment]

    def on_tool_start(self, serialized: Any, input_str: str, **kwargs: Any) -> None:
        self.tools.append(input_str)
        self._keep(serialized, input_str, **kwargs)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tools.append(repr(output))
        self._keep(output, run_id=run_id, **kwargs)


def test_no_stream_mode_and_no_callback_carries_what_the_policy_hides(app) -> None:  # type: ignore[no-untyped-def]
    rt = app.runtime
    app.say("t", "Hi, I am Jane Doe, 94107")
    handler = Everything()
    config = {**rt._config("t"), "callbacks": [handler]}
    chunks = list(rt.graph.stream({"messages": [{"role": "user", "content": "Where is my order 1001"}]}, config,
                                  context=RunContext(store=app.store, actor="customer"), stream_mode=MODES, subgraphs=True))
    stream = json.dumps(chunks, default=repr)
    assert "1001" in stream and "delivered" in stream  # the order was read and answered
    reads = app.store.audit.entries("t", kind="read")
    assert reads and "card_number" in reads[-1].data["hidden_fields"]  # the tool did return them
    callbacks = "\n".join(handler.seen)
    assert handler.seen  # the graph's own runs are still reported to callbacks
    for value in HIDDEN:
        assert value not in stream, f"{value!r} is in a stream mode"
        assert value not in callbacks, f"{value!r} was handed to a LangChain callback (events, tracing)"
    assert handler.tools == []  # the tool's run is not reported at all: its input and output are the ledger's


def test_astream_events_never_carries_what_the_policy_hides(app) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from langgraph.checkpoint.memory import InMemorySaver

    from agent_kit.graph import with_checkpointer

    rt = app.runtime
    graph = with_checkpointer(rt.graph, InMemorySaver())  # the savers here are synchronous; the store is app's

    async def events(text: str) -> list[Any]:
        return [e async for e in graph.astream_events(
            {"messages": [{"role": "user", "content": text}]}, rt._config("t"),
            context=RunContext(store=app.store, actor="customer"), version="v2")]

    async def conversation() -> list[Any]:
        return await events("Hi, I am Jane Doe, 94107") + await events("Where is my order 1001")

    seen = asyncio.run(conversation())
    blob = json.dumps(seen, default=repr)
    assert any(e["event"] == "on_chain_end" for e in seen) and "delivered" in blob
    assert "card_number" in app.store.audit.entries("t", kind="read")[-1].data["hidden_fields"]
    assert [e for e in seen if e["event"].startswith("on_tool")] == []
    for value in HIDDEN:
        assert value not in blob, f"{value!r} is in astream_events"
