"""The kernel is composed once and never changed: the layer a graph runs is its kernel and its model,
each node a function of the kernel that returns the graph's update. (Two runtimes over one graph, each
with its own store, leave it as it was: tests/core/test_runtime_shapes.py.)"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command, Send

from agent_kit import Kernel, PermissionLayer, UsageError, _nodes, layer_of
from agent_kit.testing import tool_call


def test_the_kernel_and_the_layer_refuse_to_be_changed(kit_factory: Any) -> None:
    kit = kit_factory(["hello"])
    layer = layer_of(kit.graph)
    assert isinstance(layer, PermissionLayer) and isinstance(layer.kernel, Kernel)
    kernel = layer.kernel
    for obj, name in ((kernel, "registry"), (kernel, "_store"), (kernel, "anything"), (layer, "kernel"),
                      (layer, "model")):
        with pytest.raises(UsageError, match="immutable"):
            setattr(obj, name, None)
    with pytest.raises(TypeError):
        kernel.context_keys["tier"] = str  # type: ignore[index]
    with pytest.raises(TypeError):
        kernel.context_keys |= {"tier": str}  # type: ignore[operator]
    for obj, name in ((kernel, "registry"), (layer, "kernel"), (layer, "model")):
        with pytest.raises(UsageError, match="immutable"):
            delattr(obj, name)
    assert copy.copy(kernel) is kernel and copy.deepcopy(layer) is layer
    with pytest.raises(AttributeError):  # no __dict__ to hide new state in
        object.__setattr__(kernel, "extra", 1)


def test_the_permission_node_is_a_function_of_the_kernel_returning_its_sends(kit_factory: Any) -> None:
    kit = kit_factory([tool_call("pay", {"to": "ann", "amount": 5})])
    kernel = layer_of(kit.graph).kernel
    ai = AIMessage(content="", id="m1", tool_calls=[
        {"name": "pay", "args": {"to": "ann", "amount": 5}, "id": "c1", "type": "tool_call"},
        {"name": "pay", "args": {"to": "bob", "amount": 50}, "id": "c2", "type": "tool_call"},
        {"name": "nope", "args": {}, "id": "c3", "type": "tool_call"}])
    state = {"messages": [HumanMessage(content="pay", id="h1"), ai], "context": {}, "strikes": 0}
    config = {"configurable": {"thread_id": "t-direct"}}
    cmd = _nodes.permission(kernel, state, config)
    assert isinstance(cmd, Command)
    sends = [g for g in cmd.goto if isinstance(g, Send)]
    assert [(s.node, s.arg["action"]["tool_call_id"]) for s in sends] == [("execute", "c1"), ("approval", "c2")]
    assert [m.tool_call_id for m in cmd.update["messages"]] == ["c3"]  # the unknown tool: denied, told why
    assert cmd.update["strikes"] == 1


def test_tools_added_to_the_registry_later_do_not_reach_a_built_kernel(kit_factory: Any) -> None:
    from agent_kit.registry import register

    kit = kit_factory(["hello"])
    registry = kit.graph.agent_kit.kernel.registry
    passed = type(registry)(registry.values())
    built = kit.graph.agent_kit.kernel
    kernel = Kernel(passed, built.policy, store=kit.store, context_keys=built.context_keys)

    def late(x: int) -> int:
        """A tool registered after the kernel was built."""
        return x

    passed.add(register(late, "read_only"))
    assert "late" in passed and "late" not in kernel.registry
    assert kernel.new_action("late", {"x": 1}, "c1", requested_by="customer", context={}, thread="t")["decision"]["outcome"] == "deny"


def test_a_compensation_naming_an_unregistered_tool_is_refused_when_the_graph_is_built(tmp_path: Any) -> None:
    from agent_kit import RegistrationError, create_permissioned_agent
    from agent_kit.policy import Policy
    from agent_kit.store import Store
    from agent_kit.testing import ScriptedChatModel
    from tests.core.conftest import POLICY, Bank, bank_specs

    specs = [s for s in bank_specs(Bank(tmp_path / "bank.sqlite")) if s.name != "unpay"]  # pay's undo is gone
    store = Store.open(home=tmp_path)
    try:
        with pytest.raises(RegistrationError, match="'pay' names compensation 'unpay', which is not registered"):
            create_permissioned_agent(ScriptedChatModel(steps=["hi"]), specs, Policy.from_dict(POLICY), store=store,
                                      context_keys={"sentiment": str})
    finally:
        store.close()
