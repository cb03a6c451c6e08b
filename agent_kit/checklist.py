"""The pre-deployment checklist: seven questions a risk owner asks, answered from the registered
tools and the policy. A question with no answer (a gap) makes the checklist fail.

Gaps: a tool without a policy entry; an execute tool with neither a compensation nor an explicit
``irreversible``; a gated action whose role no approver holds; an escalation nobody receives;
anything that could make a rule never fire (an unknown path or an operand of the wrong type, a
rule that targets no registered tool, a mode that is not stricter, contradictory bounds); a
served configuration (``langgraph.json``) without an authorization handler that denies by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_kit._policy_check import policy_problems
from agent_kit.modes import Mode
from agent_kit.policy import Policy
from agent_kit.registry import ToolRegistry

__all__ = ["build_checklist", "served_problems", "to_markdown"]

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


def _recorded(policy: Policy, registry: ToolRegistry, tool: str) -> bool:
    """Whether a call of ``tool`` can be recorded in the ledger, where running totals are read:
    only a change decided execute_limited or execute_gated is (rules only make a call stricter)."""
    spec, entry = registry.get(tool), policy.document.tools.get(tool)
    if spec is None or entry is None:
        return False
    base = entry.mode.stricter(spec.mode)
    changes = (Mode.EXECUTE_LIMITED, Mode.EXECUTE_GATED)
    if base in changes:
        return True
    return base is Mode.READ_ONLY and any(r.mode in changes for r in policy.document.rules_for(tool))


def _inert_rules(policy: Policy, registry: ToolRegistry) -> list[str]:
    """Rules that load but could never change a decision: each is a gap."""
    out: list[str] = []
    doc = policy.document
    effective: set[str] = set()
    for name, entry in doc.tools.items():
        spec = registry.get(name)
        if spec is None:
            if entry.rules or entry.aggregates:
                out.append(f"policy entry {name} names no registered tool; its rules never fire")
            continue
        base = entry.mode.stricter(spec.mode)
        for agg_name, agg in entry.aggregates.items():
            counted = tuple(dict.fromkeys((name, *agg.tools)))
            if not any(_recorded(policy, registry, t) for t in counted):
                out.append(f"tools.{name}.aggregates.{agg_name}: it counts {', '.join(counted)}, and no call of "
                           f"{'these' if len(counted) > 1 else 'it'} is ever recorded in the ledger (only "
                           "execute_limited and execute_gated calls are; a read is not), so the total never "
                           "grows and a rule on it never fires")
        for rule in doc.rules_for(name):
            if (rule.deny is None and rule.approval is None and rule.verification is None
                    and rule.mode is not None and rule.mode.rank <= base.rank):
                if rule in entry.rules:
                    out.append(f"{name} rule {rule.id}: mode {rule.mode.value} is not stricter than {name}'s "
                               f"{base.value}, so the rule never changes a decision")
            else:
                effective.add(rule.id)
            lows: dict[str, tuple[float, bool]] = {}
            highs: dict[str, tuple[float, bool]] = {}
            for c in rule.conditions:
                if isinstance(c.value, bool) or not isinstance(c.value, (int, float)):
                    continue
                if c.op in ("gt", "gte"):
                    lows[c.path] = (float(c.value), c.op == "gte")
                elif c.op in ("lt", "lte"):
                    highs[c.path] = (float(c.value), c.op == "lte")
            for path, (low, low_incl) in lows.items():
                if path in highs:
                    high, high_incl = highs[path]
                    if low > high or (low == high and not (low_incl and high_incl)):
                        out.append(f"{name} rule {rule.id}: {path} can never be both above {low:g} and "
                                   f"below {high:g}, so the rule never fires")
    for i, rule in enumerate(doc.rules):
        if not any(rule in doc.rules_for(t) for t in doc.tools if t in registry):
            out.append(f"rules.{i} ({rule.id}) targets no registered tool; it never fires")
        elif rule.id not in effective:
            out.append(f"rules.{i} ({rule.id}): its mode is not stricter than any targeted tool's, "
                       "so it never changes a decision")
    return out


def build_checklist(registry: ToolRegistry, policy: Policy,
                    context_keys: Mapping[str, Any] | None = None, *,
                    served: Path | None = None) -> dict[str, Any]:
    """Answers and gaps, as plain JSON: ``{"ok", "policy_version", "questions": [...], "gaps": [...]}``.

    Anything that could make a rule never fire is a gap: a path no call can have, an operand of
    the wrong type, a rule no registered tool meets, a mode that changes nothing, a contradiction.
    With ``served`` (the ``langgraph.json`` serving the graph), so is serving it without an
    authorization handler that denies by default.
    """
    gaps: list[str] = [*policy_problems(policy, registry, context_keys), *_inert_rules(policy, registry)]
    answers: dict[str, list[str]] = {k: [] for k, _ in QUESTIONS}
    if served is not None:
        said, missing = served_problems(served)
        answers["approvals"] += said
        gaps += missing
    entries = policy.tools
    for name, spec in registry.items():
        entry = entries.get(name)
        if entry is None:
            gaps.append(f"tool {name} has no policy entry (it is denied at run time; say what it may do)")
            continue
        mode = entry.mode.stricter(spec.mode)
        answers["systems"].append(f"{name}: {spec.system}")
        if spec.reads or mode is Mode.READ_ONLY:
            hidden = ("all fields visible" if entry.visible_fields is None
                      else f"visible only: {', '.join(entry.visible_fields)}")
            answers["reads"].append(f"{name} reads {', '.join(spec.reads) or 'its result'} ({hidden})")
        if spec.changes:
            answers["changes"].append(f"{name} changes {', '.join(spec.changes)} (mode {mode.value})")
        rules = list(policy.document.rules_for(name))
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
                    f"{name} [{r.id}]: approval by {r.approval.count}× {r.approval.role} "
                    f"({', '.join(holders) or 'NOBODY'})")
            if r.verification:
                answers["approvals"].append(f"{name} [{r.id}]: customer {r.verification} verification")
        if spec.compensation is not None:
            need = policy.rollback_requirement(name)
            who = f"role {need.role}" if need else "NOBODY (no rollback entry)"
            answers["reversal"].append(f"{name}: reversed by {spec.compensation.tool} "
                                       f"({spec.compensation.description}); "
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
    if policy.files:
        answers["approvals"].append(f"authority is read from {', '.join(policy.files)} (version {policy.version}, "
                                    "a hash of their contents, checked before every decision)")
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
        "an effect whose outcome is unknown after a crash is reconciled by its idempotency key or escalated, "
        "never re-run",
    ]
    answers["reversal"].insert(0, "every read, decision and effect is in the hash-chained audit trail "
                                  "(agent-kit audit --verify)")
    questions = [{"id": k, "question": q, "answers": answers[k], "answered": bool(answers[k])} for k, q in QUESTIONS]
    for q in questions:
        if not q["answered"] and q["id"] not in ("changes",):
            gaps.append(f"no answer to: {q['question']}")
    return {"ok": not gaps, "policy_version": policy.version, "questions": questions, "gaps": gaps}


def served_problems(config: Path) -> tuple[list[str], list[str]]:
    """Answers and gaps about how ``config`` (a ``langgraph.json``) serves the graph.

    A served graph's API can write a thread's state, send commands and resume any interrupt, so a
    configuration without an authorization handler is a gap, and so is a handler that allows
    what it does not name (no default ``@auth.on``), or one LangSmith Studio's scheme bypasses.
    """
    import json

    from agent_kit._loader import load_object

    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        return [], [f"{config}: cannot read it as JSON ({exc}); the served configuration is unchecked"]
    auth = data.get("auth") if isinstance(data, dict) else None
    if not auth:
        return [], [f"{config.name} serves the graph with no auth handler: anyone who reaches the server can write "
                    "a thread's state, send commands and decide as any approver; add \"auth\": {\"path\": "
                    "\"./graphs/auth.py:auth\", \"disable_studio_auth\": true} (docs/DEPLOY.md)"]
    path = auth if isinstance(auth, str) else auth.get("path") if isinstance(auth, dict) else None
    if not isinstance(path, str) or not path:
        return [], [f"{config.name}: auth names no handler path; give \"auth\": {{\"path\": \"file.py:auth\"}}"]
    try:
        handler = load_object(path, config.parent)
    except Exception as exc:  # noqa: BLE001  (a broken handler file: whatever it raises is the gap)
        return [], [f"{config.name}: the auth handler {path!r} cannot be loaded: {exc}"]
    gaps: list[str] = []
    if getattr(handler, "_authenticate_handler", None) is None:
        gaps.append(f"{config.name}: the auth handler {path!r} is not a langgraph_sdk Auth with an @auth.authenticate")
    # langgraph_api runs the most specific handler and allows an action that has none: deny by
    # default needs a handler for every resource and action (a bare @auth.on).
    handlers = getattr(handler, "_handlers", {}) or {}
    if not (getattr(handler, "_global_handlers", None) or ("*", "*") in handlers):
        gaps.append(f"{config.name}: the auth handler {path!r} has no default @auth.on handler, so every action it "
                    "does not name (state writes, store, crons) is allowed; add one that refuses")
    if not (isinstance(auth, dict) and auth.get("disable_studio_auth") is True):
        gaps.append(f"{config.name}: auth.disable_studio_auth is not true, so under langgraph dev a request with "
                    "x-auth-scheme: langsmith skips the authenticate handler")
    answers = [f"served through {config.name}: callers are authenticated and authorized by {path} "
               "(deny by default; see docs/DEPLOY.md for what customers, approvers and operators may do)"]
    return answers, gaps


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Pre-deployment checklist (policy {report['policy_version']})", ""]
    for q in report["questions"]:
        lines.append(f"## {q['question']}")
        lines += [f"- {a}" for a in q["answers"]] or ["- (no answer)"]
        lines.append("")
    lines.append("## Gaps")
    lines += [f"- ✗ {g}" for g in report["gaps"]] or ["- none: every question has an answer ✓"]
    return "\n".join(lines) + "\n"
