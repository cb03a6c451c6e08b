"""The kernel: what every node of a permissioned graph shares, composed once and never changed.

A :class:`Kernel` holds the tool registry, the policy source, the default store and the input limits,
and decides: :meth:`Kernel.new_action` validates a call and asks policy, :meth:`Kernel.gate_of` is
the pure step from an action and its decision to the gate it goes to, :meth:`Kernel.route` acts on
it (audits a denial, counts a change cleared to run, sends the action to its gate under its MAC).
Effects run through :func:`agent_kit._effects.run_effect` (execute, drafts and rollback alike).

The arrows run one way: policy and registry -> kernel -> nodes (:mod:`agent_kit._nodes`,
:mod:`agent_kit._gates`) -> graph (:mod:`agent_kit.graph`, which only wires) -> runtime -> CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Send

from agent_kit import _compat, _provenance, _totals
from agent_kit._actions import Gate, actor_of, call_id, checkpoint_of, run_context, thread_of, tool_message
from agent_kit._canonical import action_hash, canonical_json, idempotency_key
from agent_kit._policy_check import LIBRARY_CONTEXT_KEYS, check_policy
from agent_kit.errors import UsageError
from agent_kit.interrupts import approvals_complete, now_iso
from agent_kit.limits import InputLimits
from agent_kit.modes import Mode
from agent_kit.policy import Decision, Policy, PolicySource
from agent_kit.registry import ToolRegistry
from agent_kit.types import Action

__all__ = ["Kernel", "Sealed"]


class Sealed:
    """Refuses every attribute write and delete once built (``__init__`` sets its slots with
    ``object.__setattr__``); a copy of it is the object itself."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise UsageError(f"a {type(self).__name__} is immutable: build a new one instead of setting {name!r}")

    def __delattr__(self, name: str) -> None:
        raise UsageError(f"a {type(self).__name__} is immutable: {name!r} cannot be deleted")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class Kernel(Sealed):
    """Registry, policy source, store and limits, composed; immutable once built (its one late part:
    the store opened from the environment on first use when none was given).

    Args:
        registry: the tools (copied: adding to it later does not change this kernel).
        policy: a :class:`Policy`, or the path of a policy file (read again whenever it changes).
        store: the default store (None: opened from the environment on first use); a run's
            ``RunContext.store`` wins over it.
        identity_verifier: checks a customer's identity claim (the verification gate).
        escalation_receivers: who may resolve escalations (default: the policy's receivers).
        context_keys: the application's trusted context keys policy rules may test, beside agent_kit's.
        limits: size limits of what the model writes and tools return (default: from the environment).

    Raises:
        PolicyError: the policy is invalid, or names a tool or context key nobody provides.
        RegistrationError: a compensation names an unregistered tool.
    """

    __slots__ = ("_fixed", "_lock", "_opened", "_receivers", "_source", "_store", "compensations", "context_keys",
                 "identity_verifier", "limits", "registry")
    registry: ToolRegistry
    limits: InputLimits
    """Size limits of what the model writes (tool calls) and what tools return."""
    context_keys: Mapping[str, Any]
    """The trusted context keys policy rules may test: agent_kit's and the application's."""
    identity_verifier: Callable[[str], Mapping[str, Any] | None] | None
    compensations: frozenset[str]
    """The tools that reverse others: they run only through a permissioned rollback."""
    _source: PolicySource | None
    _fixed: Policy | None
    _store: Any
    _opened: list[Any]
    _lock: threading.Lock
    _receivers: tuple[str, ...]

    def __init__(self, registry: ToolRegistry, policy: Policy | str | Path, *, store: Any = None,
                 identity_verifier: Callable[[str], Mapping[str, Any] | None] | None = None,
                 escalation_receivers: Sequence[str] | None = None, context_keys: Mapping[str, Any] | None = None,
                 limits: InputLimits | None = None) -> None:
        _compat.check()  # an incompatible LangGraph stops here, not at the first paused action
        put = object.__setattr__
        # A copy: the caller's registry may still grow (ToolRegistry.add); this kernel's tools, the
        # compensations and the tools bound to the model are fixed with it.
        registry = ToolRegistry(registry.values())
        registry.check_compensations()
        put(self, "registry", registry)
        put(self, "limits", limits if limits is not None else InputLimits.from_env())
        put(self, "context_keys", MappingProxyType({**LIBRARY_CONTEXT_KEYS, **(context_keys or {})}))
        keys = self.context_keys

        def check(p: Policy) -> None:
            check_policy(p, registry, keys)

        if isinstance(policy, Policy):
            check(policy)
            put(self, "_source", None)
            put(self, "_fixed", policy)
        else:
            put(self, "_source", PolicySource(policy, check))
            put(self, "_fixed", None)
        put(self, "_store", store)
        put(self, "_opened", [])  # the store opened from the environment, once, when none was given
        put(self, "_lock", threading.Lock())
        put(self, "identity_verifier", identity_verifier)
        put(self, "_receivers", tuple(escalation_receivers or ()))
        put(self, "compensations", frozenset(s.compensation.tool for s in registry.values() if s.compensation))

    # -- shared parts ------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        """The current policy: its files are hashed again on every use, and read again when any
        of them changed (whatever its mtime), so every decision, and every resumed run, is made
        under the policy as it is now."""
        if self._source is not None:
            return self._source.current()
        assert self._fixed is not None
        return self._fixed

    @property
    def escalation_receivers(self) -> tuple[str, ...]:
        """Who may resolve escalations: as given, else the current policy's receivers."""
        return self._receivers or tuple(self.policy.document.escalation.receivers)

    @property
    def store(self) -> Any:
        """The store this run writes to: the one its caller passed in the run's context (each
        :class:`AgentRuntime` passes its own), else the kernel's, else opened from the environment."""
        run_store = _run_store()
        return run_store if run_store is not None else self.default_store

    @property
    def default_store(self) -> Any:
        """The store a run without a ``RunContext.store`` writes to (the kernel's, or the environment's)."""
        if self._store is not None:
            return self._store
        with self._lock:
            if not self._opened:
                from agent_kit.store import Store

                self._opened.append(Store.open())
            return self._opened[0]

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
                   context: Mapping[str, Any], thread: str, turn: str | None = None,
                   invalid: str | None = None) -> Action:
        """Validate a call of ``thread`` and decide it (its running totals per thread are this
        thread's). Invalid or unknown calls come back denied, with the reason (``invalid``: why
        the model's call could not even be parsed)."""
        now = datetime.now(UTC)
        checked, problem = self._checked(tool, args)
        if invalid is not None:
            problem = invalid
        hashed = action_hash(tool, checked)
        call = {"tool_call_id": tool_call_id, "turn": turn, "tool": tool, "args": checked, "hash": hashed}
        decision = (Decision(tool=tool, mode=None, outcome="deny", rule="validation", reason=problem,
                             policy_version=self.policy.version) if problem is not None
                    else self.decide(call, context, thread=thread)).to_json()
        expiry = int(decision.get("approval_expiry") or 0)
        return {
            "tool_call_id": tool_call_id, "turn": turn, "tool": tool, "args": checked, "hash": hashed,
            "decision": decision, "requested_by": requested_by, "requested_at": now_iso(now),
            "grants": {"verified": [], "approvals": []},
            "expires_at": now_iso(now + timedelta(seconds=expiry)) if expiry else None,
        }

    def decide(self, action: Mapping[str, Any], context: Mapping[str, Any], *, thread: str | None,
               tx: Any = None) -> Decision:
        """Policy's decision for an action of ``thread`` now (facts and running totals read fresh,
        policy possibly reloaded; totals per thread are that thread's: None only outside a thread).
        ``tx``: read the totals inside this ledger transaction."""
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
        return {k: v for k, v in context.items() if k in self.context_keys}

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

    def summary(self, action: Action, context: Mapping[str, Any]) -> str:
        d = action["decision"]
        who = context.get("customer_name") or context.get("customer_id") or "an unverified customer"
        return (f"{who} asked for {action['tool']}({canonical_json(action['args'])}); "
                f"policy {d['policy_version']}: {d['reason']}")


def _run_store() -> Any:
    """The store given in the current run's context, if the code runs inside a run and one was given."""
    from agent_kit.store import Store

    store = getattr(run_context(), "store", None)
    # Only a store object: a served graph's client may send a context, but never a store.
    return store if isinstance(store, Store) else None
