"""Strict checkpoints: agent state round-trips; a forged blob fails loudly and runs nothing."""

from __future__ import annotations

import datetime
import decimal
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import ormsgpack
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START, StateGraph, add_messages
from langgraph.types import Command, Interrupt, Send, interrupt

from agent_kit.checkpoint import ALLOWED_TYPES, StrictSerializer, strict_serializer
from agent_kit.errors import CheckpointError
from agent_kit.modes import Mode
from agent_kit.store import Store


def _ext(code: int, *fields: Any) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, ormsgpack.packb(fields))


def _forgeries(marker: Path) -> dict[str, bytes]:
    cmd = f"touch {marker}"
    return {
        "constructor-os.system": ormsgpack.packb(_ext(0, "os", "system", cmd)),
        "positional-subprocess.getoutput": ormsgpack.packb(_ext(1, "subprocess", "getoutput", [cmd])),
        "keywords-subprocess.run": ormsgpack.packb(_ext(2, "subprocess", "run", {"args": ["touch", str(marker)]})),
        "method-call": ormsgpack.packb(_ext(3, "subprocess", "getoutput", cmd, "__call__")),
        "pydantic-v2": ormsgpack.packb(_ext(5, "subprocess", "run", {"args": ["touch", str(marker)]}, "x")),
        "pydantic-v1": ormsgpack.packb(_ext(4, "subprocess", "run", {"args": ["touch", str(marker)]})),
        "nested-in-a-message": ormsgpack.packb({"messages": [_ext(
            5, "langchain_core.messages.ai", "AIMessage",
            {"content": _ext(0, "os", "system", cmd)}, "model_validate_json")]}),
        "unknown-extension-code": ormsgpack.packb(_ext(42, "os", "system", cmd)),
    }


