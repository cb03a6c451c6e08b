"""The verification, approval, escalation, execute and record nodes: functions of the
:class:`~agent_kit.kernel.Kernel` that take one task (an action sent by ``Send``) and return a
``Command``. :func:`run_gate` is their door: it runs a gate only on a task agent_kit's nodes sent it.

Rules every node here keeps:
- nothing with an effect happens before ``interrupt()``: a node re-runs from its top on resume.
  What does happen before it (the inbox row, the "requested" audit entry, written in one
  transaction) is keyed by the interrupt id, so re-running writes nothing new; the row leaves the
  inbox in the transaction that audits the decision;
- an answer that fails :func:`check_resume` is recorded as refused and the node asks again with
  a fresh interrupt, so the run stays paused and resumable;
- every effect goes through the ledger (:mod:`agent_kit._effects`): its intent is audited before it
  runs, its outcome with its ledger record, and the grants it spends are consumed as it starts;
  every decision goes into the audit trail exactly once.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command, interrupt

from agent_kit import _compat, _effects, _provenance
from agent_kit._actions import (
    HANDOFF_MARK,
    act_on_saved_state,
    auth_identity,
    call_id,
    thread_of,
    tool_message,
)
from agent_kit._canonical import action_hash, idempotency_key, result_hash
from agent_kit._compat import answers_stored, next_interrupt_id
from agent_kit._visibility import filter_fields
from agent_kit.errors import ApprovalError, ResumeError
from agent_kit.interrupts import CUSTOMER, YES_WORDS, approvals_complete, build_request, check_resume
from agent_kit.limits import InputLimits, storable_result
from agent_kit.policy import Decision
from agent_kit.types import Action, Grants, InterruptRequest, Task

if TYPE_CHECKING:
    from agent_kit.kernel import Kernel



def crash_point(name: str) -> None:
    """Die here if ``AGENT_KIT_CRASH_AT`` names this point (the crash-matrix tests use it)."""
    if os.environ.get("AGENT_KIT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)




def _pending_item(request: Mapping[str, Any], config: RunnableConfig) -> Any:
    from agent_kit.inbox import PendingItem

    return PendingItem.from_request(thread_of(config), request["interrupt_id"], request, served_by=_served_by(config))


def pending_item_of(request: Mapping[str, Any], thread_id: str) -> Any:
    """The inbox item of a pending interrupt's value, outside a run (to list it again)."""
    return _pending_item(request, {"configurable": {"thread_id": thread_id}})


def _served_by(config: RunnableConfig) -> dict[str, str] | None:
    """Where LangGraph Server runs this graph, the ids it puts in the run's configuration."""
    conf = config.get("configurable") or {}
    if conf.get("graph_id") is None and conf.get("assistant_id") is None:
        return None
    return {"graph_id": str(conf.get("graph_id") or ""), "assistant_id": str(conf.get("assistant_id") or "")}


class Reask(Exception):
    """Ask again in a new task: the answer was refused in a way the pending step cannot keep.

    A client's ``Command(goto=END)`` stays on the checkpoint it was sent to; asking again in the
    same task would see it again on every later run. The node ends its task instead and sends
    the same action to itself, carrying the refusal, so the next interrupt says why.
    """

    def __init__(self, refused: dict[str, Any]) -> None:
        super().__init__(refused["reason"])
        self.refused = refused


def with_refusal(request: InterruptRequest, refused: Mapping[str, Any] | None) -> InterruptRequest:
    """The request as asked again after a refused answer: the reason in a ``refused`` field and at
    the head of the description, where Agent Chat UI and any HITL client show it."""
    if not refused:
        return request
    ar = request["action_requests"][0].copy()
    ar["description"] = f"Refused: {refused['reason']}. {ar.get('description') or ''}".strip()
    return {**request, "action_requests": [ar], "refused": dict(refused)}


