"""The permissioned agent graph: agent, permission, verification, approval, escalation, execute.

::

    START -> agent --(tool calls)--> permission --allow----------------------> execute -> agent
                                        |--needs customer----> verification --^
                                        |--needs staff-------> approval -------^ (reject: agent)
                                        |--recommend / draft-> record ---------> agent
                                        |--deny--------------> agent (tool message with the reason)
                                        '--escalate----------> escalation (pause; a person resolves)

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
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent_kit import _compat, _gates, _provenance
from agent_kit._actions import (
    ActionRouter,
    actor_of,
    bad_call_id,
    is_handoff,
    refuse_exit_durability,
    run_context,
    thread_of,
)
from agent_kit._canonical import canonical_json
from agent_kit._policy_check import LIBRARY_CONTEXT_KEYS, check_policy
from agent_kit.errors import AgentKitError, InputError, ModelError
from agent_kit.limits import InputLimits, check_name, check_text, check_value, storable_result
from agent_kit.policy import Policy, PolicySource
from agent_kit.registry import ToolRegistry, ToolSpec
from agent_kit.types import Task

__all__ = ["AgentState", "PermissionLayer", "RunContext", "create_permissioned_agent"]


_IDENTITY_KEYS = ("customer_id", "customer_verified", "customer_name")


def _merge_context(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Later writes win, except the conversation's identity: once set, it is never replaced by
    another customer's (the nodes refuse and audit such a claim; this keeps any other writer,
    two parallel verifications or a state write, from doing it silently)."""
    old, new = old or {}, new or {}
    held = old.get("customer_id")
    if held and "customer_id" in new and new["customer_id"] != held:
        new = {k: v for k, v in new.items() if k not in _IDENTITY_KEYS}
        if isinstance(new.get(_provenance.SIGNED), dict):
            new[_provenance.SIGNED] = {k: v for k, v in new[_provenance.SIGNED].items() if k not in _IDENTITY_KEYS}
    return _provenance.merge(old, new)


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
    context: Annotated[dict[str, Any], _merge_context]
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


def _run_store() -> Any:
    """The store given in the current run's context, if the code runs inside a run and one was given."""
    from agent_kit.store import Store

    store = getattr(run_context(), "store", None)
    # Only a store object: a served graph's client may send a context, but never a store.
    return store if isinstance(store, Store) else None


GATE_NODES = ("agent", "permission", "verification", "approval", "escalation", "execute", "record")
"""The nodes every agent_kit graph runs (PermissionLayer.builder() adds them all)."""


