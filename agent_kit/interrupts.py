"""Interrupt requests and resume decisions, in LangChain's human-in-the-loop shape.

A request is ``{"action_requests": [...], "review_configs": [...]}`` (so Agent Chat UI and other
tools that read that format work unchanged) plus agent_kit's own fields beside them: ``kind``,
``action_hash``, ``mode``, ``rule``, ``required_role``, ``expires_at``, ``summary`` and more.

A resume is ``{"decisions": [one decision], "approver": NAME, "action_hash": HASH}``. It is checked
by :func:`check_resume` twice: by the runtime before the graph is invoked (a refused payload never
reaches the checkpoint, so the run stays paused and resumable), and again inside the node, which
refuses what slipped through by asking again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from agent_kit.errors import ApprovalError, DecisionInputError, InputError, ResumeError
from agent_kit.limits import InputLimits, check_name, check_text, check_value
from agent_kit.types import Action, DecisionType, InterruptRequest, Kind

__all__ = ["ResumeDecision", "approvals_complete", "build_request", "check_resume", "is_request", "now_iso"]

_ALLOWED: dict[str, list[DecisionType]] = {
    "approval": ["approve", "edit", "reject"],
    # The customer answers in the chat (a `respond` with their words); offering staff approve or
    # reject here would invite them to answer for the customer.
    "verification": ["respond"],
    # Agent Chat UI shows controls for approve / edit / reject only: `reject` with a note hands
    # the case back to the agent; its "Mark as Resolved" (`goto: END`) closes it; `respond`
    # (LangChain's own clients, the CLI, the Python API) closes it, or hands it back with
    # `resolution: "return"`.
    "escalation": ["reject", "respond"],
}
_ACCEPTED: dict[str, tuple[str, ...]] = {
    **{k: tuple(v) for k, v in _ALLOWED.items()},
    # What the chat sent before answers were `respond`: still understood, never offered.
    "verification": ("respond", "approve", "reject"),
}
ESCALATION_HELP = ("Reject with a note to hand the case back to the agent (the model is told the note); "
                   "Mark as Resolved to close it.")
"""How an escalation is decided with Agent Chat UI's own controls (shown in its description)."""
_RESUME_KEYS = {"decisions", "approver", "action_hash", "decided_at", "resolution"}
YES_WORDS = frozenset({"yes", "y", "yes please", "confirm", "confirmed", "i confirm", "yes, go ahead",
                       "go ahead", "ok", "okay", "sure"})
"""Answers that count as the customer's explicit confirmation."""
CUSTOMER = "customer"
"""The actor who answers a verification: the customer of the thread, through the chat."""


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def is_request(value: Any) -> bool:
    """Whether an interrupt's value is a request :func:`build_request` made (agent_kit's own pause),
    not an application's."""
    return isinstance(value, Mapping) and "action_requests" in value


def build_request(kind: Kind, action: Action, **fields: Any) -> InterruptRequest:
    """The interrupt value for one pending action."""
    decision = action["decision"]
    description = fields.pop("question", None) or decision["reason"]
    if kind == "escalation":
        description = f"{description}. {ESCALATION_HELP}"
    if kind == "verification":
        fields.setdefault("answered_by", CUSTOMER)
    request: InterruptRequest = {
        "action_requests": [{"name": action["tool"], "args": dict(action["args"]), "description": description}],
        "review_configs": [{"action_name": action["tool"], "allowed_decisions": list(_ALLOWED[kind])}],
        "kind": kind,
        "action_hash": action["hash"],
        "tool_call_id": action["tool_call_id"],
        "mode": decision["mode"],
        "rule": decision["rule"],
        "reason": decision["reason"],
        "policy_version": decision["policy_version"],
        "requested_by": action.get("requested_by"),
        "requested_at": action["requested_at"],
    }
    return cast(InterruptRequest, {**request, **fields})  # fields: InterruptRequest's optional keys


@dataclass(frozen=True)
class ResumeDecision:
    """A checked resume: what was decided, by whom, acting as which role."""

    type: DecisionType
    actor: str
    role: str | None
    message: str | None = None
    edited_action: dict[str, Any] | None = None
    resolution: Literal["close", "return"] | None = None
    decided_at: str = ""