def _ask(kernel: Kernel, request: InterruptRequest, action: Action, config: RunnableConfig,
         answered: int, requested_kind: str, *, actor: str,
         carried: Mapping[str, Any] | None = None) -> tuple[Any, str, int]:
    """Publish one interrupt and wait for a valid answer; refused answers are audited and re-asked,
    the reason in the interrupt asked next (``carried``: a refusal from the task before).

    Returns the checked decision, the interrupt id it answered and the answers consumed so far.
    """
    base = request
    refused: Mapping[str, Any] | None = carried
    audit, thread = kernel.store.audit, thread_of(config)
    while True:
        iid = next_interrupt_id(answered)
        request = {**with_refusal(base, refused), "interrupt_id": iid}  # (still an InterruptRequest)
        # An answer is already in the task (given with this resume, or earlier): the interrupt was
        # published when it was first raised; publishing again would list an answered one.
        replay = answers_stored() > answered
        if not replay:
            _publish(kernel, request, action, config, requested_kind, actor=actor)
            if _compat.end_requested() and not _compat.null_resume_pending():
                return _goto_end(kernel, request, action, config, iid, answered)
        answer = interrupt(request)
        answered += 1
        # What the trail holds of this interrupt (refused, decided, asked), read at once.
        held = audit.by_keys([f"{thread}:{iid}:{k}" for k in ("refused", "decided", "requested")])
        entry = held.get(f"{thread}:{iid}:refused")
        if entry is not None:
            # refused when it came in; the refusal stands on every re-entry
            refused = {"interrupt_id": iid, "reason": str(entry.data.get("error"))}
            continue
        decided = held.get(f"{thread}:{iid}:decided")
        if decided is None and f"{thread}:{iid}:requested" not in held:
            # Never asked on this thread: a copy of another thread (``threads.copy``) carries its
            # paused interrupt, same id and action. Its answer would spend a second approval of one
            # requested action (the ledger keys effects by thread). Refused, and asked again in a new
            # task: its interrupt gets an id of its own (this one's is the other thread's inbox key).
            reason = (f"interrupt {iid} was never asked on this thread (a copy of another thread?); "
                      "its answer is refused, and the action is asked again here")
            kernel.audit("refused", action, config, actor=_who(answer, config),
                        key=f"{iid}:refused", interrupt_id=iid, data={"error": reason, "rule": "not_asked_here"})
            raise Reask({"interrupt_id": iid, "reason": reason})
        try:
            if decided is None:  # a fresh answer, not one accepted in an earlier run of this node
                if request["kind"] != "verification":
                    answer = _as_authenticated(answer, config)
                elif auth_identity(config) not in (None, request.get("requested_by")):
                    # The customer answers their own verification; a signed-in operator cannot.
                    raise ApprovalError(f"only {request.get('requested_by')!r}, who asked for this action, "
                                        "can answer it")
                elif auth_identity(config) and isinstance(answer, Mapping) and answer.get("approver") is None:
                    answer = {**answer, "approver": CUSTOMER}  # the signed-in customer, answering as themselves
            elif isinstance(answer, Mapping) and answer.get("approver") is None:
                # Accepted before from a signed-in user, whose name the stored answer does not carry:
                # replayed (the node re-runs on every later resume), it is theirs as recorded, whoever
                # sends the run that replays it (another approver, or a goto END).
                answer = {**answer, "approver": decided.actor}
            # Expiry by this server's clock: now for a fresh answer, the recorded time for one
            # accepted before; never by a time the client wrote.
            when = datetime.fromisoformat(decided.at) if decided is not None else datetime.now(UTC)
            decision = check_resume(answer, request, roles_of=kernel.policy.roles_of, now=when)
        except ResumeError as exc:
            kernel.audit("refused", action, config, actor=_who(answer, config), key=f"{iid}:refused",
                        interrupt_id=iid, data={"error": str(exc), **_named(answer, config)}, close_inbox=iid)
            refused = {"interrupt_id": iid, "reason": str(exc)}
            continue
        # The inbox item leaves with the decision's audit entry (close_inbox=iid), in one transaction.
        return decision, iid, answered


GOTO_END_NOTE = "Marked as resolved"
"""The note of a case closed by a client's ``Command(goto=END)`` (Agent Chat UI's "Mark as Resolved")."""


def _goto_end(kernel: Kernel, request: InterruptRequest, action: Action, config: RunnableConfig,
              iid: str, answered: int) -> tuple[Any, str, int]:
    """A client sent ``Command(goto=END)`` while this interrupt waited: close the escalated case
    as the signed-in person, or refuse (audited) and ask again in a new task, saying why."""
    thread = thread_of(config)
    decided = kernel.store.audit.by_key(f"{thread}:{iid}:decided")
    payload: dict[str, Any] = {"decisions": [{"type": "respond", "message": GOTO_END_NOTE}], "resolution": "close"}
    try:
        if request["kind"] != "escalation":
            who = "the customer answers it in the chat" if request["kind"] == "verification" else \
                "approve, edit or reject it"
            raise ResumeError(f"Mark as Resolved (goto END) closes escalated cases only; this is a pending "
                              f"{request['kind']}: {who}")
        payload = _as_authenticated(payload, config)
        when = datetime.fromisoformat(decided.at) if decided is not None else datetime.now(UTC)
        decision = check_resume(payload, request, roles_of=kernel.policy.roles_of, now=when)
    except ResumeError as exc:
        kernel.audit("refused", action, config, actor=_who(payload, config), key=f"{iid}:refused", interrupt_id=iid,
                    data={"error": str(exc), "command": "goto END"}, close_inbox=iid)
        raise Reask({"interrupt_id": iid, "reason": str(exc)}) from None
    return decision, iid, answered


