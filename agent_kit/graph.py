"""The permissioned agent graph: agent, permission, verification, approval, escalation, execute.

::

    START -> agent --(tool calls)--> permission --allow----------------------> execute -> agent
                                        |--needs customer----> verification --^
                                        |--needs staff-------> approval -------^ (reject: agent)
                                        |--recommend / draft-> record ---------> agent
                                        |--deny--------------> agent (tool message with the reason)
                                        '--escalate----------> escalation (pause; a person resolves)

A lone read cleared to run (``read_only``, nothing to ask) runs in the permission node's own step:
it changes nothing, so it needs no checkpointed step of its own before it runs, and costs what a
bare ``ToolNode`` does; several reads of one message run in parallel, each in an execute step.

Each tool call travels on its own (a ``Send`` per call), so parallel calls are gated one by one,
each has its own interrupt id, and an approved call never runs again when a sibling is decided
later. One call waits on a person at a time: the others that need a person wait in ``queued`` and
the agent node sends the next on its way (decided again) when one is done, so a client answering
one interrupt at a time, unkeyed, always has exactly one to answer. The agent node waits until
every call of its last message has an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph

from agent_kit import _compat, _gates, _nodes
from agent_kit._actions import arun_when_saved
from agent_kit._nodes import AgentModel
from agent_kit.errors import AgentKitError, UsageError
from agent_kit.kernel import Kernel, Sealed
from agent_kit.limits import InputLimits
from agent_kit.policy import Policy
from agent_kit.registry import ToolRegistry, ToolSpec
from agent_kit.types import Task

__all__ = ["AgentState", "PermissionLayer", "RunContext", "create_permissioned_agent"]


def _replace(old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return list(new or [])


def _count_strikes(old: int | None, new: int | str | None) -> int:
    if new == "reset":
        return 0
    return int(old or 0) + int(new or 0)


class InputState(TypedDict):
    """What a caller may send in: messages only. Context is written by nodes, never by input."""

    messages: Annotated[list[AnyMessage], add_messages]


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    context: Annotated[dict[str, Any], _gates.merge_context]
    """Trusted facts about the run (verified identity, sentiment), written only by nodes."""
    strikes: Annotated[int, _count_strikes]
    """Denials, rejections and tool errors since the customer last wrote."""
    status: str
    """``active``, or ``closed`` once a person closed an escalated case."""
    queued: Annotated[list[dict[str, Any]], _replace]
    """Calls of the last model message waiting for their turn with a person: one call waits on a
    person at a time, so a client answering one interrupt at a time always has one to answer."""
    requester: str
    """Who the conversation acts for: whoever sent its last customer message (the end user, or
    the service that started the run). Never a person who resumed it: approvers only decide."""


@dataclass(frozen=True)
class RunContext:
    """Run-scoped data, passed as LangGraph's ``context`` (``graph.invoke(..., context=...)``).

    Attributes:
        store: the :class:`agent_kit.store.Store` this run's audit entries, ledger records and
            inbox rows go to. None: the graph's own store.
        actor: who drives this invocation (see below).
    """

    store: Any = None
    actor: str | None = None
    """Who drives this invocation (an approver's name, an operator, ``"customer"``); None: the
    customer. Where LangGraph Server serves the graph with auth, its signed-in user is the actor
    whatever the context says."""


GATE_NODES = ("agent", "permission", "verification", "approval", "escalation", "execute", "record")
"""The nodes every agent_kit graph runs (PermissionLayer.builder() adds them all)."""


class PermissionLayer(Sealed):
    """The wiring of a permissioned graph: its :class:`~agent_kit.kernel.Kernel` (registry, policy,
    store, limits) and its :class:`~agent_kit._nodes.AgentModel`, both immutable. Each node method
    hands its input to the node function of :mod:`agent_kit._nodes` or :mod:`agent_kit._gates`.

    Built by :func:`create_permissioned_agent`; reachable from the compiled graph as
    ``graph.agent_kit`` (or :func:`layer_of`).
    """

    __slots__ = ("kernel", "model")
    kernel: Kernel
    model: AgentModel

    def __init__(self, kernel: Kernel, model: AgentModel) -> None:
        object.__setattr__(self, "kernel", kernel)
        object.__setattr__(self, "model", model)

    @classmethod
    def build(cls, model: BaseChatModel, registry: ToolRegistry, policy: Policy | str | Path, *,
              store: Any = None, system_prompt: str | None = None,
              observe: Callable[[str], Mapping[str, Any]] | None = None,
              identity_verifier: Callable[[str], Mapping[str, Any] | None] | None = None,
              escalation_receivers: Sequence[str] | None = None, context_keys: Mapping[str, Any] | None = None,
              limits: InputLimits | None = None) -> PermissionLayer:
        """The layer over a new kernel.

        Args:
            model: the chat model; it is bound to the tools the policy lets it see.
            system_prompt: the system message put before the conversation on every model call.
            observe: trusted classifier of each customer message -> context (e.g. sentiment).
            registry, policy, store, identity_verifier, escalation_receivers, context_keys, limits:
                the kernel's (see :class:`~agent_kit.kernel.Kernel`).
        """
        kernel = Kernel(registry, policy, store=store, identity_verifier=identity_verifier,
                        escalation_receivers=escalation_receivers, context_keys=context_keys, limits=limits)
        return cls(kernel, AgentModel.bind(model, kernel, system_prompt=system_prompt, observe=observe))

    # -- nodes -------------------------------------------------------------------------------
    def agent(self, state: AgentState, config: RunnableConfig) -> Any:
        return _nodes.agent(self.kernel, self.model, state, config)

    def permission(self, state: AgentState, config: RunnableConfig) -> Any:
        return _nodes.permission(self.kernel, state, config)

    def verification(self, task: Task, config: RunnableConfig) -> Any:
        return _gates.run_gate(self.kernel, "verification", task, config)

    def approval(self, task: Task, config: RunnableConfig) -> Any:
        return _gates.run_gate(self.kernel, "approval", task, config)

    def escalation(self, task: Task, config: RunnableConfig) -> Any:
        return _gates.run_gate(self.kernel, "escalation", task, config)

    def execute(self, task: Task, config: RunnableConfig) -> Any:
        return _gates.run_gate(self.kernel, "execute", task, config)

    def record(self, task: Task, config: RunnableConfig) -> Any:
        return _gates.run_gate(self.kernel, "record", task, config)


    # -- building ----------------------------------------------------------------------------
    def builder(self) -> StateGraph[Any, Any, Any, Any]:
        """The uncompiled graph, for custom graphs: add nodes or edges, then compile."""
        g: StateGraph[Any, Any, Any, Any] = StateGraph(AgentState, input_schema=InputState,
                                                       context_schema=RunContext)
        # A client's "Mark as Resolved" (`Command(goto=END)`) reaches the pending node, however the
        # builder is compiled.
        _compat.take_goto_end(g)
        # The agent node sends a queued call on its way when its turn with a person comes.
        g.add_node("agent", _node(self.agent, "agent"),
                   destinations=("verification", "approval", "escalation", "execute", "record"))
        g.add_node("permission", _node(self.permission, "permission"),
                   destinations=("verification", "approval", "escalation", "execute", "record", "agent"))
        # The gates are Send targets: each takes its task (one action), not the graph's state. A gate
        # may send its action to itself again (asked anew after a refused "Mark as Resolved").
        gates: dict[str, tuple[Any, tuple[str, ...]]] = {
            "verification": (self.verification, ("verification", "approval", "execute", "escalation", "agent")),
            "approval": (self.approval, ("verification", "approval", "execute", "escalation", "record", "agent")),
            "escalation": (self.escalation, ("escalation", "agent")),
            "execute": (self.execute, ("agent", "escalation", "approval", "verification")),
            "record": (self.record, ("agent",)),
        }
        for name, (node, destinations) in gates.items():
            g.add_node(name, _node(node, name), input_schema=Task, destinations=destinations)
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", _after_agent, ["permission", END])
        return g

    def compile(self, checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
                **kw: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
        if checkpointer is False:
            # A graph that never saves its steps cannot pause for a person, and nothing it decides
            # can be waited on to be saved before it acts (durability "async").
            raise UsageError("checkpointer=False is refused for a permissioned graph: its pauses and "
                             "exactly-once effects rest on its checkpoints; pass a checkpointer, or None "
                             "(a subgraph then uses its parent's, a served graph the server's)")
        graph = self.builder().compile(checkpointer=checkpointer, **kw)
        # A client's "Mark as Resolved" (`Command(goto=END)`) reaches the pending node, and a resume
        # naming an interrupt that is not pending is an error the client sees, not a silent no-op.
        _compat.take_goto_end(graph)
        _compat.strict_resume(graph)
        graph.agent_kit = self  # type: ignore[attr-defined]
        return graph


def _node(method: Callable[[Any, RunnableConfig], Any], name: str) -> Any:
    """A node of the permission layer: ``method`` in a sync run; in an asyncio run, the same once
    the checkpoints it was scheduled from are saved, waited for on the event loop (see
    :func:`agent_kit._actions.arun_when_saved`). Under ``durability="async"`` every node waits there,
    the agent's model turns too (a sync run's agent waits only before it writes): a body waiting in
    the loop's executor could hold the thread a save needs, and a model call takes far longer
    than the save it waits for."""

    async def on_loop(value: Any, config: RunnableConfig) -> Any:
        return await arun_when_saved(config, method, value, config)

    return _compat.node_runnable(method, on_loop, name)


def _after_agent(state: AgentState) -> str:
    messages = state.get("messages", [])
    last = messages[-1] if messages else None
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls) and state.get("status") != "closed":
        return "permission"
    return END


def create_permissioned_agent(
    model: BaseChatModel,
    tools: Sequence[ToolSpec | BaseTool | Callable[..., Any]],
    policy: Policy | str | Path,
    *,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: Any = None,
    system_prompt: str | None = None,
    observe: Callable[[str], Mapping[str, Any]] | None = None,
    identity_verifier: Callable[[str], Mapping[str, Any] | None] | None = None,
    context_keys: Mapping[str, Any] | None = None,
    name: str = "agent_kit",
    limits: InputLimits | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Wrap a model and its tools in permission, verification, approval and escalation nodes.

    Args:
        model: any LangChain chat model that supports tool calling.
        tools: registered tools (:func:`agent_kit.register`); a bare tool or function is
            accepted but gets no mode, so it never runs until registered.
        policy: a :class:`Policy` or the path of a YAML policy file (re-read when it changes).
        checkpointer: any LangGraph checkpointer; None compiles without one (for LangGraph
            Server); the runtime (:class:`agent_kit.AgentRuntime`) supplies the store's own. ``False``
            is refused (a graph that never saves its steps cannot pause or act exactly once).
        store: the agent_kit :class:`Store` (audit, ledger, inbox); default: opened from
            ``AGENT_KIT_HOME`` / ``AGENT_KIT_DB_URL`` on first use.
        observe: trusted classifier of each customer message -> context (e.g. sentiment).
        identity_verifier: checks a customer's identity answer -> context, or None if it fails.
        context_keys: the context keys the application writes (``observe``, ``on_result``),
            by name with their Python type (None: any), beside agent_kit's own
            (:data:`agent_kit._policy_check.LIBRARY_CONTEXT_KEYS`). A rule testing an undeclared
            key is a load error.
        limits: size limits of tool calls and results (default: :meth:`InputLimits.from_env`).

    Raises:
        PolicyError: the policy is invalid, or a rule could never fire for these tools (an
            unknown argument, fact, context key or aggregate, an operand of the wrong type).
        RegistrationError: a compensation names an unregistered tool.
    """
    registry = ToolRegistry(tools)  # (its compensations are checked by the kernel)
    layer = PermissionLayer.build(model, registry, policy, store=store, system_prompt=system_prompt,
                                  observe=observe, identity_verifier=identity_verifier, context_keys=context_keys,
                                  limits=limits)
    return layer.compile(checkpointer=checkpointer, name=name)


