"""What the pages show, computed from the store, the runtime and the policy (no HTTP here).

Whether the signed-in person may decide an item is asked of :func:`agent_kit.interrupts.check_resume`,
the same check the runtime and the graph's nodes make, so the page never offers a decision the
server would refuse for who they are (and never hides one it would accept).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agent_kit.errors import ResumeError
from agent_kit.interrupts import check_resume

__all__ = [
    "Permission",
    "conversation",
    "diff_args",
    "edit_fields",
    "parse_edit_form",
    "permissions",
    "rough_time",
]


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def rough_time(text: str | None, now: datetime) -> str:
    """``"5 min ago"``, ``"in 23 h"``: a time relative to now, for people."""
    when = parse_time(text)
    if when is None:
        return "never"
    secs = (when - now).total_seconds()
    ahead, secs = secs > 0, abs(secs)
    if secs < 60:
        span = f"{int(secs)} s"
    elif secs < 3600:
        span = f"{int(secs // 60)} min"
    elif secs < 86400 * 2:
        span = f"{int(secs // 3600)} h"
    else:
        span = f"{int(secs // 86400)} days"
    return f"in {span}" if ahead else f"{span} ago"


@dataclass(frozen=True)
class Permission:
    """What the signed-in person may do with one pending item, and why not otherwise."""

    approve: bool = False
    reject: bool = False
    resolve: bool = False
    why_not: str | None = None
    """Why an item is read-only for them (the server's own refusal message)."""

    @property
    def any(self) -> bool:
        return self.approve or self.reject or self.resolve


def permissions(request: dict[str, Any], me: str, policy: Any, now: datetime) -> Permission:
    """What ``me`` may do with the pending interrupt whose value is ``request``."""
    def allowed(decision: dict[str, Any], resolution: str | None = None) -> str | None:
        payload: dict[str, Any] = {"decisions": [decision], "approver": me, "action_hash": request["action_hash"]}
        if resolution:
            payload["resolution"] = resolution
        try:
            check_resume(payload, request, roles_of=policy.roles_of, now=now)
        except ResumeError as exc:
            return str(exc)
        return None

    kind = request.get("kind")
    if kind == "approval":
        no_reject = allowed({"type": "reject", "message": "check"})
        no_approve = allowed({"type": "approve"})
        return Permission(approve=no_approve is None, reject=no_reject is None,
                          why_not=no_approve if no_reject is None else no_reject)
    if kind == "escalation":
        why = allowed({"type": "respond", "message": "check"})
        return Permission(resolve=why is None, why_not=why)
    return Permission(why_not="this waits on the customer's own answer, given in the chat")


def list_permission(item: Any, me: str, policy: Any) -> Permission:
    """A cheap version of :func:`permissions` for inbox rows (no checkpoint is read): role,
    requester and earlier approvals. The item page asks the full check."""
    if item.kind == "verification":
        return Permission(why_not="waits on the customer")
    roles = policy.roles_of(me)
    if not roles:
        return Permission(why_not=f"{me} holds no role in the policy")
    if me == item.requested_by:
        return Permission(why_not="you requested it")
    if any(a.get("approver") == me for a in item.approvals):
        return Permission(why_not="you approved it already; it needs someone else")
    if item.kind == "escalation":
        receivers = set(policy.document.escalation.receivers or ())
        ok = not receivers or bool(receivers & (roles | {me}))
        return Permission(resolve=ok, why_not=None if ok else f"needs one of {', '.join(sorted(receivers))}")
    needed = _unmet(item, policy) or ([item.required_role] if item.required_role else [])
    if needed and not set(needed) & roles:
        return Permission(why_not=f"needs role {' or '.join(needed)}")
    return Permission(approve=True, reject=True)


def _unmet(item: Any, policy: Any) -> list[str]:
    """The roles of an approval's requirements that its approvals so far do not meet."""
    unmet = []
    for req in item.requirements or ():
        have = sum(1 for a in item.approvals if req["role"] in policy.roles_of(a.get("approver", "")))
        if have < int(req.get("count") or 1):
            unmet.append(str(req["role"]))
    return unmet


# -- the conversation ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    who: str
    """``customer``, ``agent``, ``tool`` or ``operator``."""
    text: str
    calls: list[str] = field(default_factory=list)
    error: bool = False


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
    return "".join(parts)


def conversation(messages: list[BaseMessage], limit: int = 60) -> list[Line]:
    """The customer conversation, newest last (the last ``limit`` messages)."""
    out: list[Line] = []
    for m in messages[-limit:]:
        if isinstance(m, HumanMessage):
            out.append(Line("operator" if m.name == "operator" else "customer", _text(m)))
        elif isinstance(m, AIMessage):
            calls = [f"{c['name']}({_short_args(c.get('args') or {})})" for c in m.tool_calls]
            out.append(Line("agent", _text(m), calls))
        elif isinstance(m, ToolMessage):
            out.append(Line("tool", _text(m)[:600], error=m.status == "error"))
    return out


def _short_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)[:60]}" for k, v in args.items())