def _publish(kernel: Kernel, request: InterruptRequest, action: Action, config: RunnableConfig,
             requested_kind: str, *, actor: str) -> None:
    """List the interrupt in the inbox and audit the request, in one transaction: both or neither."""
    iid = request["interrupt_id"]
    item = _pending_item(request, config)
    fields = kernel.audit_fields(requested_kind, action, config, actor=actor, key=f"{iid}:requested", interrupt_id=iid,
                                data={k: request.get(k) for k in ("reason", "rule", "required_role", "expires_at",
                                                                  "summary")})

    def publish_in(tx: Any) -> None:
        kernel.store.inbox.put_in(tx, item)
        kernel.store.audit.append_in(tx, **fields)

    kernel.store.audit.write(publish_in)




def _as_authenticated(answer: Any, config: RunnableConfig) -> Any:
    """Where the graph is served with authentication, the approver is the authenticated user.

    A payload naming someone else is refused; one naming nobody is taken as the user's.
    """
    identity = auth_identity(config)
    if not identity or not isinstance(answer, Mapping):
        return answer
    given = answer.get("approver")
    if given is None:
        return {**answer, "approver": str(identity)}
    if given != identity:
        raise ApprovalError(f"the payload names approver {given!r}, but the authenticated user is {identity!r}")
    return answer


def _who(answer: Any, config: RunnableConfig) -> str:
    """Who sent a refused answer: the signed-in user where the graph is served with auth (never the
    name a payload gives, or anyone could plant refusals on a colleague), else the payload's name."""
    identity = auth_identity(config)
    if identity:
        return identity
    return str(answer.get("approver")) if isinstance(answer, Mapping) and answer.get("approver") else "unknown"


def _named(answer: Any, config: RunnableConfig) -> dict[str, str]:
    """The approver a refused payload named, kept beside the signed-in sender when they differ."""
    given = answer.get("approver") if isinstance(answer, Mapping) else None
    return {"named": str(given)} if given and auth_identity(config) and given != auth_identity(config) else {}


def verification(kernel: Kernel, task: Task, config: RunnableConfig) -> Command[Any]:
    action, context = task["action"].copy(), dict(task["context"])
    decision = kernel.decide(action, context, thread=thread_of(config))
    verified_at = dict(action["grants"].get("verified_at") or {})
    grants: Grants = {**action["grants"], "verified": list(action["grants"]["verified"]), "verified_at": verified_at}
    answered = 0
    context_update: dict[str, Any] = {}
    for kind in decision.verification:
        if kind in grants["verified"]:
            continue
        question = _question(kind, action)
        request = build_request("verification", {**action, "decision": decision.to_json()}, question=question,
                                verification=kind, summary=kernel.summary(action, context),
                                expires_at=action.get("expires_at"))
        try:
            d, iid, answered = _ask(kernel, request, action, config, answered, "verification_requested",
                                    actor="policy", carried=task.get("refused") if answered == 0 else None)
        except Reask as exc:
            return _reask(kernel, "verification", {**action, "grants": grants}, context, exc, context_update)
        ok = d.type in ("approve", "respond")
        detail: dict[str, Any] = {"verification": kind, "answer": d.message}
        if ok and kind == "confirm":
            ok = (d.message or "yes").strip().lower().rstrip(".!") in YES_WORDS
        if ok and kind == "identity":
            try:
                found = kernel.identity_verifier(d.message or "") if kernel.identity_verifier else None
            except Exception as exc:  # a failed check verifies nobody, and must not wedge the thread
                found, detail["error"] = None, str(exc)
            ok = bool(found)
            if found:
                claimed, refused = claim_identity(kernel, action, context, dict(found), config)
                if refused:
                    ok, detail["error"] = False, refused
                else:
                    signed = kernel.signed_context(claimed, config, by="verification", source=iid)
                    context_update = _provenance.merge(context_update, signed)
                    context = _provenance.merge(context, signed)
        if not ok:
            kernel.audit("rejected", action, config, actor=CUSTOMER, key=f"{iid}:decided", interrupt_id=iid,
                        data=detail, close_inbox=iid)
            text = ("Not done: the customer did not confirm this action" if kind == "confirm"
                    else str(detail["error"]) if str(detail.get("error", "")).startswith("Refused")
                    else "Not done: the customer's identity could not be verified")
            return Command(update={"messages": [tool_message(action, f"{text} ({d.message!r}).", error=True)],
                                   "context": context_update, "strikes": 1}, goto="agent")
        kernel.audit("verified", action, config, actor=CUSTOMER, key=f"{iid}:decided", interrupt_id=iid, data=detail,
                    close_inbox=iid)
        grants["verified"].append(kind)
        verified_at[kind] = iid
    action["grants"] = grants
    cmd = kernel.route(action, context, config)
    if context_update:
        return Command(update={**(cmd.update or {}), "context": context_update}, goto=cmd.goto)
    return cmd


def _reask(kernel: Kernel, node: str, action: Action, context: Mapping[str, Any], exc: Reask,
           context_update: Mapping[str, Any] | None = None) -> Command[Any]:
    """End this task and ask again in a new one, the refusal carried into its first interrupt."""

    task: Task = {"action": action.copy(), "context": _provenance.merge(context, context_update),
                  "refused": exc.refused}
    update = {"context": dict(context_update)} if context_update else None
    return Command(update=update, goto=kernel.send(node, task["action"], task["context"], task.get("refused")))


