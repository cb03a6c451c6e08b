"""The private LangGraph seams of agent_kit._compat: present, and behaving as agent_kit assumes.

Each seam is checked against what the installed LangGraph actually does (the id of a real
interrupt, the answers a real resume stores, the durability a real invocation runs with, the codes
the real serializer writes), so a LangGraph release that moves one fails here by name. A LangGraph
made incompatible on purpose (a seam removed, a version outside the proven range) is refused by
:func:`agent_kit._compat.check` and by ``create_permissioned_agent`` with one line.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any, TypedDict

import langgraph.types
import ormsgpack
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from agent_kit import _compat
from agent_kit._compat import IncompatibleLangGraphError
from agent_kit.errors import AgentKitError


@pytest.fixture(autouse=True)
def _fresh_check() -> Any:
    """check() caches its first success; each test here decides afresh, and leaves no verdict behind."""
    _compat._checked.cache_clear()
    yield
    _compat._checked.cache_clear()


class S(TypedDict, total=False):
    answers: list[Any]


def test_installed_langgraph_has_every_seam() -> None:
    assert _compat.problems() == []
    _compat.check()


def test_next_interrupt_id_and_answers_stored_match_real_interrupts() -> None:
    seen: list[tuple[str, int]] = []

    def ask_twice(state: S) -> S:
        seen.append((_compat.next_interrupt_id(0), _compat.answers_stored()))
        first = interrupt("first?")
        seen.append((_compat.next_interrupt_id(1), _compat.answers_stored()))
        second = interrupt("second?")
        return {"answers": [first, second]}

    g = StateGraph(S)
    g.add_node("ask", ask_twice)
    g.add_edge(START, "ask")
    graph = g.compile(checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "t"}}

    graph.invoke({}, cfg)
    first = graph.get_state(cfg).interrupts
    assert [i.id for i in first] == [seen[0][0]]
    assert seen[0][1] == 0

    graph.invoke(Command(resume="a"), cfg)
    second = graph.get_state(cfg).interrupts
    # Re-entry replays the first answer: one answer stored, and the next id is the second interrupt's.
    assert [i.id for i in second] == [seen[-1][0]]
    assert seen[-1][1] == 1
    assert second[0].id != first[0].id

    out = graph.invoke(Command(resume="b"), cfg)
    assert out["answers"] == ["a", "b"]


@pytest.mark.parametrize("mode", ["sync", "async", "exit"])
def test_durability_is_the_invocations(mode: str) -> None:
    got: list[str | None] = []

    def node(state: S) -> S:
        got.append(_compat.durability(get_config()))
        return {}

    g = StateGraph(S)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.compile(checkpointer=InMemorySaver()).invoke({}, {"configurable": {"thread_id": "d"}}, durability=mode)
    assert got == [mode]


def test_ext_codes_are_the_ones_the_serializer_writes() -> None:
    codes = _compat.ext_codes()
    kind, blob = JsonPlusSerializer().dumps_typed(dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc))
    written: list[int] = []

    def hook(code: int, data: bytes) -> Any:
        written.append(code)
        return ormsgpack.unpackb(data)

    ormsgpack.unpackb(blob, ext_hook=hook)
    assert kind == "msgpack"
    assert written == [codes["EXT_METHOD_SINGLE_ARG"]]


def test_a_removed_seam_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(langgraph.types, "_interrupt_id")
    found = _compat.problems()
    assert any("langgraph.types._interrupt_id" in p for p in found), found
    with pytest.raises(IncompatibleLangGraphError) as info:
        _compat.check()
    assert "langgraph.types._interrupt_id" in str(info.value)
    assert isinstance(info.value, AgentKitError)


def test_a_changed_seam_shape_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(langgraph.types, "_interrupt_id", lambda ns: "same")
    assert any("signature" in p for p in _compat.problems())


def test_a_version_outside_the_proven_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compat, "_version", lambda: "1.3.0")
    with pytest.raises(IncompatibleLangGraphError) as info:
        _compat.check()
    assert info.value.version == "1.3.0"
    assert ">=1.2,<1.3" in str(info.value)


def test_pyproject_pins_the_proven_range() -> None:
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    low, high = _compat.SUPPORTED_LANGGRAPH
    assert f"langgraph>={low[0]}.{low[1]},<{high[0]}.{high[1]}" in data["project"]["dependencies"]


INCOMPATIBLE = r"""
from agent_kit import Mode, Policy, create_permissioned_agent, register
from agent_kit.testing import ScriptedChatModel
import langgraph.types
del langgraph.types._interrupt_id           # a LangGraph that moved the seam (LangGraph itself imports it first)

def ping() -> str:
    "Ping."
    return "pong"

policy = Policy.from_dict({"version": 1, "tools": {"ping": {"mode": "read_only"}}})
create_permissioned_agent(ScriptedChatModel(steps=[]), [register(ping, Mode.READ_ONLY)], policy)
"""


def test_an_incompatible_langgraph_stops_the_build_with_one_line(tmp_path: Any) -> None:
    proc = subprocess.run([sys.executable, "-c", INCOMPATIBLE], capture_output=True, text=True, timeout=120,
                          env={"AGENT_KIT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("agent_kit._compat.IncompatibleLangGraphError: this agent_kit does not work with"), last
    assert "langgraph.types._interrupt_id" in last