def layer_of(graph: Any) -> PermissionLayer:
    """The permission layer behind a compiled agent_kit graph.

    Raises:
        AgentKitError: the object is not a graph made by :func:`create_permissioned_agent`.
    """
    layer = getattr(graph, "agent_kit", None)
    if layer is None:
        # A graph the application compiled from PermissionLayer.builder(): the layer is the one
        # whose nodes it runs, and every gate must be there, run by that same layer.
        owners = {name: _compat.bound_node_owner(graph, name) for name in GATE_NODES}
        found = {id(o): o for o in owners.values() if isinstance(o, PermissionLayer)}
        if len(found) == 1 and all(isinstance(o, PermissionLayer) for o in owners.values()):
            layer = next(iter(found.values()))
        elif found:
            missing = sorted(n for n, o in owners.items() if not isinstance(o, PermissionLayer))
            raise AgentKitError(f"{type(graph).__name__} runs agent_kit nodes but not all of them (missing or "
                                f"replaced: {', '.join(missing) or 'none'}; from {len(found)} layers); keep "
                                "every node of PermissionLayer.builder() and add yours beside them")
    if not isinstance(layer, PermissionLayer):
        raise AgentKitError(
            f"{type(graph).__name__} is not an agent_kit graph; build it with create_permissioned_agent() "
            "or compile PermissionLayer.builder()"
        )
    return layer



def with_checkpointer(graph: CompiledStateGraph[Any, Any, Any, Any],
                      checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled graph on another checkpointer: a copy (never compiled again), the graph given
    left as it was."""
    layer = layer_of(graph)
    if graph.checkpointer is checkpointer:
        return graph
    copy = graph.copy(update={"checkpointer": checkpointer})
    copy.agent_kit = layer  # type: ignore[attr-defined]
    return copy