def _question(kind: str, action: Action) -> str:
    if kind == "identity":
        return ("Please verify your identity first: reply with your email and your name or zip code, "
                "or your name and zip code.")
    args = ", ".join(f"{k}={v}" for k, v in action["args"].items() if k != "reason")
    return f"Please confirm: {action['tool'].replace('_', ' ')} ({args}). Reply yes or no."


def approval(kernel: Kernel, task: Task, config: RunnableConfig) -> Command[Any]:
    action, context = task["action"].copy(), dict(task["context"])
    decision = kernel.decide(action, context, thread=thread_of(config))
    # What the question was asked under (the decision the action was sent here with). An answer
    # already given to it is taken (audited, a rejection honoured) even if the policy changed
    # since and no longer asks: no decision is dropped without a trace.
    asked = Decision.from_json(action["decision"]) if action.get("decision") else decision
    given = list(action["grants"]["approvals"])
    reqs = [a.to_json() for a in decision.approvals]
    roles_of = kernel.policy.roles_of
    answered = 0
    while not approvals_complete(reqs, given, roles_of) or answered < answers_stored():
        # The first question of this task was asked under the decision the action was sent here
        # with: an answer to it is checked against that question as it was asked (a lead's
        # rejection stays a rejection when the policy now wants someone else). Every later
        # question is asked, and its answer checked, under the policy as it is now.
        basis = asked if answered == 0 and answers_stored() > 0 else decision
        needs = [a.to_json() for a in basis.approvals]
        if not needs:  # the policy asks nothing now: an answer stored is taken as it was asked
            basis, needs = asked, [a.to_json() for a in asked.approvals]
        if not needs:  # never asked under either decision: nothing stored can be an answer to it
            break
        unmet = [r for r in needs if sum(1 for g in given if r["role"] in roles_of(g["approver"])) < r["count"]]
        request = build_request(
            "approval", {**action, "decision": basis.to_json()},
            required_role=(unmet or needs)[0]["role"], requirements=needs, approvals_needed=basis.approvals_needed,
            approvals_given=given, expires_at=action.get("expires_at"), summary=kernel.summary(action, context),
        )
        try:
            d, iid, answered = _ask(kernel, request, action, config, answered, "approval_requested", actor="policy",
                                    carried=task.get("refused") if answered == 0 else None)
        except Reask as exc:
            return _reask(kernel, "approval", {**action, "decision": decision.to_json(),
                                       "grants": {**action["grants"], "approvals": given}}, context, exc)
        data = {"role": d.role, "message": d.message}
        if d.type == "reject":
            kernel.audit("rejected", action, config, actor=d.actor, key=f"{iid}:decided", interrupt_id=iid, data=data,
                        close_inbox=iid)
            msg = f"Rejected by {d.actor} ({d.role}): {d.message}"
            return Command(update={"messages": [tool_message(action, msg, error=True)], "strikes": 1}, goto="agent")
        if d.type == "edit":
            assert d.edited_action is not None
            edited = kernel.new_action(d.edited_action["name"], d.edited_action["args"], action["tool_call_id"],
                                      requested_by=d.actor, context=context, thread=thread_of(config),
                                      turn=action.get("turn"))
            if action.get("siblings"):
                edited["siblings"] = action["siblings"]  # the edit stays one call of its message
            kernel.audit("edited", action, config, actor=d.actor, key=f"{iid}:decided", interrupt_id=iid,
                        data={**data, "new_tool": edited["tool"], "new_args": edited["args"],
                              "new_action_hash": edited["hash"], "new_decision": edited["decision"]["outcome"]},
                        close_inbox=iid)
            # An edit is a new action, requested by the editor: it is decided again from scratch.
            return kernel.route(edited, context, config)
        given.append({"approver": d.actor, "role": d.role, "at": d.decided_at, "interrupt_id": iid})
        kernel.audit("approved", action, config, actor=d.actor, key=f"{iid}:decided", interrupt_id=iid,
                    data={**data, "approvals": len(given), "needed": decision.approvals_needed}, close_inbox=iid)
    action["grants"] = {**action["grants"], "approvals": given}
    # Decided when this node ran for the answer just given: route by that decision, not a new one.
    return kernel.route(action, context, config, decision=decision)


