"""Who may do what on a graph LangGraph Server (or ``langgraph dev``) serves: a ``langgraph_sdk.Auth``.

``langgraph.json`` names it (``"auth": {"path": "./graphs/auth.py:auth", "disable_studio_auth": true}``);
``graphs/auth.py`` builds it with :func:`build_auth`. Every request carries one bearer token
(``Authorization: Bearer T``, or ``X-Api-Key: T`` as Agent Chat UI sends it):

- ``akt_...``: an **approver** token from ``agent-kit approvers token NAME``, checked against the
  hashed store (revoked or expired: refused) and against the policy as it is now (a name the
  policy no longer lists is refused). The approver is the signed-in user: the graph reads it from
  the server (``langgraph_auth_user``), so a decision needs no approver field, and one naming
  someone else is refused. An approver holding one of the ``operator_roles`` is an **operator**.
- ``cst_...``: a **customer** session. By default it is self-issued: the client makes a random
  token (``cst_`` + at least 32 URL-safe characters) and keeps it; the customer's identity is
  ``customer:`` + a hash of it. Whoever holds the token owns the threads it created and nothing
  else; who the customer *is* (their account) is still proven in the conversation by the graph's
  verification. A deployment with its own customer login passes ``customer_identity``.
- anything else, or nothing: 401, with what to send.

Authorization, deny by default (every resource and action not named below is refused):

============================  =================================  ==========================  ========
action                        customer                           approver                    operator
============================  =================================  ==========================  ========
threads.create                own (``metadata.owner`` = self)    no                          yes
threads.read / search         own threads only                   all                         yes
threads.create_run            messages as input; resume only     resume only (the graph      yes
                              their own pending verification     checks role and binding)
threads.update / delete       no (state writes, metadata,        no                          yes
                              cancel)
assistants.read / search      yes                                yes                         yes
anything else (assistants     no                                 no                          yes
write, crons, store)
============================  =================================  ==========================  ========

A run a customer or approver starts may not carry ``command.update``, ``command.goto`` (an
approver may send exactly ``goto: "__end__"``, Agent Chat UI's "Mark as Resolved"), a
checkpoint to fork from, static interrupts, a webhook, agent_kit's own configurable keys, or a
multitask strategy that cancels another run, or ``durability="exit"``. Customers may not copy a
thread (``threads.copy``: the copy carries its pending approvals).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from agent_kit.errors import AgentKitError

__all__ = ["CUSTOMER_PREFIX", "CUSTOMER_TOKEN_PREFIX", "build_auth"]

CUSTOMER_TOKEN_PREFIX = "cst_"
"""Every self-issued customer session token starts with this."""
CUSTOMER_PREFIX = "customer:"
"""Every customer identity starts with this; no approver name may (the policy's names are checked)."""
_CUSTOMER_TOKEN = re.compile(r"cst_[A-Za-z0-9_-]{32,200}")

CUSTOMER, APPROVER, OPERATOR = "customer", "approver", "operator"

# Keys of a run's configurable (or context) a non-operator may not set: a fork from a checkpoint,
# LangGraph's internals, and agent_kit's own (the actor the runtime passes).
_FORBIDDEN_CONFIG = ("checkpoint_id", "checkpoint_ns", "checkpoint_map", "checkpoint", "__pregel", "agent_kit")
# The run context's own fields (agent_kit.graph.RunContext: the runtime sets them in-process).
_FORBIDDEN_CONTEXT = ("actor", "store")
# What else a run carries, and the value a non-operator must leave it at.
_RUN_DEFAULTS: dict[str, Any] = {"interrupt_before": None, "interrupt_after": None, "webhook": None}
_MULTITASK_OK = ("reject", "enqueue", None)

SIGN_IN = ("send Authorization: Bearer <token>: an approver's token from `agent-kit approvers token NAME`, "
           "or a customer session token (cst_ followed by at least 32 random URL-safe characters)")


def build_auth(
    policy: str | Path,
    *,
    operator_roles: Iterable[str] = ("supervisor",),
    store: Callable[[], Any] | None = None,
    customer_identity: Callable[[str], str | None] | None = None,
) -> Any:
    """A ``langgraph_sdk.Auth`` authenticating approvers and customers and authorizing what each may do.

    Args:
        policy: the policy file the graph runs under (its ``approvers`` say who is staff, and
            with which roles); read again whenever it changes.
        operator_roles: roles whose holders may do everything the server offers (state writes,
            forks, assistants, crons, store). At least one approver must hold one: a role nobody
            holds is a configuration error, not a silently locked door.
        store: opens the agent_kit store holding the approvers' tokens and the inbox (default:
            :meth:`agent_kit.store.Store.open` from ``AGENT_KIT_HOME`` / ``AGENT_KIT_DB_URL``,
            the graph's own).
        customer_identity: maps a customer's bearer token to a stable identity (without the
            ``customer:`` prefix), or None to refuse it. Default: self-issued ``cst_`` sessions.

    Raises:
        AgentKitError: an operator role no approver of the policy holds, or an approver name
            starting with ``customer:``.
    """
    from langgraph_sdk import Auth

    from agent_kit.policy import PolicySource

    source = PolicySource(policy)
    roles = tuple(operator_roles)
    _check_roles(source.current(), roles)
    parts = _Parts(store)
    to_customer = customer_identity or _self_issued

    auth = Auth()

    def refuse(status: int, detail: str) -> Exception:
        return Auth.exceptions.HTTPException(status_code=status, detail=detail)

    def who(token: str) -> dict[str, Any]:
        if token.startswith("akt_"):
            name = parts.credentials().verify_token(token)
            if name is None:
                raise refuse(401, "unknown, expired or revoked approver token; " + SIGN_IN)
            current = source.current()
            if name not in current.document.approvers:
                raise refuse(401, f"{name!r} holds a token but is no approver in the policy now")
            held = current.roles_of(name)
            kind = OPERATOR if held & set(roles) else APPROVER
            return {"identity": name, "display_name": name, "permissions": [kind, *sorted(held)]}
        ident = to_customer(token)
        if not ident:
            raise refuse(401, "not a valid token; " + SIGN_IN)
        return {"identity": CUSTOMER_PREFIX + ident, "permissions": [CUSTOMER]}

    @auth.authenticate
    async def authenticate(authorization: str | None, headers: dict[bytes, bytes]) -> dict[str, Any]:
        token = _token(authorization, headers)
        if token is None:
            raise refuse(401, "not signed in: " + SIGN_IN)
        return await asyncio.to_thread(who, token)

    def kind_of(ctx: Any) -> str | None:
        permissions = set(ctx.permissions or ())
        for kind in (OPERATOR, APPROVER, CUSTOMER):
            if kind in permissions:
                return kind
        return None  # e.g. LangSmith Studio's user where studio auth is left on: nobody of ours

    def deny(ctx: Any, what: str | None = None) -> Exception:
        kind = kind_of(ctx) or "this user"
        action = what or f"{ctx.resource}.{ctx.action}"
        return refuse(403, f"{action} is not allowed for {kind} {ctx.user.identity!r}")

    @auth.on
    async def everything_else(ctx: Any, value: Any) -> None:
        if kind_of(ctx) != OPERATOR:
            raise deny(ctx)

    @auth.on.threads.create
    async def create_thread(ctx: Any, value: Any) -> Any:
        kind = kind_of(ctx)
        if kind == OPERATOR:
            return None
        if "metadata" not in value:
            # threads.copy checks threads.create with the new id alone. A copy of a thread paused
            # on an approval carries the same pending interrupt and action: approved on both, one
            # requested action would be paid twice (the graph refuses that too).
            raise deny(ctx, "threads.copy (a copy carries the thread's pending approvals: operators only)")
        if kind != CUSTOMER:
            raise deny(ctx)
        metadata = value.get("metadata")
        if not isinstance(metadata, dict):
            metadata = value["metadata"] = {}
        metadata.clear()  # a customer's thread carries no metadata of its own choosing
        metadata["owner"] = ctx.user.identity
        if value.get("if_exists") not in (None, "raise"):
            raise deny(ctx, f"threads.create with if_exists={value.get('if_exists')!r}")
        return {"owner": ctx.user.identity}

    @auth.on.threads.read
    async def read_thread(ctx: Any, value: Any) -> Any:
        return _own_or_all(ctx)

    @auth.on.threads.search
    async def search_threads(ctx: Any, value: Any) -> Any:
        return _own_or_all(ctx)

    def _own_or_all(ctx: Any) -> Any:
        kind = kind_of(ctx)
        if kind in (OPERATOR, APPROVER):
            return None
        if kind == CUSTOMER:
            return {"owner": ctx.user.identity}
        raise deny(ctx)

    @auth.on.threads.create_run
    async def create_run(ctx: Any, value: Any) -> Any:
        kind = kind_of(ctx)
        if kind == OPERATOR:
            return None
        if kind not in (CUSTOMER, APPROVER):
            raise deny(ctx)
        kwargs = value.get("kwargs") or {}
        thread = value.get("thread_id")
        if thread is None:
            raise deny(ctx, "a run without a thread")
        problem = _run_problem(kwargs, value, mark_resolved=kind == APPROVER)
        if problem:
            raise deny(ctx, problem)
        command = kwargs.get("command")
        if kind == APPROVER:
            if not command or _has_input(kwargs):
                raise deny(ctx, "a run that is not a decision (staff decide; only customers send messages)")
            return None
        # A customer: messages, or answers to their own verification questions.
        if command:
            await asyncio.to_thread(_own_questions, parts, str(thread), command.get("resume"), ctx.user.identity,
                                    lambda why: deny(ctx, why))
        else:
            _customer_input(kwargs.get("input"), lambda why: deny(ctx, why))
            await asyncio.to_thread(_nothing_waits_on_staff, parts, str(thread), ctx.user.identity,
                                    lambda why: refuse(409, why))
        if value.get("if_not_exists") == "create":
            raise deny(ctx, "a run creating its own thread (create the thread first)")
        return {"owner": ctx.user.identity}

    @auth.on.assistants.read
    async def read_assistant(ctx: Any, value: Any) -> None:
        if kind_of(ctx) is None:
            raise deny(ctx)

    @auth.on.assistants.search
    async def search_assistants(ctx: Any, value: Any) -> None:
        if kind_of(ctx) is None:
            raise deny(ctx)

    return auth


def _check_roles(policy: Any, operator_roles: tuple[str, ...]) -> None:
    for name in policy.document.approvers:
        if str(name).startswith(CUSTOMER_PREFIX) or str(name) == CUSTOMER:
            raise AgentKitError(f"approver name {name!r} is reserved for customers ({CUSTOMER!r}, "
                                f"{CUSTOMER_PREFIX!r}...); rename the approver")
    holders = [a for a in policy.document.approvers if policy.roles_of(a) & set(operator_roles)]
    if operator_roles and not holders:
        raise AgentKitError(f"operator_roles {list(operator_roles)!r}: no approver in the policy holds any of them; "
                            "name a role the policy's approvers hold (or pass operator_roles=() for no operators)")


def _token(authorization: str | None, headers: Mapping[Any, Any]) -> str | None:
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    for key in (b"x-api-key", "x-api-key"):
        raw = headers.get(key)
        if raw:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            return text.strip() or None
    return None


def _self_issued(token: str) -> str | None:
    if not _CUSTOMER_TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()[:32]


def _has_input(kwargs: Mapping[str, Any]) -> bool:
    """Whether a run carries input. Agent Chat UI (useStream's ``submit({}, {command})``) posts
    ``input: {}`` beside every decision: an empty input is no input, and LangGraph runs the command."""
    return kwargs.get("input") not in (None, {})


def _run_problem(kwargs: Mapping[str, Any], value: Mapping[str, Any], *, mark_resolved: bool = False) -> str | None:
    """Why a non-operator may not start this run, or None. ``mark_resolved``: an approver may send
    Agent Chat UI's "Mark as Resolved" (exactly ``goto: "__end__"``); the graph closes an escalated
    case only for someone its policy lets resolve it, and refuses it (with the reason) anywhere else."""
    command = kwargs.get("command") or {}
    if not isinstance(command, Mapping):
        return "a command that is not an object"
    allowed = {"resume"} | ({"goto"} if mark_resolved and command.get("goto") == "__end__" else set())
    extra = sorted(k for k, v in command.items() if k not in allowed and v not in (None, [], {}))
    if extra:
        return f"command.{extra[0]} (writes to the thread's state or moves it: operators only)"
    for holder in ("config", "context"):
        mapping = kwargs.get(holder) or {}
        if holder == "config":
            mapping = mapping.get("configurable") or {}
        forbidden = _FORBIDDEN_CONFIG if holder == "config" else (*_FORBIDDEN_CONFIG, *_FORBIDDEN_CONTEXT)
        for key in mapping:
            if any(str(key).startswith(p) for p in forbidden):
                what = "a fork from a checkpoint" if str(key).startswith("checkpoint") else f"{holder} key {key!r}"
                return f"{what} (operators only)"
    for key, default in _RUN_DEFAULTS.items():
        if kwargs.get(key) not in (default, [], {}):
            return f"{key} (operators only)"
    if kwargs.get("durability") == "exit":  # (the server sets it from checkpoint_during=false too)
        return ("durability='exit' (or checkpoint_during=false): agent_kit refuses it, a crash mid-run "
                "would lose decisions; leave durability unset")
    if value.get("multitask_strategy") not in _MULTITASK_OK:
        return f"multitask_strategy={value.get('multitask_strategy')!r} (it cancels a running turn: operators only)"
    if _has_input(kwargs) and kwargs.get("command"):
        return "a run with both input and a command"
    return None


def _customer_input(data: Any, refuse: Callable[[str], Exception]) -> None:
    """A customer's run input: messages they wrote, nothing else."""
    if not isinstance(data, Mapping) or set(data) != {"messages"}:
        raise refuse("a run whose input is not {'messages': [...]} (customers send messages)")
    messages = data["messages"]
    if isinstance(messages, (str, Mapping)):
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        raise refuse("a run with no messages")
    for m in messages:
        if isinstance(m, str):
            continue
        if not isinstance(m, dict):
            raise refuse("a message that is neither text nor an object")
        # A message id equal to one already in the thread would *replace* that message (LangGraph's
        # add_messages): a customer adds to the conversation, never rewrites it. The server gives
        # the message a fresh id (the dict is the run's own input, so this edit is what runs).
        m.pop("id", None)
        role = m.get("type", m.get("role"))
        if role not in ("human", "user"):
            raise refuse(f"a message of type {role!r} (customers send their own messages only)")
        extra = m.get("additional_kwargs") or {}
        if not isinstance(extra, Mapping) or any(str(k).startswith("agent_kit") for k in extra):
            raise refuse("a message carrying agent_kit's own marks")


def _own_questions(parts: _Parts, thread: str, resume: Any, identity: str,
                   refuse: Callable[[str], Exception]) -> None:
    """A customer's resume must answer only the verification questions pending for them on this thread."""
    pending = {item.interrupt_id: item for item in parts.store().inbox.for_thread(thread)}
    if isinstance(resume, Mapping) and any(k in pending for k in resume):  # keyed by interrupt id
        unknown = sorted(str(k) for k in resume if k not in pending)
        if unknown:
            raise refuse(f"a resume of interrupt {unknown[0]!r}, which is not pending on this thread")
        answers = dict(resume)
    else:  # unkeyed: it goes to whatever is pending, which must all be theirs to answer
        answers = {iid: resume for iid in pending}
    if not answers:
        raise refuse("a resume with nothing pending for the customer to answer")
    for iid, answer in answers.items():
        item = pending[iid]
        if item.kind != "verification" or item.requested_by != identity:
            raise refuse(f"answering a {item.kind} (decided by staff, not by the customer)")
        if isinstance(answer, Mapping) and (answer.get("approver") not in (None, "customer") or "approvals" in answer):
            raise refuse("a resume naming an approver (customers answer as themselves)")


def _nothing_waits_on_staff(parts: _Parts, thread: str, identity: str, refuse: Callable[[str], Exception]) -> None:
    """A customer's new message while staff decide on this thread would start a new turn and leave
    the staff's question behind (LangGraph runs new input from the start): it is refused, with the
    reason, until the decision is made. A question that is the customer's own to answer is not in
    the way: a message instead of an answer closes it (the graph answers it "not run: superseded")."""
    items = parts.store().inbox.for_thread(thread)
    if not any(item.requested_by == identity for item in items):
        return  # nothing this customer asked for: maybe not their thread, which the server answers 404
    for item in items:
        if item.kind == "verification" and item.requested_by == identity:
            continue
        what = item.action.get("name") if isinstance(item.action, Mapping) else None
        article = "an" if item.kind[0] in "aeiou" else "a"
        raise refuse(f"{article} {item.kind} of {what or 'an action'} waits on staff on this thread (interrupt "
                     f"{item.interrupt_id!r}); send your message once it is decided")


class _Parts:
    """The store the handler reads (opened once, on first use, from the server's thread pool)."""

    def __init__(self, opener: Callable[[], Any] | None) -> None:
        self._opener = opener
        self._store: Any = None
        self._lock = threading.Lock()

    def store(self) -> Any:
        with self._lock:
            if self._store is None:
                if self._opener is not None:
                    self._store = self._opener()
                else:
                    from agent_kit.store import Store

                    self._store = Store.open()
            return self._store

    def credentials(self) -> Any:
        from agent_kit.credentials import Credentials

        return Credentials(self.store())

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
