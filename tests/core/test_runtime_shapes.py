"""The runtime takes any agent_kit graph: the factory's, or one the application compiled from
PermissionLayer.builder() with nodes of its own; and two runtimes share one compiled graph without
touching it or each other (each on its own store and checkpointer)."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from langgraph.graph import END

from agent_kit import AgentRuntime, Policy, create_permissioned_agent
from agent_kit.errors import AgentKitError
from agent_kit.store import Store
from agent_kit.testing import ScriptedChatModel, tool_call

from .conftest import POLICY, Bank, bank_specs


def _layer(tmp_path: Any, steps: list[Any]) -> tuple[Any, Bank]:
    bank = Bank(tmp_path / "bank.sqlite")
    graph = create_permissioned_agent(ScriptedChatModel(steps=steps), bank_specs(bank), Policy.from_dict(POLICY),
                                      observe=lambda text: {"sentiment": "calm"}, context_keys={"sentiment": str})
    return graph.agent_kit, bank


def test_a_graph_compiled_from_the_builder_runs_under_the_runtime(tmp_path: Any) -> None:
    layer, bank = _layer(tmp_path, [tool_call("pay", {"to": "ann", "amount": 50}), "paid", "logged"])
    seen: list[str] = []
    builder = layer.builder()

    def log_turn(state: dict[str, Any]) -> dict[str, Any]:  # the application's own node, after the agent
        seen.append(str(state["messages"][-1].content))
        return {}

    builder.add_node("log_turn", log_turn)
    builder.add_edge("log_turn", END)
    graph = builder.compile()
    assert not hasattr(graph, "agent_kit")

    store = Store.open(home=tmp_path / "home")
    try:
        rt = AgentRuntime(graph, store=store)
        assert rt.layer is layer
        paused = rt.send("t", "pay ann 50")
        assert paused.status == "paused" and paused.pending[0]["kind"] == "approval"
        assert bank.payments() == []
        done = rt.approve(paused.pending[0], approver="lee")
        assert done.status == "replied"
        assert bank.payments() == [("ann", 50.0, 0)]
        assert store.audit.verify().ok
    finally:
        store.close()


def test_a_pause_of_the_applications_own_node_is_named_not_a_key_error(tmp_path: Any) -> None:
    """The runtime decides the pauses the policy asks for; an application node's own interrupt is
    a usage error saying how to resume it (it was a KeyError from deep inside)."""
    from langgraph.graph import START
    from langgraph.types import Command, interrupt

    from agent_kit.errors import UsageError

    layer, _ = _layer(tmp_path, ["hello"])
    builder = layer.builder()
    builder.add_node("ask_staff", lambda state: {} if interrupt({"question": "go?"}) else {})
    builder.add_edge(START, "ask_staff")
    store = Store.open(home=tmp_path / "home")
    try:
        rt = AgentRuntime(builder.compile(), store=store)
        with pytest.raises(UsageError, match="waits on an interrupt agent_kit did not raise .*'question': 'go\\?'"):
            rt.send("t", "hi")
        rt.graph.invoke(Command(resume="yes"), rt._config("t"))
        assert rt.result("t").status == "replied"
    finally:
        store.close()


def test_a_builder_graph_with_a_gate_replaced_is_refused(tmp_path: Any) -> None:
    layer, _ = _layer(tmp_path, [])
    builder = layer.builder()
    spec = builder.nodes.pop("execute")
    builder.add_node("execute", lambda task: {}, destinations=spec.ends)  # an execute that skips the ledger
    graph = builder.compile()
    with pytest.raises(AgentKitError, match="missing or replaced: execute"):
        AgentRuntime(graph, store=Store.open(home=tmp_path / "h2"))


def test_a_plain_graph_is_refused_with_how_to_build_one(tmp_path: Any) -> None:
    from langgraph.graph import START, StateGraph
    from typing_extensions import TypedDict

    class S(TypedDict):
        x: int

    g = StateGraph(S)
    g.add_node("n", lambda s: s)
    g.add_edge(START, "n")
    with pytest.raises(AgentKitError, match="not an agent_kit graph; build it with create_permissioned_agent"):
        AgentRuntime(g.compile(), store=Store.open(home=tmp_path / "h3"))


def test_two_runtimes_share_one_graph_each_on_its_own_store(tmp_path: Any) -> None:
    # The scripted model answers by the thread's own history, so each thread gets the same script.
    layer, bank = _layer(tmp_path, [tool_call("pay", {"to": "ann", "amount": 5}), "paid"])
    graph = layer.compile()
    a, b = Store.open(home=tmp_path / "a"), Store.open(home=tmp_path / "b")
    try:
        ra, rb = AgentRuntime(graph, store=a), AgentRuntime(graph, store=b)
        assert ra.send("ta", "pay ann 5").status == "replied"
        assert rb.send("tb", "pay ann 5").status == "replied"
        # The graph given was not changed: no checkpointer put on it; each runtime has its own copy.
        assert graph.checkpointer is None
        assert ra.graph is not rb.graph and ra.graph.checkpointer is not rb.graph.checkpointer
        # Each thread lives in its own store only: history, audit trail and ledger.
        assert ra.exists("ta") and not ra.exists("tb")
        assert rb.exists("tb") and not rb.exists("ta")
        key_a = a.audit.entries("ta", kind="executed")[0].data["idempotency_key"]
        key_b = b.audit.entries("tb", kind="executed")[0].data["idempotency_key"]
        assert a.audit.entries("tb") == [] and b.audit.entries("ta") == []
        assert a.ledger.get(key_a) is not None and a.ledger.get(key_b) is None
        assert b.ledger.get(key_b) is not None and b.ledger.get(key_a) is None
        assert bank.payments() == [("ann", 5.0, 0), ("ann", 5.0, 0)]
        assert a.audit.verify().ok and b.audit.verify().ok
    finally:
        a.close()
        b.close()


def test_a_pending_interrupt_has_one_shape_in_the_graph_the_inbox_and_the_runtime(tmp_path: Any) -> None:
    from agent_kit.inbox import PENDING_KINDS, PendingItem
    from agent_kit.interrupts import Kind

    layer, _ = _layer(tmp_path, [tool_call("pay", {"to": "ann", "amount": 50}), "paid"])
    store = Store.open(home=tmp_path / "home")
    try:
        runtime = AgentRuntime(layer.compile(), store=store)
        result = runtime.send("t1", "pay ann 50")
        assert result.status == "paused"
        (shown,) = result.pending  # what the runtime returns (and `pending --json` prints)
        (listed,) = runtime.pending("t1")  # the inbox row the graph wrote in the node that asked
        (intr,) = runtime.state("t1").interrupts
        assert shown == listed.to_json() == PendingItem.from_request("t1", intr.id, intr.value).to_json()
        assert (shown["kind"], shown["action"], shown["rule"], shown["approvals_needed"]) == (
            "approval", {"name": "pay", "args": {"to": "ann", "amount": 50}}, "pay_over_10", 1)
        assert shown["tool_call_id"] and shown["policy_version"] and shown["question"]
        assert PENDING_KINDS == get_args(Kind)  # one literal of kinds
    finally:
        store.close()


def test_a_permissioned_graph_without_checkpoints_is_refused_when_compiled(tmp_path: Any) -> None:
    """checkpointer=False (a subgraph that never saves its steps) could neither pause for a person
    nor wait, under durability "async", for its steps to be saved before acting."""
    from agent_kit.errors import UsageError

    layer, _ = _layer(tmp_path, [])
    with pytest.raises(UsageError, match="checkpointer=False is refused for a permissioned graph"):
        layer.compile(checkpointer=False)
    with pytest.raises(UsageError, match="checkpointer=False is refused"):
        create_permissioned_agent(ScriptedChatModel(steps=[]), bank_specs(Bank(tmp_path / "b2.sqlite")),
                                  Policy.from_dict(POLICY), context_keys={"sentiment": str}, checkpointer=False)