def escalation(kernel: Kernel, task: Task, config: RunnableConfig) -> Command[Any]:
    action, context = task["action"].copy(), dict(task["context"])
    summary = kernel.summary(action, context)
    receivers = list(kernel.escalation_receivers)
    request = build_request("escalation", action, summary=summary, receivers=receivers,
                            required_role=receivers[0] if receivers else None)
    try:
        d, iid, _ = _ask(kernel, request, action, config, 0, "escalated", actor="policy", carried=task.get("refused"))
    except Reask as exc:
        return _reask(kernel, "escalation", action, context, exc)
    kernel.audit("resolved", action, config, actor=d.actor, key=f"{iid}:decided", interrupt_id=iid,
                data={"note": d.message, "resolution": d.resolution, "role": d.role}, close_inbox=iid)
    handoff = bool(action.get("handoff"))  # no open tool call: a run-level hand-off
    # An effect cut off by a crash may have happened: say so, so nobody takes it for "not run".
    head = ("Outcome unknown (it may have run; do not retry it)" if action["decision"].get("rule") == "outcome_unknown"
            else "Not run: escalated")
    if d.resolution == "return":
        text = f"{head}. A person ({d.actor}) reviewed the case and handed it back: {d.message}"
        msg = HumanMessage(content=f"[operator {d.actor}] {d.message}", name="operator",
                           additional_kwargs={HANDOFF_MARK: True}) if handoff \
        else tool_message(action, text, error=True)
        return Command(update={"messages": [msg]}, goto="agent")
    text = f"{head}. A person ({d.actor}) closed the case: {d.message}"
    update: dict[str, Any] = {"status": "closed", "context": kernel.signed_context(
        {"closing_note": d.message}, config, by="escalation", source=iid)}
    update["messages"] = [] if handoff else [tool_message(action, text, error=True)]
    return Command(update=update, goto="agent")


def execute(kernel: Kernel, task: Task, config: RunnableConfig) -> Command[Any]:
    action, context = task["action"].copy(), dict(task["context"])
    spec = kernel.registry.get(action["tool"])
    counted = spec is not None and spec.name in kernel.policy.counted_tools()
    recorded = action.get("decision") or {}
    if not (counted and recorded.get("mode") not in (None, "read_only")):
        # Fail closed: the policy may have changed since the action was cleared; decide it again.
        # (A counted change is decided again below, once, inside the transaction that starts it.)
        cleared, gate = kernel.gate_of(action, context, thread_of(config))
        if gate != "execute":
            return kernel.route(action, context, config, decision=cleared)
        action = {**action, "decision": cleared.to_json()}
    if action["decision"]["mode"] == "read_only":
        return read(kernel, action, context, config, node="execute")
    spec = kernel.registry[action["tool"]]
    problem = _not_on_record(kernel, spec, action, config)
    if problem is not None:
        return _tool_failed(kernel, action, config, f"not run: {problem}")
    thread = thread_of(config)
    call_args = spec.call_args(action["args"], context)
    key = idempotency_key(thread, call_id(action), action["hash"])
    if spec.takes_idempotency_key:
        call_args["idempotency_key"] = key
    store = kernel.store
    grants = action["grants"]
    crash_point("before_intent")
    check = None
    fresh: list[Any] = []
    if counted:
        # Decide again inside the start transaction: two calls racing for the last room under a
        # limit (two threads of one customer) cannot both pass; and a policy changed since the
        # action was cleared is applied here.
        def check(tx: Any) -> Any:
            decision = kernel.decide(action, context, thread=thread, tx=tx)
            fresh.append(decision)
            return None if kernel.executable(action, decision) else decision

    try:
        # One transaction: the limits are decided again, the approval is consumed, the ledger
        # record and the intent's audit entry are written; a grant already spent on another
        # execution refuses it all.
        record, created = _effects.start(
            store, key, thread_id=thread, tool_call_id=action["tool_call_id"], tool=spec.name,
            action_hash=action["hash"], args=action["args"], grants=grant_ids(thread, action),
            intent=kernel.audit_fields("started", action, config, actor="agent", key=f"{key}:started",
                                      data={"idempotency_key": key, "args_hash": action["hash"],
                                            "approvals": grants["approvals"], "verified": grants["verified"]}),
            dims=kernel.dimensions(action, context, thread), check=check)
    except _effects.GrantSpentError as exc:
        return _refuse_respend(kernel, action, config, exc)
    except _effects.LimitRefused as exc:
        store.ledger.release(key)
        return kernel.route(action, context, config, decision=exc.decision)
    if fresh:
        action["decision"] = fresh[-1].to_json()  # the decision it runs under, for its audit entries
    if record.status == "done":
        result = record.result
        # Written with the result (recorded before this run was cut off); here for records of old.
        kernel.audit("executed", action, config, actor="agent", key=f"{key}:executed",
                    data=_executed_data(action, key, result, record.duration_ms, reconciled=True))
    elif record.status == "failed":
        return _tool_failed(kernel, action, config, record.error, key=key, recorded=True)
    elif record.status == "unknown" or (not created and not spec.can_reconcile):
        store.ledger.mark_unknown(key)
        return _outcome_unknown(kernel, action, context, config, key)
    else:
        crash_point("before_effect")
        outcome = _effects.run_effect(
            store, key, lambda: _plain(_effects.run_tool(spec.tool, call_args), kernel.limits),
            after=lambda: crash_point("after_effect"), failure_of=spec.failure_of,
            failed=lambda error: _failed_fields(kernel, action, config, error, key),
            done=lambda result, duration: kernel.audit_fields(
                "executed", action, config, actor="agent", key=f"{key}:executed",
                data=_executed_data(action, key, result, duration, reconciled=not created)))
        if outcome.error is not None:
            return _tool_message_failed(action, outcome.error)
        result = outcome.result
        crash_point("after_result")
    context_update, refused = claim_identity(kernel, action, context,
                                             _context_from(kernel, spec, action, result, config), config)
    context_update = kernel.signed_context(context_update, config, by="execute", source=call_id(action))
    visible, _ = filter_fields(result, kernel.policy.tools[spec.name].visible_fields)
    crash_point("before_writes")
    message = (tool_message(action, f"Done, but: {refused}", error=True) if refused
               else tool_message(action, _seen(visible, kernel.limits)))
    return Command(update={"messages": [message], "context": context_update}, goto="agent")