class PermissionLayer(ActionRouter):
    """The nodes and their shared parts: registry, policy, store, model.

    Built by :func:`create_permissioned_agent`; reachable from the compiled graph as
    ``graph.agent_kit``.
    """

    def __init__(
        self,
        model: BaseChatModel,
        registry: ToolRegistry,
        policy: Policy | str | Path,
        *,
        store: Any = None,
        system_prompt: str | None = None,
        observe: Callable[[str], Mapping[str, Any]] | None = None,
        identity_verifier: Callable[[str], Mapping[str, Any] | None] | None = None,
        escalation_receivers: Sequence[str] | None = None,
        context_keys: Mapping[str, Any] | None = None,
        limits: InputLimits | None = None,
    ) -> None:
        _compat.check()  # an incompatible LangGraph stops here, not at the first paused action
        self.registry = registry
        self.limits = limits if limits is not None else InputLimits.from_env()
        """Size limits of what the model writes (tool calls) and what tools return."""
        self.context_keys: dict[str, Any] = {**LIBRARY_CONTEXT_KEYS, **(context_keys or {})}
        """The trusted context keys policy rules may test: agent_kit's and the application's."""

        def check(p: Policy) -> None:
            check_policy(p, registry, self.context_keys)

        if isinstance(policy, Policy):
            check(policy)
            self._source: PolicySource | None = None
            self._policy = policy
        else:
            self._source = PolicySource(policy, check)
            self._policy = self._source.current()
        self._store = store
        self.system_prompt = system_prompt
        self.observe = observe
        self.identity_verifier = identity_verifier
        visible = [s.model_tool for s in registry.values()
                   if s.name in self._policy.tools and not _is_compensation(registry, s)]
        self.model = model
        self.bound_model = model.bind_tools(visible) if visible else model
        self._receivers = tuple(escalation_receivers or ())
        self.compensations = frozenset(s.compensation.tool for s in registry.values() if s.compensation)

    # -- shared parts ------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        """The current policy: its files are hashed again on every use, and read again when any
        of them changed (whatever its mtime), so every decision, and every resumed run, is made
        under the policy as it is now."""
        if self._source is not None:
            self._policy = self._source.current()
        return self._policy

    @property
    def escalation_receivers(self) -> tuple[str, ...]:  # type: ignore[override]
        """Who may resolve escalations: as given, else the current policy's receivers."""
        return self._receivers or tuple(self.policy.document.escalation.receivers)

    @property
    def store(self) -> Any:
        """The store this run writes to: the one its caller passed in the run's context (each
        :class:`AgentRuntime` passes its own), else the graph's, else opened from the environment."""
        run_store = _run_store()
        if run_store is not None:
            return run_store
        if self._store is None:
            from agent_kit.store import Store

            self._store = Store.open()
        return self._store

    # -- nodes -------------------------------------------------------------------------------
    def agent(self, state: AgentState, config: RunnableConfig) -> Any:
        refuse_exit_durability(config)
        messages: list[BaseMessage] = list(state.get("messages", []))
        update: dict[str, Any] = {}
        last = messages[-1] if messages else None
        refused = self.refused_messages(messages)
        if refused is not None:
            return refused
        superseded = self.superseded_calls(messages, state, config) if isinstance(last, HumanMessage) else None
        if superseded is not None:
            messages, update = superseded
        if isinstance(last, HumanMessage):
            update["strikes"] = "reset"
            update["status"] = "active"
            if not is_handoff(last):  # an operator's hand-back note does not change who asks
                update["requester"] = actor_of(config)
            if self.observe is not None:
                try:
                    observed = dict(self.observe(_text(last)) or {})
                except Exception:  # a failing classifier adds nothing; it must not wedge the thread
                    observed = {}
                update["context"] = self.signed_context(observed, config, by="agent", source=str(last.id or ""))
        elif _unanswered(messages):
            if state.get("queued"):
                return self.dispatch_queued(state, config)  # the next call's turn with a person
            return {}  # a sibling call is still on its way; the last one to finish wakes us again
        if not isinstance(last, HumanMessage) and int(state.get("strikes") or 0) >= self.policy.max_strikes:
            return self.escalate_strikes(state, config)
        if state.get("status") == "closed" and not isinstance(last, HumanMessage):
            note = self.trust(state.get("context"), config, node="agent").get(
                "closing_note", "A person has closed this case.")
            return {"messages": [AIMessage(content=note)]}
        prompt: list[BaseMessage] = [SystemMessage(content=self.system_prompt)] if self.system_prompt else []
        try:
            response = self.bound_model.invoke(prompt + messages, config)
        except GraphBubbleUp:
            raise
        except AgentKitError:
            raise
        except Exception as exc:  # a model server down or answering garbage: say which and where
            raise model_error(self.model, exc) from exc
        update["messages"] = [*update.get("messages", []), checked_calls(response, self.limits)]
        return update

    def superseded_calls(self, messages: list[BaseMessage], state: AgentState,
                         config: RunnableConfig) -> tuple[list[BaseMessage], dict[str, Any]] | None:
        """A new message reached the graph while calls of the last AI message still waited (on a
        person, or in the queue): LangGraph runs new input from the start, so their interrupts are
        gone. They are closed visibly, never left orphaned: each gets a tool message "not run:
        superseded", its inbox item leaves and the closing is audited; the new messages move after
        those answers, so the history stays one a model accepts. (The runtime holds such messages
        instead; a served graph's auth handler refuses them while staff decide.)"""
        k = len(messages)
        while k > 0 and isinstance(messages[k - 1], HumanMessage):
            k -= 1
        if k == 0 or not _unanswered(messages[:k]):
            return None
        answered = {m.tool_call_id for m in messages[:k] if isinstance(m, ToolMessage)}
        ai = next(m for m in reversed(messages[:k]) if isinstance(m, AIMessage))
        waiting = [tc for tc in ai.tool_calls if tc["id"] not in answered]
        thread = thread_of(config)
        items = {item.tool_call_id: item for item in self.store.inbox.for_thread(thread)}
        notes: list[BaseMessage] = []
        for tc in waiting:
            item = items.get(tc["id"])
            reason = ("not run: superseded by a new message from the customer while it waited"
                      + (f" on a {item.kind}" if item else "") + "; ask again if it is still wanted")
            key = f"superseded:{ai.id}/{tc['id']}"
            if self.store.audit.by_key(f"{thread}:{key}") is None:
                action = {"tool": tc["name"], "hash": item.action_hash if item else None}
                self.audit("refused", action, config, actor=actor_of(config), key=key,
                           interrupt_id=item.interrupt_id if item else None,
                           data={"rule": "superseded", "error": reason, "tool_call_id": tc["id"]},
                           close_inbox=item.interrupt_id if item else None)
            notes.append(ToolMessage(content=reason, tool_call_id=tc["id"], name=tc["name"], status="error"))
        # Answers go right after the AI message: the new messages are removed and added again after them.
        moved = [HumanMessage(content=m.content, id=f"{m.id}-after", additional_kwargs=m.additional_kwargs)
                 for m in messages[k:]]
        removed: list[Any] = [RemoveMessage(id=str(m.id)) for m in messages[k:]]
        return [*messages[:k], *notes, *moved], {"messages": [*removed, *notes, *moved], "queued": []}

    def refused_messages(self, messages: Sequence[BaseMessage]) -> dict[str, Any] | None:
        """Messages that reached the graph without the runtime's door (a served graph's input)
        and cannot be kept as they are: each is replaced by a note of its refusal, and the
        customer is told, so the thread stays usable. None when every new message is fine."""
        notes: list[BaseMessage] = []
        reasons: list[str] = []
        for m in reversed(messages):
            if not isinstance(m, HumanMessage):
                break
            try:
                check_text(_text(m), "message", max_chars=self.limits.max_message_chars)
            except InputError as exc:
                reasons.append(str(exc))
                notes.append(HumanMessage(content=f"(a message that was refused: {exc})", id=m.id))
        if not notes:
            return None
        return {"messages": [*notes, AIMessage(content="I could not accept your message: " + "; ".join(reasons)
                                                + ". Please send it again as plain text.")]}

    def permission(self, state: AgentState, config: RunnableConfig) -> Any:
        return self.decide_turn(state, config)

    def verification(self, task: Task, config: RunnableConfig) -> Any:
        return self._gate("verification", _gates.verification, task, config)

    def approval(self, task: Task, config: RunnableConfig) -> Any:
        return self._gate("approval", _gates.approval, task, config)

    def escalation(self, task: Task, config: RunnableConfig) -> Any:
        return self._gate("escalation", _gates.escalation, task, config)

    def execute(self, task: Task, config: RunnableConfig) -> Any:
        return self._gate("execute", _gates.execute, task, config)

    def record(self, task: Task, config: RunnableConfig) -> Any:
        return self._gate("record", _gates.record, task, config)

    def _gate(self, node: str, body: Callable[[Any, Task, RunnableConfig], Any], task: Task,
              config: RunnableConfig) -> Any:
        """Run a gate node's body on its task, if agent_kit's nodes sent it (else back to the agent)."""
        if not self.signed_task(task, config, node):
            return Command(goto="agent")
        return body(self, self._trusted_task(task, config, node), config)

    def _trusted_task(self, task: Task, config: RunnableConfig, node: str) -> Task:
        """The task (its action checked by :meth:`signed_task`, its MAC taken off) with the thread's
        current context, only what agent_kit's nodes wrote for this thread (see _provenance)."""
        action = {k: v for k, v in task["action"].items() if k != _provenance.ACTION_MAC}
        # The conversation's context as the thread holds it now, not as the task carried it: a task
        # replayed later (its MAC still good) is decided under the customer's current state.
        current = _compat.state_value("context")
        context = current if isinstance(current, Mapping) else task.get("context")
        return {**task, "action": action,  # type: ignore[typeddict-item]
                "context": self.trust(context, config, node=node)}

    # -- building ----------------------------------------------------------------------------
    def builder(self) -> StateGraph[Any, Any, Any, Any]:
        """The uncompiled graph, for custom graphs: add nodes or edges, then compile."""
        g: StateGraph[Any, Any, Any, Any] = StateGraph(AgentState, input_schema=InputState,
                                                       context_schema=RunContext)
        # A client's "Mark as Resolved" (`Command(goto=END)`) reaches the pending node, however the
        # builder is compiled.
        _compat.take_goto_end(g)
        # The agent node sends a queued call on its way when its turn with a person comes.
        g.add_node("agent", self.agent, destinations=("verification", "approval", "escalation", "execute", "record"))
        g.add_node("permission", self.permission,
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
            g.add_node(name, node, destinations=destinations)
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", _after_agent, ["permission", END])
        return g

    def compile(self, checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
                **kw: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
        graph = self.builder().compile(checkpointer=checkpointer, **kw)
        # A client's "Mark as Resolved" (`Command(goto=END)`) reaches the pending node, and a resume
        # naming an interrupt that is not pending is an error the client sees, not a silent no-op.
        _compat.take_goto_end(graph)
        _compat.strict_resume(graph)
        graph.agent_kit = self  # type: ignore[attr-defined]
        return graph


def model_endpoint(model: Any) -> str | None:
    """The URL a chat model calls, when it says (OpenAI-compatible clients keep it on the model
    or its client), else None."""
    for attr in ("openai_api_base", "base_url", "api_base", "endpoint_url", "endpoint"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    for holder in ("root_client", "client"):
        value = getattr(getattr(model, holder, None), "base_url", None)
        if value:
            return str(value)
    return None


def model_error(model: Any, exc: BaseException) -> ModelError:
    """A :class:`ModelError` for ``exc`` raised by ``model``: its name, its URL and the cause."""
    name = str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
    url = model_endpoint(model)
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = f" at {url}" if url else ""
    return ModelError(f"the model {name}{where} failed: {type(exc).__name__}"
                      + (f": {cause}" if cause else "")
                      + (" (is a server running at that URL?)" if url else ""),
                      model=name, url=url)


def checked_calls(message: Any, limits: InputLimits) -> Any:
    """The model's message with every tool call whose name, id or arguments cannot be stored as
    they are (or are over the limits) moved to ``invalid_tool_calls``: refused, audited as denied,
    and the model is told why, as for a call that could not be parsed."""
    if not isinstance(message, AIMessage) or not message.tool_calls:
        return message
    good: list[Any] = []
    bad: list[Any] = list(message.invalid_tool_calls)
    calls = list(message.tool_calls)
    if len(calls) > limits.max_tool_calls:
        # Past the limit, the calls are dropped as one refused call (answered once, one strike):
        # deciding thousands of calls one by one is what the limit is there to avoid.
        dropped = calls[limits.max_tool_calls:]
        calls = calls[:limits.max_tool_calls]
        bad.append({"type": "invalid_tool_call", "name": "too_many_tool_calls", "args": "",
                    "id": "refused_calls",
                    "error": f"the model asked for {len(message.tool_calls)} tool calls in one message; the limit is "
                             f"{limits.max_tool_calls} (InputLimits.max_tool_calls), so {len(dropped)} were not run: "
                             "ask for them after these"})
    for i, tc in enumerate(calls):
        try:
            check_name(tc.get("name"), "the tool name", max_chars=limits.max_name_chars)
            if tc.get("id") is not None:
                check_name(tc["id"], "the tool call id", max_chars=limits.max_name_chars)
            check_value(tc.get("args"), f"the arguments of {tc.get('name')!r}", max_chars=limits.max_args_chars,
                        max_depth=limits.max_depth)
        except InputError as exc:
            shown = canonical_json(storable_result(tc.get("args"), max_depth=4))
            name = storable_result(tc.get("name"), max_depth=1)
            bad.append({"type": "invalid_tool_call", "name": str(name)[:limits.max_name_chars] if name else None,
                        "args": shown[:200], "id": f"refused_call_{i}", "error": str(exc)})
            continue
        good.append(tc)
    if len(good) == len(message.tool_calls):
        return message
    return message.model_copy(update={"tool_calls": good, "invalid_tool_calls": bad})


def _is_compensation(registry: ToolRegistry, spec: ToolSpec) -> bool:
    return any(s.compensation and s.compensation.tool == spec.name for s in registry.values())


def _text(message: BaseMessage) -> str:
    c = message.content
    if isinstance(c, str):
        return c
    return " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c)


def _unanswered(messages: Sequence[BaseMessage]) -> bool:
    """Whether the last AI message has tool calls still without a tool message."""
    answered: set[str] = set()
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            answered.add(m.tool_call_id)
        elif isinstance(m, AIMessage):
            return any(tc["id"] not in answered for tc in m.tool_calls) or any(
                bad_call_id(b, i) not in answered for i, b in enumerate(m.invalid_tool_calls))
        else:
            return False
    return False


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
            Server); the runtime (:class:`agent_kit.AgentRuntime`) supplies the store's own.
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
    registry = ToolRegistry(tools)
    registry.check_compensations()
    layer = PermissionLayer(model, registry, policy, store=store, system_prompt=system_prompt,
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