def check_resume(
    payload: Any,
    request: Mapping[str, Any],
    *,
    roles_of: Any,
    now: datetime | None = None,
    limits: InputLimits | None = None,
) -> ResumeDecision:
    """Refuse a malformed or unauthorised resume, naming the problem.

    Args:
        payload: the resume value as given.
        request: the pending interrupt's value (from :func:`build_request`).
        roles_of: approver name -> the roles they may act as (from the policy).
        now: check expiry against this time; None skips the check (inside a node, where an
            answer accepted earlier is re-read on every re-entry).
        limits: size limits of the decision's text and edit (default: from the environment).

    Raises:
        ResumeError / ApprovalError: with a message that says what to fix;
        DecisionInputError: the message, approver or edit cannot be stored as it is (see
            :mod:`agent_kit.limits`).
    """
    try:
        _check_inputs(payload, limits or InputLimits.from_env())
    except InputError as exc:
        raise DecisionInputError(str(exc), field=exc.field) from None
    if not isinstance(payload, Mapping):
        raise ResumeError(f"a resume must be an object with 'decisions', got {type(payload).__name__}")
    extra = sorted(set(payload) - _RESUME_KEYS)
    if extra:
        raise ResumeError(f"unknown field(s) in resume: {', '.join(extra)}; allowed: {', '.join(sorted(_RESUME_KEYS))}")
    decisions = payload.get("decisions")
    if not isinstance(decisions, list) or len(decisions) != 1:
        n = len(decisions) if isinstance(decisions, list) else "no"
        raise ResumeError(f"a resume needs exactly one decision in 'decisions' (one action per interrupt), got {n}")
    d = decisions[0]
    if not isinstance(d, Mapping) or not isinstance(d.get("type"), str):
        raise ResumeError(f"each decision must be an object with a 'type', got {d!r}")
    kind: str = request["kind"]
    allowed = request["review_configs"][0]["allowed_decisions"]
    dtype = d["type"]
    if dtype not in allowed and dtype not in _ACCEPTED.get(kind, ()):
        raise ResumeError(f"decision {dtype!r} is not allowed for a {kind} interrupt; allowed: {', '.join(allowed)}")
    known = {"type", "message", "edited_action", "args_schema"}
    bad = sorted(set(d) - known)
    if bad:
        raise ResumeError(f"unknown field(s) in decision: {', '.join(bad)}")
    message = d.get("message")
    if message is not None and not isinstance(message, str):
        raise ResumeError(f"'message' must be text, got {type(message).__name__}")
    given_hash = payload.get("action_hash")
    if given_hash is not None and given_hash != request["action_hash"]:
        raise ApprovalError(
            f"the decision is for action {str(given_hash)[:12]}…, but the pending action is "
            f"{request['action_hash'][:12]}…; it changed since you looked: list pending again",
            approver=payload.get("approver") if isinstance(payload.get("approver"), str) else None,
            reason="not_bound")
    actor = payload.get("approver")
    if not isinstance(actor, str) or not actor.strip():
        raise ApprovalError("an identified approver is required (give --as NAME / approver=...)",
                            reason="unidentified")
    decided_at = payload.get("decided_at") or now_iso(now)
    try:
        if not isinstance(decided_at, str) or _parse_time(decided_at).tzinfo is None:
            raise ValueError(decided_at)
    except ValueError:
        raise ResumeError(f"'decided_at' must be an ISO-8601 time with a zone, got {decided_at!r}") from None

    if kind == "verification":
        if actor != CUSTOMER:
            raise ApprovalError(
                f"this interrupt waits on the customer's own answer; {actor!r} cannot give it "
                "(answer through the chat)",
                approver=actor, reason="customer_only")
        if dtype == "respond" and not message:
            raise ResumeError("a respond decision needs the customer's answer in 'message'")
        return ResumeDecision(type=dtype, actor=actor, role=None, message=message, decided_at=decided_at)

    roles = roles_of(actor)
    if not roles:
        raise ApprovalError(f"unknown approver {actor!r}: the policy lists no roles for them",
                            approver=actor, reason="unknown_approver")
    if actor == request.get("requested_by"):
        raise ApprovalError(f"{actor!r} requested this action and cannot also decide it",
                            approver=actor, reason="self_approval")
    if kind == "escalation":
        receivers = request.get("receivers") or []
        if receivers and not (set(receivers) & (roles | {actor})):
            raise ApprovalError(f"{actor!r} cannot resolve escalations; that takes one of: {', '.join(receivers)}",
                                approver=actor, reason="wrong_role")
        # `reject` (Agent Chat UI's control) hands the case back; `respond` closes it unless told.
        resolution = payload.get("resolution", "return" if dtype == "reject" else "close")
        if resolution not in ("close", "return"):
            raise ResumeError(f"'resolution' must be 'close' or 'return', got {resolution!r}")
        if not message:
            raise ResumeError("resolving an escalation needs a note (--note TEXT, or the decision's 'message')")
        role = next(iter(sorted(roles & set(receivers))), None) if receivers else None
        return ResumeDecision(type="respond", actor=actor, role=role, message=message,
                              resolution=resolution, decided_at=decided_at)

    # approval
    given = request.get("approvals_given") or []
    if any(g.get("approver") == actor for g in given):
        raise ApprovalError(f"{actor!r} already approved this action; it needs a different approver",
                            approver=actor, reason="repeat_approval")
    unmet = [r for r in request.get("requirements", []) if _unmet(r, given, roles_of)]
    role = next((r["role"] for r in unmet if r["role"] in roles), None)
    if role is None:
        needed = ", ".join(r["role"] for r in unmet) or request.get("required_role") or "?"
        raise ApprovalError(f"{actor!r} (roles: {', '.join(sorted(roles))}) cannot decide this; it needs role {needed}",
                            approver=actor, reason="wrong_role")
    if dtype in ("approve", "edit") and request.get("expires_at"):
        when = now or _parse_time(decided_at)
        if when >= _parse_time(request["expires_at"]):
            raise ApprovalError(
                f"the approval request expired at {request['expires_at']}; it can only be rejected now",
                approver=actor, reason="expired")
    if dtype == "reject" and not message:
        raise ResumeError("a rejection needs a reason (--reason TEXT); the model is told why")
    edited = None
    if dtype == "edit":
        ea = d.get("edited_action")
        if not (isinstance(ea, Mapping) and isinstance(ea.get("name"), str) and isinstance(ea.get("args"), Mapping)):
            raise ResumeError("an edit needs 'edited_action' with 'name' (text) and 'args' (object)")
        edited = {"name": ea["name"], "args": dict(ea["args"])}
    return ResumeDecision(type=dtype, actor=actor, role=role, message=message, edited_action=edited,
                          decided_at=decided_at)


