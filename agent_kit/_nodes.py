"""The agent and permission nodes: functions of the :class:`~agent_kit.kernel.Kernel` that take the
graph's state and return its update or a ``Command``. The gate nodes are in :mod:`agent_kit._gates`;
:mod:`agent_kit.graph` wires them all.

- ``agent``: takes the customer's new message in (refused if it cannot be kept, closing the calls it
  supersedes, observed by the application's classifier), sends a queued call on its way when its
  turn with a person comes, hands a failing run to a person, else asks the model.
- ``permission``: decides every call of the model's last message and sends each to its gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command

from agent_kit import _gates
from agent_kit._actions import (
    GATES,
    _gotos,
    _unparsable,
    _waits_on_person,
    act_on_saved_state,
    actor_of,
    bad_call_id,
    call_id,
    is_handoff,
    next_steps,
    refuse_exit_durability,
    requester_of,
    thread_of,
    tool_message,
)
from agent_kit._canonical import canonical_json, idempotency_key
from agent_kit.errors import AgentKitError, InputError, ModelError
from agent_kit.interrupts import now_iso
from agent_kit.kernel import Kernel
from agent_kit.limits import InputLimits, check_name, check_text, check_value, storable_result
from agent_kit.modes import Mode
from agent_kit.registry import ToolRegistry, ToolSpec
from agent_kit.types import Action, Sibling

__all__ = ["AgentModel", "agent", "checked_calls", "model_endpoint", "model_error", "permission"]


@dataclass(frozen=True)
class AgentModel:
    """The agent node's model: the chat model, the same bound to the tools the policy lets it see
    (compensations never: they run only through a permissioned rollback), the system prompt, and
    the application's classifier of customer messages."""

    chat: BaseChatModel
    bound: Any
    system_prompt: str | None = None
    observe: Callable[[str], Mapping[str, Any]] | None = None

    @classmethod
    def bind(cls, chat: BaseChatModel, kernel: Kernel, *, system_prompt: str | None = None,
             observe: Callable[[str], Mapping[str, Any]] | None = None) -> AgentModel:
        registry, policy = kernel.registry, kernel.policy
        visible = [s.model_tool for s in registry.values()
                   if s.name in policy.tools and not _is_compensation(registry, s)]
        return cls(chat, chat.bind_tools(visible) if visible else chat, system_prompt, observe)


# -- the agent node ----------------------------------------------------------------------------
def agent(kernel: Kernel, model: AgentModel, state: Mapping[str, Any], config: RunnableConfig) -> Any:
    """The agent node: take the customer's message in (refused, superseding, observed), then ask the model."""
    refuse_exit_durability(config)
    messages: list[BaseMessage] = list(state.get("messages", []))
    update: dict[str, Any] = {}
    last = messages[-1] if messages else None
    refused = refused_messages(kernel, messages)
    if refused is not None:
        return refused
    superseded = superseded_calls(kernel, messages, state, config) if isinstance(last, HumanMessage) else None
    if superseded is not None:
        messages, update = superseded
    if isinstance(last, HumanMessage):
        update["strikes"] = "reset"
        update["status"] = "active"
        if not is_handoff(last):  # an operator's hand-back note does not change who asks
            update["requester"] = actor_of(config)
        if model.observe is not None:
            try:
                observed = dict(model.observe(_text(last)) or {})
            except Exception:  # a failing classifier adds nothing; it must not wedge the thread
                observed = {}
            update["context"] = kernel.signed_context(observed, config, by="agent", source=str(last.id or ""))
    elif _unanswered(messages):
        queued = {a["tool_call_id"] for a in state.get("queued") or []}
        if queued and _unanswered_ids(messages) <= queued:
            return dispatch_queued(kernel, state, config)  # the next call's turn with a person
        # A sibling call is still on its way, or waits on a person (whoever woke us: the queue's
        # next call is not asked before the person decides); the last one to finish wakes us again.
        return {}
    if not isinstance(last, HumanMessage) and int(state.get("strikes") or 0) >= kernel.policy.max_strikes:
        return escalate_strikes(kernel, state, config)
    if state.get("status") == "closed" and not isinstance(last, HumanMessage):
        note = kernel.trust(state.get("context"), config, node="agent").get(
            "closing_note", "A person has closed this case.")
        return {"messages": [AIMessage(content=note)]}
    prompt: list[BaseMessage] = [SystemMessage(content=model.system_prompt)] if model.system_prompt else []
    try:
        response = model.bound.invoke(prompt + messages, config)
    except GraphBubbleUp:
        raise
    except AgentKitError:
        raise
    except Exception as exc:  # a model server down or answering garbage: say which and where
        raise model_error(model.chat, exc) from exc
    update["messages"] = [*update.get("messages", []), checked_calls(response, kernel.limits)]
    return update

