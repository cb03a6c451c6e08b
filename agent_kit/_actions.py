"""Actions: one tool call, validated, decided by policy, and routed to its next node.

An action is plain JSON (it travels in ``Send`` payloads and checkpoints)::

    {"tool_call_id", "tool", "args", "hash", "decision": {...}, "requested_by", "requested_at",
     "expires_at", "grants": {"verified": [...], "approvals": [{"approver", "role", "at"}]}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Send

from agent_kit import _provenance, _totals
from agent_kit._canonical import action_hash, canonical_json, idempotency_key
from agent_kit._compat import durability
from agent_kit.errors import AgentKitError
from agent_kit.interrupts import CUSTOMER, approvals_complete, now_iso
from agent_kit.modes import Mode
from agent_kit.policy import Decision, Policy
from agent_kit.types import Action, Sibling

if TYPE_CHECKING:
    from agent_kit.registry import ToolRegistry



def refuse_exit_durability(config: RunnableConfig) -> None:
    """With ``durability="exit"`` a crash after an approval loses it while the effect may have run."""
    if durability(config) == "exit":
        raise AgentKitError(
            "durability='exit' is refused for permissioned graphs: an approval or effect could be "
            "lost in a crash; use 'sync' or 'async'"
        )


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


class ActionRouter:
    """Deciding and routing actions; mixed into :class:`agent_kit.graph.PermissionLayer`."""

    # Provided by the layer this is mixed into.
    registry: ToolRegistry
    escalation_receivers: tuple[str, ...]
    compensations: frozenset[str]
    store: Any

    if TYPE_CHECKING:
        @property
        def policy(self) -> Policy: ...

    # -- audit -------------------------------------------------------------------------------
    def audit(self, kind: str, action: Mapping[str, Any] | None, config: RunnableConfig, *, actor: str,
              key: str, data: Mapping[str, Any] | None = None, interrupt_id: str | None = None,
              close_inbox: str | None = None) -> Any:
        """Append one entry for ``action``; with ``close_inbox``, that interrupt leaves the inbox in
        the same transaction (a decision is recorded and unlisted together, or neither)."""
        fields = self.audit_fields(kind, action, config, actor=actor, key=key, data=data, interrupt_id=interrupt_id)
        if close_inbox is None:
            return self.store.audit.append(**fields)

        def decide_in(tx: Any) -> Any:
            entry = self.store.audit.append_in(tx, **fields)
            self.store.inbox.remove_in(tx, close_inbox)
            return entry

        return self.store.audit.write(decide_in)

    # -- trusted context ---------------------------------------------------------------------
    def signed_context(self, update: Mapping[str, Any], config: RunnableConfig, *, by: str,
                       source: str) -> dict[str, Any]:
        """A context update from node ``by`` (because of ``source``: an interrupt, a call), with
        its provenance, so later nodes can tell it from a write through the server's API."""
        return _provenance.sign(self.store.audit.keyring, thread_of(config), update, by=by, source=source)

    def send(self, node: str, action: Mapping[str, Any], context: Mapping[str, Any],
             refused: Mapping[str, Any] | None = None) -> Send:
        """The ``Send`` of an action to a gate node, its action MAC'd for that node (a gate node
        takes no action that agent_kit's nodes did not send it)."""
        task: dict[str, Any] = {"action": _provenance.sign_action(self.store.audit.keyring, node, action, refused),
                                "context": dict(context)}
        if refused is not None:
            task["refused"] = refused
        return Send(node, task)

    def signed_task(self, task: Mapping[str, Any], config: RunnableConfig, node: str) -> bool:
        """Whether the task's action was sent to ``node`` by agent_kit's nodes; if not, the attempt
        is audited once (``refused``, ``rule: forged_action``) and nothing of it runs."""
        action = task.get("action") if isinstance(task, Mapping) else None
        refused = task.get("refused") if isinstance(task, Mapping) else None
        if _provenance.action_signed(self.store.audit.keyring, node, action, refused):
            return True
        shown = ascii(action)[:500]
        self.audit("refused", None, config, actor=actor_of(config),
                   key=f"forged_action:{node}:{_provenance.digest({'action': shown})}",
                   data={"rule": "forged_action", "node": node, "action": shown,
                         "error": f"an action sent to {node} that agent_kit's nodes did not send (a Send or "
                                  "command.goto written by hand?): nothing of it runs"})
        return False

    def trust(self, context: Mapping[str, Any] | None, config: RunnableConfig, *, node: str) -> dict[str, Any]:
        """The context this thread's nodes wrote; anything else is dropped, and audited once."""
        good, forged = _provenance.trusted(self.store.audit.keyring, thread_of(config), context)
        if forged:
            shown = {ascii(k)[1:-1][:64]: ascii(v)[:200] for k, v in list(forged.items())[:20]}
            self.audit("refused", None, config, actor=actor_of(config),
                       key=f"forged_context:{_provenance.digest(forged)}",
                       data={"rule": "forged_context", "node": node, "keys": sorted(shown), "values": shown,
                             "error": "context not written by agent_kit's nodes (a state write through the API?); "
                                      "ignored: the run acts as if it were absent"})
        return good

    def audit_fields(self, kind: str, action: Mapping[str, Any] | None, config: RunnableConfig, *, actor: str,
                     key: str, data: Mapping[str, Any] | None = None,
                     interrupt_id: str | None = None) -> dict[str, Any]:
        """The keyword arguments of :meth:`AuditLog.append` for an entry about ``action``."""
        thread = thread_of(config)
        return {
            "kind": kind, "actor": actor, "thread_id": thread, "tool": action["tool"] if action else None,
            "action_hash": action["hash"] if action else None, "data": dict(data or {}),
            "checkpoint_id": checkpoint_of(config), "interrupt_id": interrupt_id,
            "policy_version": (action or {}).get("decision", {}).get("policy_version", self.policy.version),
            "key": f"{thread}:{key}",
        }

    # -- deciding ----------------------------------------------------------------------------
    def new_action(self, tool: str, args: Any, tool_call_id: str, *, requested_by: str,
                   context: Mapping[str, Any], turn: str | None = None,
                   invalid: str | None = None) -> Action:
        """Validate a call and decide it. Invalid or unknown calls come back denied, with the reason
        (``invalid``: why the model's call could not even be parsed)."""
        now = datetime.now(UTC)
        checked, problem = self._checked(tool, args)
        if invalid is not None:
            problem = invalid
        hashed = action_hash(tool, checked)
        call = {"tool_call_id": tool_call_id, "turn": turn, "tool": tool, "args": checked, "hash": hashed}
        decision = (Decision(tool=tool, mode=None, outcome="deny", rule="validation", reason=problem,
                             policy_version=self.policy.version) if problem is not None
                    else self.decide(call, context)).to_json()
        expiry = int(decision.get("approval_expiry") or 0)
        return {
            "tool_call_id": tool_call_id, "turn": turn, "tool": tool, "args": checked, "hash": hashed,
            "decision": decision, "requested_by": requested_by, "requested_at": now_iso(now),
            "grants": {"verified": [], "approvals": []},
            "expires_at": now_iso(now + timedelta(seconds=expiry)) if expiry else None,
        }

    def decide(self, action: Mapping[str, Any], context: Mapping[str, Any], *, thread: str | None = None,
               tx: Any = None) -> Decision:
        """Policy's decision for an action now (facts and running totals read fresh, policy
        possibly reloaded). ``tx``: read the totals inside this ledger transaction."""
        policy = self.policy
        spec = self.registry.get(action["tool"])
        if spec is None:
            return Decision(tool=action["tool"], mode=None, outcome="deny", rule=None,
                            reason=f"tool {action['tool']!r} is not registered", policy_version=policy.version)
        facts: Mapping[str, Any] = {}
        if spec.facts is not None:
            try:
                facts = spec.facts(action["args"], context)
            except Exception as exc:  # a failed read must not loosen anything: deny
                return Decision(tool=spec.name, mode=None, outcome="deny", rule="facts",
                                reason=f"could not read facts for {spec.name}: {exc}", policy_version=policy.version)
        entry = policy.tools.get(spec.name)
        totals = None
        if entry is not None and entry.aggregates:
            try:
                totals = self.running_totals(entry.aggregates, action, context, thread, tx)
            except Exception as exc:  # a total that cannot be read must not loosen anything: deny
                if tx is not None:
                    raise
                return Decision(tool=spec.name, mode=None, outcome="deny", rule="aggregates",
                                reason=f"could not read the running totals for {spec.name}: {exc}",
                                policy_version=policy.version)
        return policy.evaluate(spec.name, action["args"], context, facts, ceiling=spec.mode, aggregates=totals)

    # -- running totals ----------------------------------------------------------------------
    def _dims_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        keys = getattr(self, "context_keys", {})
        return {k: v for k, v in context.items() if k in keys}

    def dimensions(self, action: Action, context: Mapping[str, Any], thread: str) -> list[tuple[str, str]]:
        """What the action's running totals are grouped by (recorded with it in the ledger)."""
        return _totals.dimensions(thread, action["args"], self._dims_context(context))

    def running_totals(self, aggregates: Mapping[str, Any], action: Mapping[str, Any], context: Mapping[str, Any],
                       thread: str | None, tx: Any = None) -> dict[str, float]:
        """Each aggregate's value for this call: the ledger's executed and approved-on-their-way
        calls in the group and window, the other calls of the same model message, and this one."""
        ledger = self.store.ledger
        own = idempotency_key(thread, call_id(action), action["hash"]) if thread is not None else ""
        ctx = self._dims_context(context)
        siblings = [s for s in action.get("siblings") or () if s.get("call") != call_id(action)]
        counted = ledger.counted([s["key"] for s in siblings], tx) if siblings else set()

        def group(per: str | None, args: Mapping[str, Any]) -> tuple[str, str]:
            if per is None:
                return "all", ""
            if per == "thread":
                return "thread", _totals.dim_value(thread)
            root, name = per.split(".", 1)
            return per, _totals.dim_value((args if root == "args" else ctx).get(name))

        out: dict[str, float] = {}
        for name, agg in aggregates.items():
            tools = (action["tool"], *agg.tools)
            measure = agg.sum.split(".", 1)[1] if agg.sum else None

            def amount(args: Mapping[str, Any], measure: str | None = measure) -> float:
                return 1.0 if measure is None else _totals.numbers(args).get(measure, 0.0)

            dim, val = group(agg.per, action["args"])
            value = ledger.total(tools=tools, dim=dim, val=val, window=agg.within, measure=measure, exclude=own, tx=tx)
            value += amount(action["args"])
            for s in siblings:
                if s["tool"] in tools and s["key"] not in counted and group(agg.per, s["args"]) == (dim, val):
                    value += amount(s["args"])
            out[name] = round(value, 9)
        return out

    def limit_refusal(self, action: Action, context: Mapping[str, Any], thread: str,
                      tx: Any) -> Decision | None:
        """Inside the ledger's transaction: the decision again with the totals as they are now;
        None when the action may still execute with the grants it holds, else the new decision."""
        decision = self.decide(action, context, thread=thread, tx=tx)
        return None if self.executable(action, decision) else decision

    def executable(self, action: Action, decision: Decision) -> bool:
        """Whether ``decision`` lets the action run as a change now, with the grants it holds."""
        if decision.outcome == "allow":
            return decision.mode is not Mode.READ_ONLY
        return decision.outcome in ("verify", "approve") and self.next_gate(action, decision) == "execute"

    def next_gate(self, action: Action, decision: Decision) -> Gate:
        """Where an action holding its grants goes under ``decision`` (pure: reads and writes nothing)."""
        out = decision.outcome
        if out == "deny":
            return "denied"
        if out == "escalate":
            return "escalation"
        if out in ("recommend", "draft"):
            return "record"
        if out in ("verify", "approve"):
            grants = action["grants"]
            if any(v not in grants["verified"] for v in decision.verification):
                return "verification"
            reqs = [a.to_json() for a in decision.approvals]
            if not approvals_complete(reqs, grants["approvals"], self.policy.roles_of):
                return "approval"
        return "execute"

    def gate_of(self, action: Action, context: Mapping[str, Any], thread: str, *,
                decision: Decision | None = None) -> tuple[Decision, Gate]:
        """The action's decision under the current policy (or ``decision``) and the gate it goes to;
        writes nothing. A call refused as invalid stays refused whatever the policy says."""
        previous = action.get("decision") or {}
        if previous.get("rule") == "validation" and previous.get("outcome") == "deny":
            # A call refused as it came from the model (one that could not be parsed) stays refused.
            # Only a refusal is taken from the payload: a carried decision never loosens anything.
            decision = Decision.from_json(previous)
        elif decision is None:
            decision = self.decide(action, context, thread=thread)
        return decision, self.next_gate(action, decision)

    def _checked(self, tool: str, args: Any) -> tuple[dict[str, Any], str | None]:
        """The call's arguments as its tool takes them, and why it cannot run (None: it can)."""
        spec = self.registry.get(tool)
        plain: dict[str, Any] = args if isinstance(args, dict) else {}
        if spec is None:
            return plain, f"tool {tool!r} is not registered; it is denied by default"
        if tool in self.compensations:
            return plain, f"{tool} reverses other actions; it runs only through a permissioned rollback"
        if not isinstance(args, dict):
            return plain, f"arguments for {tool} must be an object, got {type(args).__name__}"
        try:
            return spec.validate_args(args), None
        except ValueError as exc:
            return plain, str(exc)

    def recorded_decision(self, action: Action) -> Decision | None:
        """The decision the action carries, when it was made under the policy in force now (else None)."""
        d = action.get("decision")
        if not d or d.get("policy_version") != self.policy.version:
            return None
        return Decision.from_json(d)

    def route(self, action: Action, context: Mapping[str, Any], config: RunnableConfig, *,
              decision: Decision | None = None) -> Command[Any]:
        """Send the action to its next gate, decided again under the current policy (or as
        ``decision`` says): a denial is audited and told to the model; a change cleared to run is
        counted in the running totals from now on."""
        thread = thread_of(config)
        decision, gate = self.gate_of(action, context, thread, decision=decision)
        action = {**action, "decision": decision.to_json()}
        if gate == "denied":
            self.audit("denied", action, config, actor="policy", key=f"{call_id(action)}:{action['hash'][:16]}:denied",
                       data={"reason": decision.reason, "rule": decision.rule})
            return Command(update={"messages": [tool_message(action, f"Denied: {decision.reason}", error=True)],
                                   "strikes": 1}, goto="agent")
        if (gate == "execute" and decision.mode is not Mode.READ_ONLY
                and action["tool"] in self.policy.counted_tools()):
            # Decided to execute: counted from now on, so an approved action on its way is in
            # every other call's totals before it starts.
            self.store.ledger.reserve(idempotency_key(thread, call_id(action), action["hash"]), tool=action["tool"],
                                      thread_id=thread, args=action["args"],
                                      dims=self.dimensions(action, context, thread))
        return Command(goto=self.send(gate, action, context))

    def decide_turn(self, state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
        """The permission node: decide every call of the last AI message and send each on its way."""
        refuse_exit_durability(config)
        messages = state.get("messages", [])
        last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        context = self.trust(state.get("context"), config, node="permission")
        if last is None or not (last.tool_calls or last.invalid_tool_calls):
            return Command(goto="agent")
        requester = requester_of(state, config)
        actions = [self.new_action(tc["name"], tc.get("args"), tc["id"] or "", requested_by=requester, context=context,
                                   turn=last.id)
                   for tc in last.tool_calls]
        # Calls the model wrote but that could not be parsed (an OpenAI-compatible server's
        # `invalid_tool_calls`): refused like invalid arguments, so the model hears why.
        actions += [self.new_action(str(bad.get("name") or "unknown"), None, bad_call_id(bad, i),
                                    requested_by=requester, context=context, turn=last.id, invalid=_unparsable(bad))
                    for i, bad in enumerate(last.invalid_tool_calls)]
        if len(actions) > 1:
            # Calls of one message are decided together: each one's running totals include the
            # others, so asking in pieces in one message gets no more than asking at once.
            thread = thread_of(config)
            valid: list[Sibling] = [
                {"key": idempotency_key(thread, call_id(a), a["hash"]), "call": call_id(a), "tool": a["tool"],
                 "args": a["args"]}
                for a in actions if a["decision"].get("rule") != "validation"]
            for a in actions:
                a["siblings"] = valid
        denials = sum(1 for a in actions if a["decision"]["outcome"] == "deny")
        strikes = int(state.get("strikes") or 0)
        if strikes + denials >= self.policy.max_strikes:
            return self._escalate_turn(actions, context, config, strikes + denials)
        updates: list[Any] = []
        gotos: list[Any] = []
        queued: list[Action] = []
        for action in actions:
            if any(_waits_on_person(g) for g in gotos):
                # One call waits on a person at a time: a client that answers one interrupt at
                # a time (Agent Chat UI resumes unkeyed) always has exactly one to answer. The
                # rest are decided again, under the context as it is then, when it is their turn.
                if self.gate_of(action, context, thread_of(config))[1] in GATES:
                    queued.append(action)
                    continue
            # A lone call was decided a moment ago, in this node, under this policy: route by that
            # decision. Calls of one message are decided again, each with its siblings counted.
            cmd = self.route(action, context, config,
                             decision=self.recorded_decision(action) if len(actions) == 1 else None)
            if cmd.update:
                updates.append(cmd.update)
            gotos.extend(_gotos(cmd))
        messages_out = [m for u in updates for m in u.get("messages", [])]
        update: dict[str, Any] = {"messages": messages_out, "strikes": sum(u.get("strikes", 0) for u in updates),
                                  "queued": queued}
        gotos = _dedupe(gotos)
        return Command(update=update, goto=gotos or ["agent"])

    def dispatch_queued(self, state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
        """The agent node's turn when a call of the last message waits in the queue: send the
        next ones on their way (decided again now), up to the next that waits on a person."""
        queue: list[Action] = [a.copy() for a in state.get("queued") or []]
        if state.get("status") == "closed":
            msgs = [tool_message(a, "Not run: a person closed the case before this call was decided", error=True)
                    for a in queue]
            for a in queue:
                self.audit("denied", a, config, actor="policy", key=f"{call_id(a)}:{a['hash'][:16]}:closed",
                           data={"reason": "the case was closed", "rule": "case_closed"})
            return Command(update={"messages": msgs, "queued": []}, goto="agent")
        context = self.trust(state.get("context"), config, node="agent")
        updates: list[Any] = []
        gotos: list[Any] = []
        while queue:
            action = queue.pop(0)
            # It is asked now: its approval window starts when a person first sees it.
            now = datetime.now(UTC)
            expiry = int(action["decision"].get("approval_expiry") or 0)
            action["requested_at"] = now_iso(now)
            action["expires_at"] = now_iso(now + timedelta(seconds=expiry)) if expiry else None
            cmd = self.route(action, context, config)
            if cmd.update:
                updates.append(cmd.update)
            gotos.extend(_gotos(cmd))
            if any(_waits_on_person(g) for g in gotos):
                break
        update: dict[str, Any] = {"messages": [m for u in updates for m in u.get("messages", [])],
                                  "strikes": sum(u.get("strikes", 0) for u in updates), "queued": queue}
        gotos = _dedupe(gotos)
        return Command(update=update, goto=gotos or ["agent"])

    def _escalate_turn(self, actions: list[Action], context: dict[str, Any], config: RunnableConfig,
                       strikes: int) -> Command[Any]:
        """Too many denials in a row: stop looping and hand the case to a person."""
        reason = (f"the run reached {strikes} denials, rejections or tool errors "
                  f"(limit {self.policy.max_strikes}); a person takes over")
        first, rest = actions[0], actions[1:]
        first = {**first, "decision": {**first["decision"], "outcome": "escalate", "mode": Mode.ESCALATE.value,
                                       "rule": "max_strikes", "reason": reason}}  # still an Action
        msgs = [tool_message(a, f"Not run: {reason}", error=True) for a in rest]
        return Command(update={"messages": msgs}, goto=self.send("escalation", first, context))

    def escalate_strikes(self, state: Mapping[str, Any], config: RunnableConfig) -> Command[Any]:
        """The turn keeps failing: hand the last call to a person instead of asking the model again."""
        messages = state.get("messages", [])
        last = next((m for m in reversed(messages) if isinstance(m, AIMessage) and m.tool_calls), None)
        context = self.trust(state.get("context"), config, node="agent")
        if last is None:
            return Command(goto="__end__")
        tc = last.tool_calls[-1]
        action = self.new_action(tc["name"], tc.get("args"), str(tc["id"]), requested_by=requester_of(state, config),
                                 context=context, turn=f"{last.id}/handoff")
        action["handoff"] = True  # no open tool call: the whole run goes to a person
        cmd = self._escalate_turn([action], context, config, int(state.get("strikes") or 0))
        return Command(update={"strikes": "reset"}, goto=cmd.goto)

    def summary(self, action: Action, context: Mapping[str, Any]) -> str:
        d = action["decision"]
        who = context.get("customer_name") or context.get("customer_id") or "an unverified customer"
        return (f"{who} asked for {action['tool']}({canonical_json(action['args'])}); "
                f"policy {d['policy_version']}: {d['reason']}")


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
"""The nodes where a call waits on a person."""


def _gotos(cmd: Command[Any]) -> list[Any]:
    return list(cmd.goto) if isinstance(cmd.goto, list | tuple) else [cmd.goto]


def _waits_on_person(goto: Any) -> bool:
    return isinstance(goto, Send) and goto.node in GATES


def _dedupe(gotos: list[Any]) -> list[Any]:
    out: list[Any] = []
    for g in gotos:
        if isinstance(g, str) and g in out:
            continue
        out.append(g)
    return out
