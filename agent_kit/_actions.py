"""Actions: one tool call, validated, decided by policy (:mod:`agent_kit.kernel`), and routed to its
next node; the helpers every node shares to read a run's configuration and context.

An action is plain JSON (it travels in ``Send`` payloads and checkpoints)::

    {"tool_call_id", "tool", "args", "hash", "decision": {...}, "requested_by", "requested_at",
     "expires_at", "grants": {"verified": [...], "approvals": [{"approver", "role", "at"}]}}
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import run_in_executor
from langgraph.types import Command, Send

from agent_kit._compat import durability, scheduled_from
from agent_kit._saved import await_saved, wait_saved
from agent_kit.errors import AgentKitError
from agent_kit.interrupts import CUSTOMER
from agent_kit.types import Action


def refuse_exit_durability(config: RunnableConfig) -> None:
    """With ``durability="exit"`` a crash after an approval loses it while the effect may have run."""
    if durability(config) == "exit":
        raise AgentKitError(
            "durability='exit' is refused for permissioned graphs: an approval or effect could be "
            "lost in a crash; use 'sync' or 'async'"
        )


SAVED_WAIT_SECONDS = 60.0
"""How long a node waits, under ``durability="async"``, for the checkpoint it was scheduled from."""


_WAITED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("agent_kit_saved_waited", default=())
"""The checkpoints :func:`arun_when_saved` waited for, for the node body it then runs in a worker
thread (a graph that body starts has checkpoints of its own, and waits for them)."""


def act_on_saved_state(config: RunnableConfig) -> None:
    """Call before a node writes anything keyed by the thread's state (a decision, an inbox item,
    a ledger record, an effect): under ``durability="async"`` LangGraph saves a step's checkpoint
    while the next steps run, so the model's message that asked for an action may not be saved yet.
    A crash then would make the recovery ask the model again: a new message, a new call with a new
    key, and the effect run twice. This waits until the checkpoint the running task was scheduled
    from is saved, and, when the graph runs as a subgraph, the checkpoint of every enclosing graph
    (each graph saves its own in order; a parent's step not saved would start the subgraph anew).
    Under ``"sync"`` they are saved already and nothing is read; ``"exit"`` is refused."""
    found = _awaited(config)
    if found is not None and _WAITED.get() != _ids(found[1]):
        wait_saved(found[0], found[1], SAVED_WAIT_SECONDS)


async def arun_when_saved(config: RunnableConfig, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run the sync node body ``func`` from an asyncio run, once :func:`act_on_saved_state` holds:
    the wait runs on the event loop, the body in a worker thread of the loop (as LangGraph runs a
    sync node), where it does not wait again. A worker blocked waiting would hold one of the loop's
    few executor threads, which an async checkpointer needs to prepare the very save awaited: with
    as many parallel tool calls as threads, no save could finish."""
    found = _awaited(config)
    if found is not None:
        await await_saved(found[0], found[1], SAVED_WAIT_SECONDS)
    token = _WAITED.set(_ids(found[1]) if found is not None else ())  # the body's context is a copy of this one
    try:
        return await run_in_executor(None, func, *args, **kwargs)
    finally:
        _WAITED.reset(token)


def _awaited(config: RunnableConfig) -> tuple[Any, list[dict[str, Any]]] | None:
    """The checkpointer and the checkpoints a node must see saved before it acts (None: nothing to
    wait for, the durability is not ``"async"``); ``"exit"`` is refused."""
    refuse_exit_durability(config)
    return scheduled_from(config) if durability(config) == "async" else None


def _ids(targets: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(str(t["configurable"]["checkpoint_id"]) for t in targets)


def thread_of(config: RunnableConfig) -> str:
    return str((config.get("configurable") or {}).get("thread_id", ""))


def checkpoint_of(config: RunnableConfig) -> str | None:
    """The checkpoint the running step started from (what a resume or an audit reader can load)."""
    conf = config.get("configurable") or {}
    return conf.get("checkpoint_id") or (conf.get("checkpoint_map") or {}).get("")


def actor_of(config: RunnableConfig) -> str:
    """Who drives this invocation: LangGraph Server's signed-in user where the graph is served with
    auth (whatever the client says), else the actor of the run's context (``RunContext.actor``, set
    by the runtime), else the customer."""
    identity = auth_identity(config)
    if identity:
        return identity
    actor = getattr(run_context(), "actor", None)
    return actor if isinstance(actor, str) and actor else CUSTOMER


def run_context() -> Any:
    """The current run's ``context`` (LangGraph's run-scoped data), or None outside a run."""
    from langgraph.runtime import get_runtime

    try:
        return get_runtime().context
    except RuntimeError:  # not inside a graph run
        return None


HANDOFF_MARK = "agent_kit_handoff"
"""Marks the message an operator's hand-back adds (it is not the end user speaking)."""


def is_handoff(message: Any) -> bool:
    return bool(getattr(message, "additional_kwargs", {}).get(HANDOFF_MARK))


def requester_of(state: Mapping[str, Any], config: RunnableConfig) -> str:
    """Who the run's calls are requested by: the conversation's end user, as the agent node
    recorded them from the last customer message; never whoever resumed the run."""
    return str(state.get("requester") or CUSTOMER)


def auth_identity(config: RunnableConfig) -> str | None:
    """The authenticated user's identity where LangGraph Server serves the graph with auth."""
    user = (config.get("configurable") or {}).get("langgraph_auth_user")
    identity = getattr(user, "identity", None) or (user.get("identity") if isinstance(user, Mapping) else None)
    return str(identity) if identity else None


def call_id(action: Mapping[str, Any]) -> str:
    """The call's identity for keys: the AI message's id and the tool call id.

    Models may reuse tool call ids across turns (some number them per message); qualifying them
    by the message keeps a later, equal request from being taken for an earlier one.
    """
    turn = action.get("turn")
    return f"{turn}/{action['tool_call_id']}" if turn else str(action["tool_call_id"])


def tool_message(action: Action, content: Any, *, error: bool = False) -> ToolMessage:
    text = content if isinstance(content, str) else json.dumps(content, default=str)
    return ToolMessage(content=text, tool_call_id=action["tool_call_id"], name=action["tool"],
                       status="error" if error else "success")


def bad_call_id(bad: Mapping[str, Any], index: int) -> str:
    """The id an unparsable call is answered under (its own, or one made from its position)."""
    return str(bad.get("id") or f"invalid_call_{index}")


def _unparsable(bad: Mapping[str, Any]) -> str:
    raw = str(bad.get("args") or "")
    shown = raw if len(raw) <= 200 else raw[:200] + "…"
    why = bad.get("error") or "its arguments are not valid JSON"
    return (f"the call to {bad.get('name') or 'an unnamed tool'} could not be parsed ({why}); arguments as "
            f"written: {shown!r}; send the call again with arguments as one JSON object")


GATES = ("verification", "approval", "escalation")
"""The gates where an action waits on a person."""
Gate = Literal["denied", "escalation", "record", "verification", "approval", "execute"]
"""Where an action goes next (``denied``: back to the model, told why)."""


def _gotos(cmd: Command[Any]) -> list[Any]:
    return list(cmd.goto) if isinstance(cmd.goto, list | tuple) else [cmd.goto]


def _waits_on_person(goto: Any) -> bool:
    return isinstance(goto, Send) and goto.node in GATES


def next_steps(gotos: list[Any]) -> list[Any]:
    """Where a node that routed calls goes next: each destination once, and not the agent beside a
    call that waits on a person: it would only find that call unanswered and wait (the agent sends
    the queue on only once every other call is answered); the gate wakes it once the person has
    decided."""
    waits = any(_waits_on_person(g) for g in gotos)
    out: list[Any] = []
    for g in gotos:
        if isinstance(g, str) and (g in out or (waits and g == "agent")):
            continue
        out.append(g)
    return out or ["agent"]