def _check_inputs(payload: Any, limits: InputLimits) -> None:
    """The door of every decision: its text, approver and edit are stored as they are (NUL and
    control characters in text included) or refused here, before the run resumes."""
    if not isinstance(payload, Mapping):
        return
    if isinstance(payload.get("approver"), str) and payload["approver"].strip():
        check_name(payload["approver"], "approver", max_chars=limits.max_name_chars)
    decisions = payload.get("decisions")
    for d in decisions if isinstance(decisions, list) else ():
        if not isinstance(d, Mapping):
            continue
        if d.get("message") is not None:
            check_text(d["message"], "the decision's message", max_chars=limits.max_message_chars)
        if d.get("edited_action") is not None:
            check_value(d["edited_action"], "the edited action", max_chars=limits.max_args_chars,
                        max_depth=limits.max_depth)


def approvals_complete(requirements: Sequence[Mapping[str, Any]], given: Sequence[Mapping[str, Any]],
                       roles_of: Any) -> bool:
    """Whether the approvals given meet every requirement (distinct approvers, right roles)."""
    if not requirements:
        return True
    distinct = {g["approver"] for g in given}
    need = max(int(r["count"]) for r in requirements)
    return len(distinct) >= need and not any(_unmet(r, given, roles_of) for r in requirements)


def _unmet(req: Mapping[str, Any], given: Sequence[Mapping[str, Any]], roles_of: Any) -> bool:
    have = sum(1 for g in given if req["role"] in roles_of(g["approver"]))
    return bool(have < req["count"])