def superseded_calls(kernel: Kernel, messages: list[BaseMessage], state: Mapping[str, Any],
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
    # Answers to the last AI message only: a model may reuse its ids from one message to the next.
    unanswered = _unanswered_ids(messages[:k])
    if not unanswered:
        return None
    ai = next(m for m in reversed(messages[:k]) if isinstance(m, AIMessage))
    waiting = [tc for tc in ai.tool_calls if tc["id"] in unanswered]
    act_on_saved_state(config)
    thread = thread_of(config)
    items = {item.tool_call_id: item for item in kernel.store.inbox.for_thread(thread)}
    notes: list[BaseMessage] = []
    for tc in waiting:
        item = items.get(tc["id"])
        reason = ("not run: superseded by a new message from the customer while it waited"
                  + (f" on a {item.kind}" if item else "") + "; ask again if it is still wanted")
        key = f"superseded:{ai.id}/{tc['id']}"
        if kernel.store.audit.by_key(f"{thread}:{key}") is None:
            action = {"tool": tc["name"], "hash": item.action_hash if item else None}
            kernel.audit("refused", action, config, actor=actor_of(config), key=key,
                       interrupt_id=item.interrupt_id if item else None,
                       data={"rule": "superseded", "error": reason, "tool_call_id": tc["id"]},
                       close_inbox=item.interrupt_id if item else None)
        notes.append(ToolMessage(content=reason, tool_call_id=tc["id"], name=tc["name"], status="error"))
    # Answers go right after the AI message: the new messages are removed and added again after them.
    moved = [HumanMessage(content=m.content, id=f"{m.id}-after", additional_kwargs=m.additional_kwargs)
             for m in messages[k:]]
    removed: list[Any] = [RemoveMessage(id=str(m.id)) for m in messages[k:]]
    return [*messages[:k], *notes, *moved], {"messages": [*removed, *notes, *moved], "queued": []}

def refused_messages(kernel: Kernel, messages: Sequence[BaseMessage]) -> dict[str, Any] | None:
    """Messages that reached the graph without the runtime's door (a served graph's input)
    and cannot be kept as they are: each is replaced by a note of its refusal, and the
    customer is told, so the thread stays usable. None when every new message is fine."""
    notes: list[BaseMessage] = []
    reasons: list[str] = []
    for m in reversed(messages):
        if not isinstance(m, HumanMessage):
            break
        try:
            check_text(_text(m), "message", max_chars=kernel.limits.max_message_chars)
        except InputError as exc:
            reasons.append(str(exc))
            notes.append(HumanMessage(content=f"(a message that was refused: {exc})", id=m.id))
    if not notes:
        return None
    return {"messages": [*notes, AIMessage(content="I could not accept your message: " + "; ".join(reasons)
                                            + ". Please send it again as plain text.")]}




# -- the permission node -----------------------------------------------------------------------
def permission(kernel: Kernel, state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
    """The permission node: decide every call of the last AI message and send each on its way."""
    refuse_exit_durability(config)
    messages = state.get("messages", [])
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    context = kernel.trust(state.get("context"), config, node="permission")
    if last is None or not (last.tool_calls or last.invalid_tool_calls):
        return Command(goto="agent")
    act_on_saved_state(config)  # decisions, reservations and inbox items name this message's calls
    requester = requester_of(state, config)
    thread = thread_of(config)
    actions = [kernel.new_action(tc["name"], tc.get("args"), tc["id"] or "", requested_by=requester, context=context,
                               thread=thread, turn=last.id)
               for tc in last.tool_calls]
    # Calls the model wrote but that could not be parsed (an OpenAI-compatible server's
    # `invalid_tool_calls`): refused like invalid arguments, so the model hears why.
    actions += [kernel.new_action(str(bad.get("name") or "unknown"), None, bad_call_id(bad, i),
                                requested_by=requester, context=context, thread=thread, turn=last.id,
                                invalid=_unparsable(bad))
                for i, bad in enumerate(last.invalid_tool_calls)]
    if len(actions) > 1:
        # Calls of one message are decided together: each one's running totals include the
        # others, so asking in pieces in one message gets no more than asking at once.
        valid: list[Sibling] = [
            {"key": idempotency_key(thread, call_id(a), a["hash"]), "call": call_id(a), "tool": a["tool"],
             "args": a["args"]}
            for a in actions if a["decision"].get("rule") != "validation"]
        for a in actions:
            a["siblings"] = valid
    denials = sum(1 for a in actions if a["decision"]["outcome"] == "deny")
    strikes = int(state.get("strikes") or 0)
    if strikes + denials >= kernel.policy.max_strikes:
        return _escalate_turn(kernel, actions, context, config, strikes + denials)
    updates: list[Any] = []
    gotos: list[Any] = []
    queued: list[Action] = []
    reads: list[Action] = []
    for action in actions:
        # A lone call was decided a moment ago, in this node, under this policy: route by that
        # decision. Calls of one message are decided again, each with its siblings counted.
        decision, gate = kernel.gate_of(action, context, thread,
                                        decision=kernel.recorded_decision(action) if len(actions) == 1 else None)
        if gate in GATES and any(_waits_on_person(g) for g in gotos):
            # One call waits on a person at a time: a client that answers one interrupt at
            # a time (Agent Chat UI resumes unkeyed) always has exactly one to answer. The
            # rest are decided again, under the context as it is then, when it is their turn.
            queued.append(action)
            continue
        if gate == "execute" and decision.mode is Mode.READ_ONLY:
            reads.append({**action, "decision": decision.to_json()})
            continue
        _collect(kernel.route(action, context, config, decision=decision), updates, gotos)
    context_update: dict[str, Any] | None = None
    if len(reads) == 1:
        # A lone read cleared to run changes nothing, so it needs no checkpointed step of its own:
        # it runs here. Several run in parallel, each in an execute step.
        read = _gates.read(kernel, reads[0], context, config, node="permission")
        context_update = (read.update or {}).get("context")
        _collect(read, updates, gotos)
    else:
        gotos.extend(kernel.send("execute", r, context) for r in reads)
    return _routed(updates, gotos, queued, context_update)


def _collect(cmd: Command[Any], updates: list[Any], gotos: list[Any]) -> None:
    """Keep what routing one call came to: its answer, if any, and where it goes next."""
    if cmd.update:
        updates.append(cmd.update)
    gotos.extend(_gotos(cmd))


def _routed(updates: list[Any], gotos: list[Any], queued: list[Action],
            context: dict[str, Any] | None = None) -> Command[Any]:
    """Where a node that routed calls goes: the answers so far (with their strikes), the calls
    still queued behind a person, a read's context, and the next steps."""
    update: dict[str, Any] = {"messages": [m for u in updates for m in u.get("messages", [])],
                              "strikes": sum(u.get("strikes", 0) for u in updates), "queued": queued}
    if context:
        update["context"] = context
    return Command(update=update, goto=next_steps(gotos))

def dispatch_queued(kernel: Kernel, state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
    """The agent node's turn when a call of the last message waits in the queue: send the
    next ones on their way (decided again now), up to the next that waits on a person."""
    act_on_saved_state(config)
    queue: list[Action] = [a.copy() for a in state.get("queued") or []]
    if state.get("status") == "closed":
        msgs = [tool_message(a, "Not run: a person closed the case before this call was decided", error=True)
                for a in queue]
        for a in queue:
            kernel.audit("denied", a, config, actor="policy", key=f"{call_id(a)}:{a['hash'][:16]}:closed",
                       data={"reason": "the case was closed", "rule": "case_closed"})
        return Command(update={"messages": msgs, "queued": []}, goto="agent")
    context = kernel.trust(state.get("context"), config, node="agent")
    strikes = int(state.get("strikes") or 0)
    if strikes >= kernel.policy.max_strikes:
        # The turn reached the strike limit while these waited: as in the permission node, a person
        # takes over with the next one and the rest are not run (they were asked and run, and the
        # person was then handed a call that had already run).
        cmd = _escalate_turn(kernel, queue, context, config, strikes)
        return Command(update={**(cmd.update or {}), "queued": [], "strikes": "reset"}, goto=cmd.goto)
    updates: list[Any] = []
    gotos: list[Any] = []
    while queue:
        action = queue.pop(0)
        # It is asked now: its approval window starts when a person first sees it.
        now = datetime.now(UTC)
        expiry = int(action["decision"].get("approval_expiry") or 0)
        action["requested_at"] = now_iso(now)
        action["expires_at"] = now_iso(now + timedelta(seconds=expiry)) if expiry else None
        _collect(kernel.route(action, context, config), updates, gotos)
        if any(_waits_on_person(g) for g in gotos):
            break
    return _routed(updates, gotos, queue)

def _escalate_turn(kernel: Kernel, actions: list[Action], context: dict[str, Any], config: RunnableConfig,
                   strikes: int) -> Command[Any]:
    """Too many denials in a row: stop looping and hand the case to a person."""
    reason = (f"the run reached {strikes} denials, rejections or tool errors "
              f"(limit {kernel.policy.max_strikes}); a person takes over")
    first, rest = actions[0], actions[1:]
    first = {**first, "decision": {**first["decision"], "outcome": "escalate", "mode": Mode.ESCALATE.value,
                                   "rule": "max_strikes", "reason": reason}}  # still an Action
    msgs = [tool_message(a, f"Not run: {reason}", error=True) for a in rest]
    return Command(update={"messages": msgs}, goto=kernel.send("escalation", first, context))

def escalate_strikes(kernel: Kernel, state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
    """The turn keeps failing: hand the last call to a person instead of asking the model again."""
    act_on_saved_state(config)
    messages = state.get("messages", [])
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage) and m.tool_calls), None)
    context = kernel.trust(state.get("context"), config, node="agent")
    if last is None:
        return Command(goto="__end__")
    tc = last.tool_calls[-1]
    action = kernel.new_action(tc["name"], tc.get("args"), str(tc["id"]), requested_by=requester_of(state, config),
                             context=context, thread=thread_of(config), turn=f"{last.id}/handoff")
    action["handoff"] = True  # no open tool call: the whole run goes to a person
    cmd = _escalate_turn(kernel, [action], context, config, int(state.get("strikes") or 0))
    return Command(update={"strikes": "reset"}, goto=cmd.goto)


# -- helpers ----
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
    and the model is told why, as for a call that could not be parsed. Every call, valid or not,
    then has an id of its own (see :func:`_unique_ids`)."""
    if not isinstance(message, AIMessage) or not (message.tool_calls or message.invalid_tool_calls):
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
            if tc.get("id"):  # none, or empty: it gets one of its own below
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
    good, bad = _unique_ids(good, bad)
    if good == list(message.tool_calls) and bad == list(message.invalid_tool_calls):
        return message
    return message.model_copy(update={"tool_calls": good, "invalid_tool_calls": bad})


def _unique_ids(good: list[Any], bad: list[Any]) -> tuple[list[Any], list[Any]]:
    """The calls of one message (``good``: to be decided; ``bad``: refused), each with an id of its
    own, which its answer and its records name. A call repeating an earlier one whole (id, tool
    and arguments) is that call sent twice, and is one call. A call without an id, or with one
    an earlier call of the message has (some model servers send none, or number them badly, or
    give a refused call a valid one's id), could not be answered apart (a call left unanswered,
    or one taken for answered while it waits, and the model replying early): it gets a new id.
    Valid calls keep theirs first."""
    given = {str(c.get("id")) for c in (*good, *bad) if c.get("id")}
    taken: set[str] = set()
    wholes: list[tuple[Any, Any, Any]] = []

    def own(call: dict[str, Any], base: str) -> dict[str, Any]:
        cid = call.get("id") or None
        if cid is not None and cid not in taken:
            taken.add(cid)
            return call
        new = base
        while new in taken or new in given:
            new += "_"
        taken.add(new)
        return {**call, "id": new}

    kept: list[Any] = []
    for i, tc in enumerate(good):
        whole = (tc.get("id") or None, tc.get("name"), tc.get("args"))
        if whole[0] is not None and whole in wholes:
            continue
        wholes.append(whole)
        kept.append(own(tc, f"{tc.get('id') or 'call'}_{i}"))
    refused = [own(b, f"{b.get('id') or 'invalid_call'}_{j}") for j, b in enumerate(bad)]
    return kept, refused


def _is_compensation(registry: ToolRegistry, spec: ToolSpec) -> bool:
    return any(s.compensation and s.compensation.tool == spec.name for s in registry.values())


def _text(message: BaseMessage) -> str:
    c = message.content
    if isinstance(c, str):
        return c
    return " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c)


def _unanswered(messages: Sequence[BaseMessage]) -> bool:
    """Whether the last AI message has tool calls still without a tool message."""
    return bool(_unanswered_ids(messages))


def _unanswered_ids(messages: Sequence[BaseMessage]) -> set[Any]:
    """The ids of the last AI message's tool calls still without a tool message."""
    answered: set[str] = set()
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            answered.add(m.tool_call_id)
        elif isinstance(m, AIMessage):
            ids = {tc["id"] for tc in m.tool_calls} | {bad_call_id(b, i) for i, b in enumerate(m.invalid_tool_calls)}
            return ids - answered
        else:
            return set()
    return set()
