"""Rollback: run the registered compensation of an executed action, as a permissioned action.

Policy names who may roll back each tool (``rollback: {role: ...}``); a tool without that entry
cannot be rolled back by anyone (fail closed). The compensation runs through the ledger with its
own idempotency key, and the original ledger record is marked rolled back atomically, so a second
rollback (or two at once) is refused and the compensation happens once.
"""

from __future__ import annotations

from typing import Any

from agent_kit import _effects, _provenance
from agent_kit._canonical import action_hash, idempotency_key, result_hash
from agent_kit._gates import crash_point
from agent_kit.errors import RollbackError

__all__ = ["rollback"]


def rollback(runtime: Any, entry_seq: int, *, approver: str) -> dict[str, Any]:
    """Reverse the effect recorded by audit entry ``entry_seq``.

    Returns:
        ``{"entry", "compensation", "args", "result", "audit_seq"}``.

    Raises:
        RollbackError: the entry is not an executed action, has no compensation, was rolled back
            already, or the approver may not roll it back.
    """
    kernel, store = runtime.kernel, runtime.store
    entry = store.audit.get(int(entry_seq))
    if entry is None:
        raise RollbackError(f"no audit entry {entry_seq}")
    if entry.kind != "executed":
        raise RollbackError(f"audit entry {entry_seq} is a {entry.kind!r} entry; "
                            "only 'executed' actions can be rolled back")
    spec = kernel.registry.get(entry.tool or "")
    if spec is None:
        raise RollbackError(f"tool {entry.tool!r} of entry {entry_seq} is not registered in this graph")
    if spec.compensation is None:
        why = "it is declared irreversible" if spec.irreversible else "it declares no compensation"
        raise RollbackError(f"{spec.name} (entry {entry_seq}) cannot be rolled back: {why}")
    need = kernel.policy.rollback_requirement(spec.name)
    if need is None:
        raise RollbackError(f"the policy names nobody who may roll back {spec.name}; "
                            "add `rollback: {role: ...}` to its entry")
    if need.count > 1:
        # Rollback takes one approver; a policy asking for more is not met by one: fail closed.
        raise RollbackError(f"rolling back {spec.name} needs {need.count} approvers with role {need.role}; "
                            "agent-kit rollback takes one, so it is refused")
    if not kernel.policy.can_act_as(approver, need.role):
        roles = ", ".join(sorted(kernel.policy.roles_of(approver))) or "none"
        raise RollbackError(f"{approver!r} (roles: {roles}) may not roll back {spec.name}; it needs role {need.role}")
    key = entry.data.get("idempotency_key")
    record = store.ledger.get(key) if key else None
    if record is None or record.status != "done":
        raise RollbackError(f"the ledger has no finished execution for entry {entry_seq}")
    if record.rolled_back_by is not None:
        raise RollbackError(f"entry {entry_seq} was already rolled back (audit entry {record.rolled_back_by})")
    comp = kernel.registry.get(spec.compensation.tool)
    if comp is None:
        raise RollbackError(f"compensation {spec.compensation.tool!r} is not registered")
    args = spec.compensation.args(record.args, record.result)
    comp.validate_args(args)
    thread = entry.thread_id or ""
    with store.leases.acquire(thread, owner=f"rollback of entry {entry_seq} by {approver}") as lease:
        current = store.ledger.get(key)
        if current is not None and current.rolled_back_by is not None:
            raise RollbackError(f"entry {entry_seq} was already rolled back (audit entry {current.rolled_back_by})")
        snap = runtime.state(thread)
        # only what the thread's nodes wrote (a customer id written through the API is not trusted)
        stored = (snap.values or {}).get("context") if snap else None
        context = _provenance.trusted(store.audit.keyring, thread, stored)[0]
        call = comp.call_args(args, context)
        chash = action_hash(comp.name, args)
        ckey = _attempt_key(store, thread, entry_seq, chash)
        if comp.takes_idempotency_key:
            # The back office sees one key for every attempt: one that failed after the reversal
            # was applied (a timeout) is answered, not applied again.
            call["idempotency_key"] = idempotency_key(thread, f"rollback:{entry_seq}", chash)
        prior = store.ledger.get(ckey)
        if prior is not None and prior.status in ("started", "unknown") and not comp.can_reconcile:
            store.ledger.mark_unknown(ckey)
            raise RollbackError(f"an earlier {comp.name} for entry {entry_seq} was cut off and its outcome is "
                                "unknown; it is not run again blindly: check the system of record")
        lease.check()  # still ours: nothing runs under a lease another process took over
        crash_point("rollback_before_compensation")
        detail = {"entry": entry_seq, "compensation": comp.name, "args": args, "idempotency_key": ckey,
                  "role": need.role}
        # The intent is on record before the compensation runs; its outcome, the audit entry and
        # the original record's "rolled back" mark commit together.
        record, _ = _effects.start(
            store, ckey, thread_id=thread, tool_call_id=f"rollback:{entry_seq}", tool=comp.name,
            action_hash=chash, args=args, grants=[],
            intent={"kind": "started", "actor": approver, "thread_id": thread, "tool": comp.name,
                    "action_hash": chash, "data": detail, "policy_version": kernel.policy.version,
                    "key": f"{thread}:{ckey}:started"})
        rolled_back = {"kind": "rolled_back", "actor": approver, "thread_id": thread, "tool": spec.name,
                       "action_hash": entry.action_hash, "policy_version": kernel.policy.version,
                       "key": f"{thread}:rollback:{entry_seq}"}
        if record.status == "done":
            result = record.result
            audit_entry = store.audit.append(**rolled_back, data={**detail, "result_hash": result_hash(result)})
            if store.ledger.get(key).rolled_back_by is None:
                store.ledger.mark_rolled_back(key, audit_entry.seq)
        else:
            outcome = _effects.run_effect(
                store, ckey, lambda: _effects.run_tool(comp.tool, call), failure_of=comp.failure_of,
                after=lambda: crash_point("rollback_after_compensation"),
                failed=lambda error: {"kind": "failed", "actor": approver, "thread_id": thread, "tool": comp.name,
                                      "action_hash": chash, "data": {**detail, "error": error},
                                      "policy_version": kernel.policy.version, "key": f"{thread}:{ckey}:failed"},
                done=lambda result, _ms: {**rolled_back, "data": {**detail, "result_hash": result_hash(result)}},
                also=lambda tx, e: store.ledger.mark_rolled_back_in(tx, key, e.seq))
            if outcome.error is not None:
                raise RollbackError(f"the compensation {comp.name} failed: {outcome.error}")
            result, audit_entry = outcome.result, outcome.audit_entry
    return {"entry": entry_seq, "compensation": comp.name, "args": args, "result": result, "audit_seq": audit_entry.seq}


def _attempt_key(store: Any, thread: str, entry_seq: int, chash: str) -> str:
    """The ledger key of this attempt: the first attempt's, or, after attempts that failed, a key of
    its own, so the new attempt is a new effect with its intent on record before it runs, and a
    cut-off attempt is never run again blindly. (A compensation that takes an idempotency key is
    given the first attempt's key every time, so its back office applies the reversal once.)"""
    attempt = 0
    while True:
        key = idempotency_key(thread, f"rollback:{entry_seq}" + (f"#{attempt}" if attempt else ""), chash)
        prior = store.ledger.get(key)
        if prior is None or prior.status != "failed":
            return key
        attempt += 1
