"""The pre-deployment checklist: seven questions a risk owner asks, answered from the registered
tools and the policy. A question with no answer (a gap) makes the checklist fail.

Gaps: a tool without a policy entry; an execute tool with neither a compensation nor an explicit
``irreversible``; a gated action whose role no approver holds; an escalation nobody receives.
"""

from __future__ import annotations

from typing import Any

from agent_kit.modes import Mode
from agent_kit.policy import Policy
from agent_kit.registry import ToolRegistry

__all__ = ["build_checklist", "to_markdown"]

QUESTIONS = [
    ("systems", "What systems can the agent access?"),
    ("reads", "What records can it read, and which fields are hidden?"),
    ("changes", "What records can it change?"),
    ("executes", "What actions can it execute, within which limits?"),
    ("approvals", "Which actions require human approval or customer verification, and by whom?"),
    ("failure", "What happens when the agent is uncertain, blocked or wrong?"),
    ("reversal", "Can the business audit and reverse each action?"),
]


def _rule_text(rule: Any) -> str:
    when = " and ".join(f"{k} {v}" for k, v in rule.when.items()) or "always"
    effects = []
    if rule.deny:
        effects.append(f"deny ({rule.deny})")
    if rule.mode:
        effects.append(rule.mode.value)
    if rule.approval:
        effects.append(f"approval by {rule.approval.count}× {rule.approval.role}")
    if rule.verification:
        effects.append(f"customer {rule.verification}")
    return f"{rule.id}: when {when} -> {', '.join(effects)}"


def build_checklist(registry: ToolRegistry, policy: Policy) -> dict[str, Any]:
    """Answers and gaps, as plain JSON: ``{"ok", "policy_version", "questions": [...], "gaps": [...]}``."""
    gaps: list[str] = []
    answers: dict[str, list[str]] = {k: [] for k, _ in QUESTIONS}
    entries = policy.tools
    for name, spec in registry.items():
        entry = entries.get(name)
        if entry is None:
            gaps.append(f"tool {name} has no policy entry (it is denied at run time; say what it may do)")
            continue
        mode = entry.mode.stricter(spec.mode)
        answers["systems"].append(f"{name}: {spec.system}")
        if spec.reads or mode is Mode.READ_ONLY:
            hidden = "all fields visible" if entry.visible_fields is None else f"visible only: {', '.join(entry.visible_fields)}"
            answers["reads"].append(f"{name} reads {', '.join(spec.reads) or 'its result'} ({hidden})")
        if spec.changes:
            answers["changes"].append(f"{name} changes {', '.join(spec.changes)} (mode {mode.value})")
        rules = [*policy.document.rules, *entry.rules]
        if mode in (Mode.EXECUTE_LIMITED, Mode.EXECUTE_GATED):
            limits = "; ".join(_rule_text(r) for r in rules) or "no limits"
            answers["executes"].append(f"{name} ({mode.value}): {limits}")
            if spec.compensation is None and not spec.irreversible:
                gaps.append(f"{name} executes but declares neither a compensation nor irreversible=True")
        for r in rules:
            if r.approval:
                holders = policy.holders_of(r.approval.role)
                if len(holders) < r.approval.count:
                    gaps.append(f"{name} rule {r.id} needs {r.approval.count}× role {r.approval.role}, "
                                f"but only {len(holders)} approver(s) hold it: {', '.join(holders) or 'nobody'}")
                answers["approvals"].append(
                    f"{name} [{r.id}]: approval by {r.approval.count}× {r.approval.role} ({', '.join(holders) or 'NOBODY'})")
            if r.verification:
                answers["approvals"].append(f"{name} [{r.id}]: customer {r.verification} verification")
        if spec.compensation is not None:
            need = policy.rollback_requirement(name)
            who = f"role {need.role}" if need else "NOBODY (no rollback entry)"
            answers["reversal"].append(f"{name}: reversed by {spec.compensation.tool} ({spec.compensation.description}); "
                                       f"who may roll back: {who}")
            if need is None:
                gaps.append(f"{name} has a compensation but the policy names nobody who may roll it back")
            elif not policy.holders_of(need.role):
                gaps.append(f"{name} rollback needs role {need.role}, which no approver holds")
        elif spec.irreversible and spec.changes:
            answers["reversal"].append(f"{name}: IRREVERSIBLE (declared); audited only")
    for name in entries:
        if name not in registry:
            answers["systems"].append(f"(policy entry {name} names no registered tool)")
    receivers = policy.document.escalation.receivers
    reachable = [r for r in receivers if r in policy.document.approvers or policy.holders_of(r)]
    escalates = any(e.mode is Mode.ESCALATE for e in entries.values()) or any(
        r.mode is Mode.ESCALATE for e in entries.values() for r in e.rules) or any(
        r.mode is Mode.ESCALATE for r in policy.document.rules)
    if not reachable:
        gaps.append("escalations have nobody to receive them: set escalation.receivers to a role an approver holds")
    answers["failure"] += [
        "unknown tools, invalid arguments and denied calls never run; the model is told why (deny by default)",
        f"after {policy.max_strikes} denials, rejections or tool errors in a turn the case escalates to a person",
        f"escalations go to: {', '.join(reachable) or 'NOBODY'}" + ("" if escalates else " (no rule escalates)"),
        "an effect whose outcome is unknown after a crash is reconciled by its idempotency key or escalated, never re-run",
    ]
    answers["reversal"].insert(0, "every read, decision and effect is in the hash-chained audit trail (agent-kit audit --verify)")
    questions = [{"id": k, "question": q, "answers": answers[k], "answered": bool(answers[k])} for k, q in QUESTIONS]
    for q in questions:
        if not q["answered"] and q["id"] not in ("changes",):
            gaps.append(f"no answer to: {q['question']}")
    return {"ok": not gaps, "policy_version": policy.version, "questions": questions, "gaps": gaps}


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Pre-deployment checklist (policy {report['policy_version']})", ""]
    for q in report["questions"]:
        lines.append(f"## {q['question']}")
        lines += [f"- {a}" for a in q["answers"]] or ["- (no answer)"]
        lines.append("")
    lines.append("## Gaps")
    lines += [f"- ✗ {g}" for g in report["gaps"]] or ["- none: every question has an answer ✓"]
    return "\n".join(lines) + "\n"