def read(kernel: Kernel, action: Action, context: Mapping[str, Any], config: RunnableConfig, *,
         node: str) -> Command[Any]:
    """Run a read-only call cleared to run (``action`` carries its decision), in node ``node``: the
    execute gate, or the permission node that cleared it a moment ago (a read changes nothing, so it
    needs no step of its own). Its result is filtered to the fields the policy shows, the read is
    audited, and an identity it verifies is claimed for the conversation."""
    spec = kernel.registry[action["tool"]]
    problem = _not_on_record(kernel, spec, action, config)
    if problem is not None:
        return _tool_failed(kernel, action, config, f"not run: {problem}")
    try:
        result = _plain(_effects.run_tool(spec.tool, spec.call_args(action["args"], context)), kernel.limits)
    except GraphBubbleUp:
        raise
    except Exception as exc:
        return _tool_failed(kernel, action, config, exc)
    failure = spec.failure_of(result)
    if failure is not None:
        return _tool_failed(kernel, action, config, failure)
    visible, hidden = filter_fields(result, kernel.policy.tools[spec.name].visible_fields)
    kernel.audit("read", action, config, actor="agent", key=f"{call_id(action)}:{action['hash'][:16]}:read",
                data={"hidden_fields": hidden, "result_hash": result_hash(result)})
    update, refused = claim_identity(kernel, action, context, _context_from(kernel, spec, action, result, config),
                                     config)
    update = kernel.signed_context(update, config, by=node, source=call_id(action))
    message = (tool_message(action, refused, error=True) if refused
               else tool_message(action, _seen(visible, kernel.limits)))
    return Command(update={"messages": [message], "context": update}, goto="agent")


IDENTITY_KEYS = ("customer_id", "customer_verified", "customer_name")
"""The context keys that say who the conversation is with; set once per conversation."""


def merge_context(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """The context channel's reducer: later writes win, except the conversation's identity: once
    set, it is never replaced by another customer's (the nodes refuse and audit such a claim; this
    keeps any other writer, two parallel verifications or a state write, from doing it silently)."""
    old, new = old or {}, new or {}
    held = old.get("customer_id")
    if held and "customer_id" in new and new["customer_id"] != held:
        new = {k: v for k, v in new.items() if k not in IDENTITY_KEYS}
        if isinstance(new.get(_provenance.SIGNED), dict):
            new[_provenance.SIGNED] = {k: v for k, v in new[_provenance.SIGNED].items() if k not in IDENTITY_KEYS}
    return _provenance.merge(old, new)


def claim_identity(kernel: Kernel, action: Action, context: Mapping[str, Any],
                   update: dict[str, Any], config: RunnableConfig) -> tuple[dict[str, Any], str | None]:
    """Keep one identity per conversation: a verification as someone else is refused and audited.

    The first identity is claimed in the audit trail under a key of the thread (first writer
    wins, so two verifications racing in one message cannot both take the conversation); a later
    one naming another customer leaves the first in place. Returns the update to apply and, when
    refused, what the model is told.
    """
    claimed = update.get("customer_id")
    if not claimed:
        return update, None
    current = context.get("customer_id")
    holder = current
    if not current or current == claimed:
        entry = kernel.audit("verified", action, config, actor="agent", key="identity",
                            data={"customer_id": claimed, "customer_name": update.get("customer_name")})
        holder = entry.data.get("customer_id")
        if holder == claimed:
            return update, None
    kept = {k: v for k, v in update.items() if k not in IDENTITY_KEYS}
    kernel.audit("refused", action, config, actor="agent", key=f"{call_id(action)}:{action['hash'][:16]}:identity",
                data={"error": "a second identity in one conversation", "verified_as": holder, "claimed": claimed})
    return kept, ("Refused: this conversation is already verified as another customer; a verification as "
                  "someone else does not replace it. A person can take the conversation over.")


def grant_ids(thread: str, action: Action) -> list[str]:
    """The grants an execution of ``action`` consumes: its approvals' and verifications' interrupts."""
    grants = action.get("grants") or {}
    ids = [str(g.get("interrupt_id")) for g in grants.get("approvals") or []]
    ids += [str(i) for i in (grants.get("verified_at") or {}).values()]
    return [f"{thread}:{i}" for i in ids]


def _executed_data(action: Action, key: str, result: Any, duration_ms: float | None, *,
                   reconciled: bool) -> dict[str, Any]:
    return {"args_hash": action["hash"], "result_hash": result_hash(result), "idempotency_key": key,
            "duration_ms": duration_ms, "approvals": action["grants"]["approvals"],
            "verified": action["grants"]["verified"], "reconciled": reconciled}


def _refuse_respend(kernel: Kernel, action: Action, config: RunnableConfig,
                    exc: _effects.GrantSpentError) -> Command[Any]:
    """A payload carrying grants another execution already consumed: nothing runs; it is audited."""
    reason = str(exc)
    kernel.audit("denied", action, config, actor="policy", key=f"{call_id(action)}:{action['hash'][:16]}:respent",
                data={"reason": reason, "rule": "grant_spent", "spent": exc.spent})
    return Command(update={"messages": [tool_message(action, f"Not run: {reason}", error=True)], "strikes": 1},
                   goto="agent")


def _plain(result: Any, limits: InputLimits) -> Any:
    """A tool's result as plain JSON, which the ledger, the audit trail and the model all take.

    The effect already ran, so nothing in a result is refused: a value no backend can store as it
    is (an integer beyond 64 bits, inf or nan, a lone surrogate, nesting past the limit) becomes
    text saying what it was (:func:`agent_kit.limits.storable_result`)."""
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    result = storable_result(result, max_depth=limits.max_depth)
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError):
        return json.loads(json.dumps(result, default=lambda v: v.model_dump(mode="json") if hasattr(
            v, "model_dump") else str(v)))