# -- editing an action --------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str
    """``number``, ``integer``, ``text``, ``boolean``, ``choice`` or ``json``."""
    value: str
    required: bool
    help: str = ""
    choices: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None


def _scalar(prop: dict[str, Any]) -> dict[str, Any]:
    """The one non-null branch of ``anyOf: [X, null]`` (Optional fields), else the property."""
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    return {**prop, **branches[0]} if len(branches) == 1 else prop


def edit_fields(schema: dict[str, Any], args: dict[str, Any]) -> list[Field]:
    """One form field per argument the tool's schema lets a caller set, filled with ``args``."""
    required = set(schema.get("required", []))
    fields_: list[Field] = []
    for name, raw in (schema.get("properties") or {}).items():
        prop = _scalar(raw)
        typ, value = prop.get("type"), args.get(name, prop.get("default"))
        kind = {"number": "number", "integer": "integer", "string": "text", "boolean": "boolean"}.get(str(typ), "json")
        if "enum" in prop:
            kind = "choice"
        if kind == "json":
            shown = "" if value is None else json.dumps(value, ensure_ascii=False)
        elif kind == "boolean":
            shown = "true" if value else ""
        else:
            shown = "" if value is None else str(value)
        fields_.append(Field(
            name=name, label=str(prop.get("title") or name.replace("_", " ").capitalize()), kind=kind, value=shown,
            required=name in required, help=str(prop.get("description") or ""),
            choices=[str(c) for c in prop.get("enum", [])],
            minimum=prop.get("minimum", prop.get("exclusiveMinimum")),
            maximum=prop.get("maximum", prop.get("exclusiveMaximum")),
        ))
    return fields_


class FormError(ValueError):
    """A submitted edit form field cannot be read; the message names the field."""


def parse_edit_form(fields_: list[Field], form: Any) -> dict[str, Any]:
    """The edited arguments from a submitted form, typed by the schema (validated after by the tool's schema).

    Raises:
        FormError: naming the field that is missing or not of its type.
    """
    args: dict[str, Any] = {}
    for f in fields_:
        raw = form.get(f"arg:{f.name}")
        if f.kind == "boolean":
            args[f.name] = raw is not None
            continue
        text = "" if raw is None else str(raw).strip()
        if text == "":
            if f.required:
                raise FormError(f"{f.label} is required")
            continue
        try:
            if f.kind == "integer":
                args[f.name] = int(text)
            elif f.kind == "number":
                number = float(text)
                if not math.isfinite(number):
                    raise ValueError(text)
                args[f.name] = int(number) if number.is_integer() and "." not in text and "e" not in text.lower() \
                    else number
            elif f.kind == "json":
                args[f.name] = json.loads(text)
            else:
                args[f.name] = text
        except ValueError:
            raise FormError(f"{f.label}: {text[:40]!r} is not a valid {f.kind}") from None
    return args


@dataclass(frozen=True)
class Change:
    key: str
    old: str
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new


def _shown(value: Any, present: bool) -> str:
    return json.dumps(value, ensure_ascii=False) if present else "—"


def diff_args(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Each argument before and after an edit, in the old order, new keys last."""
    keys = [*old, *[k for k in new if k not in old]]
    return [Change(k, _shown(old.get(k), k in old), _shown(new.get(k), k in new)) for k in keys]