def test_the_forged_blob_is_a_real_exploit_for_a_permissive_serializer(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    JsonPlusSerializer(allowed_msgpack_modules=True).loads_typed(
        ("msgpack", _forgeries(marker)["constructor-os.system"]))
    assert marker.exists()  # so the strict tests below would notice the same payload running


@pytest.mark.parametrize("name", list(_forgeries(Path("m"))))
def test_a_forged_blob_fails_loudly_and_runs_nothing(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointError, match="strict loading"):
        strict_serializer().loads_typed(("msgpack", _forgeries(marker)[name]))
    assert not marker.exists()


def test_the_error_names_the_refused_type(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"subprocess\.getoutput is not on the allow-list"):
        strict_serializer().loads_typed(("msgpack", _forgeries(tmp_path)["positional-subprocess.getoutput"]))


@pytest.mark.parametrize("type_", ["pickle", "json", "surprise"])
def test_values_that_are_not_msgpack_are_refused(type_: str) -> None:
    import pickle

    with pytest.raises(CheckpointError, match="refused"):
        strict_serializer().loads_typed((type_, pickle.dumps({"a": 1})))


def test_agent_state_values_round_trip() -> None:
    serde = strict_serializer()
    value = {
        "messages": [
            SystemMessage("rules"), HumanMessage("refund my order"),
            AIMessage("ok", tool_calls=[{"name": "refund", "args": {"order": "o1"}, "id": "c1"}]),
            ToolMessage("done", tool_call_id="c1"), AIMessageChunk("par"),
        ],
        "when": datetime.datetime.now(datetime.timezone.utc), "day": datetime.date(2026, 11, 26),
        "span": datetime.timedelta(seconds=5), "at": datetime.time(10, 30, tzinfo=datetime.timezone.utc),
        "id": uuid.uuid4(), "amount": decimal.Decimal("12.50"), "tags": {"a", "b"}, "frozen": frozenset({1}),
        "mode": Mode.EXECUTE_GATED, "interrupt": Interrupt(value={"x": 1}, id="i1"),
        "send": Send("worker", {"n": 1}), "command": Command(resume={"decisions": [{"type": "approve"}]}),
    }
    loaded = serde.loads_typed(serde.dumps_typed(value))
    # msgpack has no tuples: Command.goto comes back as [] (LangGraph's own serializer does the same).
    assert loaded.pop("command").resume == value.pop("command").resume
    assert loaded == value
    assert serde.loads_typed(serde.dumps_typed(None)) is None
    assert serde.loads_typed(serde.dumps_typed(b"raw")) == b"raw"


def test_a_type_outside_the_allow_list_fails_until_it_is_added() -> None:
    blob = JsonPlusSerializer().dumps_typed(Path("/tmp/x"))
    with pytest.raises(CheckpointError, match="pathlib"):
        strict_serializer().loads_typed(blob)
    extended = strict_serializer(extra_allowed=[("pathlib", "PosixPath")])
    assert extended.loads_typed(blob) == Path("/tmp/x")
    merged = strict_serializer().with_msgpack_allowlist([("pathlib", "PosixPath")])
    assert isinstance(merged, StrictSerializer) and merged.loads_typed(blob) == Path("/tmp/x")
    assert ("pathlib", "PosixPath") not in ALLOWED_TYPES


class _State(TypedDict):
    messages: Annotated[list[Any], add_messages]
    context: dict[str, Any]


def _graph() -> StateGraph:  # type: ignore[type-arg]
    def agent(state: _State) -> dict[str, Any]:
        return {"messages": [AIMessage("", tool_calls=[{"name": "refund", "args": {"amount": 5}, "id": "c1"}])]}

    def approval(state: _State) -> dict[str, Any]:
        answer = interrupt({"action_requests": [{"name": "refund", "args": {"amount": 5}}]})
        return {"messages": [ToolMessage(str(answer), tool_call_id="c1")], "context": {"approved": True}}

    graph = StateGraph(_State)
    graph.add_node("agent", agent)
    graph.add_node("approval", approval)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", "approval")
    return graph


def test_a_paused_run_resumes_from_a_new_store_handle(open_store) -> None:  # type: ignore[no-untyped-def]
    cfg = {"configurable": {"thread_id": "t1"}}
    first = _graph().compile(checkpointer=open_store().checkpointer())
    paused = first.invoke({"messages": [HumanMessage("refund please")], "context": {}}, cfg)
    assert paused["__interrupt__"][0].value["action_requests"][0]["name"] == "refund"
    second = _graph().compile(checkpointer=open_store().checkpointer())
    done = second.invoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg)
    assert [type(m).__name__ for m in done["messages"]] == ["HumanMessage", "AIMessage", "ToolMessage"]
    assert done["messages"][1].tool_calls[0]["args"] == {"amount": 5}
    assert done["context"] == {"approved": True}


def test_a_forged_checkpoint_row_fails_loudly_on_load(store: Store, tmp_path: Path) -> None:
    cfg = {"configurable": {"thread_id": "t1"}}
    app = _graph().compile(checkpointer=store.checkpointer())
    app.invoke({"messages": [HumanMessage("hi")], "context": {}}, cfg)
    marker = tmp_path / "pwned"
    forged = _forgeries(marker)["constructor-os.system"]
    if store.backend == "sqlite":
        changed = store._db.execute("UPDATE checkpoints SET type = 'msgpack', checkpoint = ?", (forged,))
    else:
        changed = store._db.execute("UPDATE checkpoint_blobs SET type = 'msgpack', blob = ?", (forged,))
    assert changed > 0
    with pytest.raises(CheckpointError):
        store.checkpointer().get_tuple(cfg)
    with pytest.raises(CheckpointError):
        app.get_state(cfg)
    assert not marker.exists()


async def test_the_async_checkpointer_round_trips(store: Store) -> None:
    cfg = {"configurable": {"thread_id": "t-async"}}
    async with store.acheckpointer() as saver:
        assert isinstance(saver.serde, StrictSerializer)
        app = _graph().compile(checkpointer=saver)
        await app.ainvoke({"messages": [HumanMessage("hi")], "context": {}}, cfg)
        done = await app.ainvoke(Command(resume="yes"), cfg)
        assert done["context"] == {"approved": True}
    # The sync checkpointer on the same database sees what the async one wrote.
    state = _graph().compile(checkpointer=store.checkpointer()).get_state(cfg)
    assert state.values["messages"][-1].content == "yes"