def _seen(visible: Any, limits: InputLimits) -> Any:
    """What the model sees of a result: at most ``max_result_chars`` of its JSON text (the ledger
    keeps the whole result)."""
    text = visible if isinstance(visible, str) else json.dumps(visible, default=str)
    if len(text) <= limits.max_result_chars:
        return text
    return (text[:limits.max_result_chars] + f"… (cut: the result is {len(text):,} characters; the limit is "
            f"{limits.max_result_chars:,})")


def _context_from(kernel: Kernel, spec: Any, action: Action, result: Any,
                  config: RunnableConfig) -> dict[str, Any]:
    """The tool's trusted context updates; a failing hook adds nothing (the effect stands, recorded)."""
    if spec.on_result is None:
        return {}
    try:
        return dict(spec.on_result(result) or {})
    except Exception as exc:
        kernel.audit("failed", action, config, actor="agent", key=f"{call_id(action)}:{action['hash'][:16]}:on_result",
                    data={"error": f"on_result: {exc}"})
        return {}


def _not_on_record(kernel: Kernel, spec: Any, action: Action, config: RunnableConfig) -> str | None:
    """Why an action must not run although its payload says it may: a forged or stale payload.

    The action's hash must match its arguments, and every approval and verification it carries
    must be in the audit trail, given for this very action.
    """
    try:
        spec.validate_args(action["args"])
    except ValueError as exc:
        return str(exc)
    if action["hash"] != action_hash(action["tool"], action["args"]):
        return "the action's hash does not match its arguments"
    thread, audit = thread_of(config), kernel.store.audit
    grants = action.get("grants") or {}
    for g in grants.get("approvals") or []:
        e = audit.by_key(f"{thread}:{g.get('interrupt_id')}:decided")
        if e is None or e.kind != "approved" or e.actor != g.get("approver") or e.action_hash != action["hash"]:
            return f"the approval by {g.get('approver')!r} is not on record for this action"
    for kind in grants.get("verified") or []:
        e = audit.by_key(f"{thread}:{(grants.get('verified_at') or {}).get(kind)}:decided")
        if e is None or e.kind != "verified" or e.action_hash != action["hash"]:
            return f"the customer's {kind} verification is not on record for this action"
    return None


def _tool_failed(kernel: Kernel, action: Action, config: RunnableConfig, exc: Any, *,
                 key: str | None = None, recorded: bool = False) -> Command[Any]:
    kernel.store.audit.append(**_failed_fields(kernel, action, config, exc, key))
    return _tool_message_failed(action, exc)


def _failed_fields(kernel: Kernel, action: Action, config: RunnableConfig, exc: Any,
                   key: str | None) -> dict[str, Any]:
    return kernel.audit_fields("failed", action, config, actor="agent",
                              key=f"{key or call_id(action) + ':' + action['hash'][:16]}:failed",
                              data={"error": str(exc), "idempotency_key": key})


def _tool_message_failed(action: Action, exc: Any) -> Command[Any]:
    return Command(update={"messages": [tool_message(action, f"Error: {exc}", error=True)], "strikes": 1},
                   goto="agent")


def _outcome_unknown(kernel: Kernel, action: Action, context: dict[str, Any],
                     config: RunnableConfig, key: str) -> Command[Any]:
    """An effect was started and its outcome is unknown: never re-run blindly; a person decides."""

    reason = (f"the outcome of {action['tool']} is unknown after an interruption (idempotency key {key}); "
              "it was not run again; a person must check the system of record")
    action = {**action, "decision": {**action["decision"], "outcome": "escalate", "mode": "escalate",
                                     "rule": "outcome_unknown", "reason": reason}}
    return Command(goto=kernel.send("escalation", action, context))


def record(kernel: Kernel, task: Task, config: RunnableConfig) -> Command[Any]:
    action, context = task["action"].copy(), dict(task["context"])
    # Decided again under the current policy: a payload that is not a recommendation or a draft
    # now goes where policy sends it.
    decided, gate = kernel.gate_of(action, context, thread_of(config))
    if gate != "record":
        return kernel.route(action, context, config, decision=decided)
    action = {**action, "decision": decided.to_json()}
    spec = kernel.registry[action["tool"]]
    decision = action["decision"]
    base = f"{call_id(action)}:{action['hash'][:16]}"
    if decision["outcome"] == "recommend":
        kernel.audit("recommended", action, config, actor="agent", key=f"{base}:recommended",
                    data={"args": action["args"], "reason": decision["reason"]})
        text = {"status": "recommended", "note": "Recorded as a recommendation for staff; nothing was executed.",
                "recommendation": {"tool": action["tool"], "args": action["args"]}}
        return Command(update={"messages": [tool_message(action, text)]}, goto="agent")
    thread = thread_of(config)
    key = idempotency_key(thread, call_id(action), action["hash"])
    store = kernel.store
    drafted = kernel.audit_fields("drafted", action, config, actor="agent", key=f"{base}:drafted",
                                 data={"args": action["args"], "payload_hash": result_hash(action["args"])})
    draft_id: Any
    if (draft := spec.draft) is not None:
        # The draft tool writes to the system of record: it is an effect like any other.
        call_args = {**spec.call_args(action["args"], context), "idempotency_key": key}
        record, _created = _effects.start(
            store, key, thread_id=thread, tool_call_id=action["tool_call_id"], tool=spec.name,
            action_hash=action["hash"], args=action["args"], grants=[],
            intent=kernel.audit_fields("started", action, config, actor="agent", key=f"{key}:started",
                                      data={"idempotency_key": key, "args_hash": action["hash"]}))
        if record.status == "done":
            draft_id = record.result
        else:  # new, cut off, or failed before: the same key makes the back office answer the same draft
            def write_draft() -> Any:
                with _effects.never_paused(spec.name):
                    return _plain(draft(**call_args), kernel.limits)

            outcome = _effects.run_effect(
                store, key, write_draft,
                failed=lambda error: _failed_fields(kernel, action, config, error, key),
                done=lambda draft, _ms: {**drafted, "data": {**drafted["data"], "draft": draft,
                                                              "idempotency_key": key}})
            if outcome.error is not None:
                return _tool_message_failed(action, outcome.error)
            draft_id = outcome.result
    else:
        def save_in(tx: Any) -> Any:
            saved = store.drafts.save_in(tx, thread, spec.name, action["args"], action["hash"], key)
            store.audit.append_in(tx, **{**drafted, "data": {**drafted["data"], "draft": saved}})
            return saved

        draft_id = store.audit.write(save_in)
    text = {"status": "drafted", "note": "Saved as a draft for a person to review; nothing was sent.",
            "draft": draft_id}
    return Command(update={"messages": [tool_message(action, text)]}, goto="agent")


GATE_BODIES: Mapping[str, Callable[[Kernel, Task, RunnableConfig], Command[Any]]] = MappingProxyType({
    "verification": verification, "approval": approval, "escalation": escalation, "execute": execute,
    "record": record,
})
"""The gate nodes, by name."""


def run_gate(kernel: Kernel, node: str, task: Task, config: RunnableConfig) -> Command[Any]:
    """Run gate ``node`` on its task, if agent_kit's nodes sent it (else back to the agent), once
    the checkpoint that sent it is saved."""
    act_on_saved_state(config)
    if not kernel.signed_task(task, config, node):
        return Command(goto="agent")
    return GATE_BODIES[node](kernel, _trusted_task(kernel, task, config, node), config)


def _trusted_task(kernel: Kernel, task: Task, config: RunnableConfig, node: str) -> Task:
    """The task (its action checked by :meth:`Kernel.signed_task`, its MAC taken off) with the thread's
    current context, only what agent_kit's nodes wrote for this thread (see _provenance)."""
    action = {k: v for k, v in task["action"].items() if k != _provenance.ACTION_MAC}
    # The conversation's context as the thread holds it now, not as the task carried it: a task
    # replayed later (its MAC still good) is decided under the customer's current state.
    current = _compat.state_value("context")
    context = current if isinstance(current, Mapping) else task.get("context")
    return {**task, "action": action,  # type: ignore[typeddict-item]
            "context": kernel.trust(context, config, node=node)}
