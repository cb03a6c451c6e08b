"""Policy: which mode each tool call gets, decided outside the model.

A policy is a YAML file validated with pydantic. Each tool entry gives a base mode; rules over the
call's arguments, the run's trusted context and facts read from the system of record can only make
a call stricter. Evaluation (:meth:`Policy.evaluate`) is a pure function: no I/O, no interrupts.
A tool without an entry is denied (deny by default).

A policy file::

    version: 1
    approvers: {lee: [support_lead], morgan: [supervisor]}
    roles: {supervisor: [support_lead]}          # a supervisor may act as a support_lead
    defaults: {approval_expiry: 24h, max_strikes: 3}
    escalation: {receivers: [supervisor]}
    rules:                                       # apply to every tool
      - {id: frustrated, when: {context.sentiment: frustrated}, mode: escalate}
    tools:
      issue_refund:
        mode: execute_limited
        rules:
          - {id: over_50, when: {args.amount: {gt: 50}}, approval: {role: support_lead}}
          - {id: over_500, when: {args.amount: {gt: 500}}, mode: escalate}
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent_kit._canonical import canonical_json, sha256_hex
from agent_kit.errors import PolicyError
from agent_kit.modes import Mode

__all__ = [
    "ApprovalRequirement",
    "Decision",
    "Policy",
    "load_policy",
]

Outcome = Literal["allow", "verify", "approve", "recommend", "draft", "escalate", "deny"]
"""What the graph does with a call: the gate it goes to next, or none."""

_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists")
_ROOTS = ("args", "context", "facts")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MISSING = object()


def _parse_duration(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30m, 24h or 7d, got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"a duration must be positive, got {value}")
        return value
    m = _DURATION.match(str(value))
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"expected a duration like 30m, 24h or 7d, got {value!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalSpec(_Strict):
    role: str
    """The role an approver must hold (directly or through `roles`)."""
    count: int = Field(default=1, ge=1, le=10)
    """How many distinct approvers holding the role must approve."""


class Condition(_Strict):
    """One test of a value at a path like ``args.amount`` or ``context.customer_verified``."""

    path: str
    op: str
    value: Any = None

    def compile(self) -> Any:
        """A fast predicate over the request, equivalent to :meth:`holds`."""
        root, *parts = self.path.split(".")
        op, expected = self.op, self.value
        ref = tuple(str(expected["ref"]).split(".")) if isinstance(expected, dict) and set(expected) == {"ref"} else None
        cmp = _CMP.get(op)

        def get(request: Mapping[str, Any], root: str, parts: Any) -> Any:
            try:
                node = request[root]
                for part in parts:
                    node = node[part]
            except (KeyError, TypeError, IndexError):
                return _MISSING
            return node

        if ref is None and op in ("eq", "gt", "gte", "lt", "lte") and len(parts) == 1:
            # The common case, kept to one dictionary walk and one comparison.
            key = parts[0]

            def pred(request: Mapping[str, Any]) -> bool:
                node = request[root]
                if key not in node:
                    return False
                actual = node[key]
                if actual != actual:  # NaN compares false with every limit: the rule applies
                    return True
                try:
                    return bool(cmp(actual, expected))  # type: ignore[misc]
                except TypeError:
                    return True

            return pred

        def pred(request: Mapping[str, Any]) -> bool:
            actual = get(request, root, parts)
            want = expected
            if ref is not None:
                want = get(request, ref[0], ref[1:])
                if want is _MISSING:
                    return True
            if op == "exists":
                return (actual is not _MISSING) == bool(want)
            if op == "ne":
                return actual is _MISSING or actual != want
            if actual is _MISSING:
                return False
            if actual != actual:  # NaN: fail closed
                return True
            try:
                return bool(cmp(actual, want))  # type: ignore[misc]
            except TypeError:
                return True

        return pred

    def holds(self, request: Mapping[str, Any]) -> bool:
        actual = _lookup(request, self.path)
        expected = self.value
        if isinstance(expected, dict) and set(expected) == {"ref"}:
            expected = _lookup(request, str(expected["ref"]))
            if expected is _MISSING:
                # A reference to an unknown value cannot be compared: the test holds, so the
                # stricter rule applies (fail closed).
                return True
        if self.op == "exists":
            return (actual is not _MISSING) == bool(expected)
        if self.op == "ne":
            return actual is _MISSING or actual != expected
        if actual is _MISSING:
            return False
        if actual != actual:  # NaN: fail closed
            return True
        try:
            if self.op == "eq":
                return bool(actual == expected)
            if self.op == "gt":
                return bool(actual > expected)
            if self.op == "gte":
                return bool(actual >= expected)
            if self.op == "lt":
                return bool(actual < expected)
            if self.op == "lte":
                return bool(actual <= expected)
            if self.op == "in":
                return actual in expected
            if self.op == "not_in":
                return actual not in expected
        except TypeError:
            # Values that cannot be compared (a string amount) make the rule fire: fail closed.
            return True
        raise AssertionError(self.op)


_CMP: dict[str, Any] = {
    "eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
}


def _lookup(request: Mapping[str, Any], path: str) -> Any:
    node: Any = request
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


class Rule(_Strict):
    id: str
    when: dict[str, Any] = Field(default_factory=dict)
    """Path -> value (equality) or {op: value}; every test must hold. Empty: always."""
    mode: Mode | None = None
    approval: ApprovalSpec | None = None
    verification: Literal["identity", "confirm"] | None = None
    deny: str | None = None
    """Deny the call; the text is the reason the model is given."""
    reason: str | None = None

    conditions: tuple[Condition, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _compile_when(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        when = data.get("when") or {}
        if not isinstance(when, dict):
            raise ValueError(f"`when` must be a mapping of path to test, got {when!r}")
        conds: list[Condition] = []
        for path, test in when.items():
            root = str(path).split(".", 1)[0]
            if root not in _ROOTS or "." not in str(path):
                raise ValueError(f"condition path {path!r} must start with one of {', '.join(r + '.' for r in _ROOTS)}")
            if isinstance(test, dict) and not (set(test) == {"ref"}):
                for op, value in test.items():
                    if op not in _OPS:
                        raise ValueError(f"unknown operator {op!r} in {path!r}; use one of {', '.join(_OPS)}")
                    if op in ("in", "not_in") and not isinstance(value, list):
                        raise ValueError(f"operator {op!r} in {path!r} needs a list, got {value!r}")
                    conds.append(Condition(path=str(path), op=op, value=value))
            else:
                conds.append(Condition(path=str(path), op="eq", value=test))
        data["conditions"] = tuple(conds)
        return data

    @model_validator(mode="after")
    def _has_effect(self) -> Rule:
        if self.mode is None and self.approval is None and self.verification is None and self.deny is None:
            raise ValueError(f"rule {self.id!r} has no effect: give it mode, approval, verification or deny")
        return self

    def fires(self, request: Mapping[str, Any]) -> bool:
        return all(c.holds(request) for c in self.conditions)


class ToolPolicy(_Strict):
    mode: Mode
    rules: tuple[Rule, ...] = ()
    visible_fields: tuple[str, ...] | None = None
    """Dotted paths of the result the model may see; everything else is hidden. None: all."""
    approval_expiry: int | None = None
    rollback: ApprovalSpec | None = None
    """Who may roll back an executed call of this tool (a permissioned action)."""
    description: str | None = None

    @field_validator("approval_expiry", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else _parse_duration(v)


class Defaults(_Strict):
    approval_expiry: int = 24 * 3600
    max_strikes: int = Field(default=3, ge=1)
    """Denials, rejections and tool errors in a run before it escalates instead of looping."""

    @field_validator("approval_expiry", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return _parse_duration(v)


class Escalation(_Strict):
    receivers: tuple[str, ...] = ()
    """Roles (or approver names) that receive escalated cases."""


class PolicyDocument(_Strict):
    version: Literal[1] = 1
    name: str = "policy"
    approvers: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    escalation: Escalation = Field(default_factory=Escalation)
    rules: tuple[Rule, ...] = ()
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rule_ids_unique(self) -> PolicyDocument:
        seen: set[str] = set()
        for where, rules in [("rules", self.rules), *((f"tools.{t}.rules", p.rules) for t, p in self.tools.items())]:
            for r in rules:
                if r.id in seen:
                    raise ValueError(f"rule id {r.id!r} is used twice (again in {where}); rule ids must be unique")
                seen.add(r.id)
        return self


@dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    role: str
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "count": self.count}


class Decision(NamedTuple):
    """What policy decided for one call: the mode, the gate, and the rule that fired.

    Immutable; a named tuple because it is made on every call (about 4x cheaper to build than a
    frozen dataclass).
    """

    tool: str
    mode: Mode | None
    """The effective mode; None when the call is denied outright."""
    outcome: Outcome
    rule: str | None
    """The rule that made the decision (the strictest that fired), or the base entry."""
    reason: str
    policy_version: str
    fired: tuple[str, ...] = ()
    approvals: tuple[ApprovalRequirement, ...] = ()
    verification: tuple[str, ...] = ()
    approval_expiry: int = 24 * 3600
    visible_fields: tuple[str, ...] | None = None

    @property
    def required_role(self) -> str | None:
        return self.approvals[0].role if self.approvals else None

    @property
    def approvals_needed(self) -> int:
        return max((a.count for a in self.approvals), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "mode": self.mode.value if self.mode else None,
            "outcome": self.outcome,
            "rule": self.rule,
            "reason": self.reason,
            "policy_version": self.policy_version,
            "fired": list(self.fired),
            "approvals": [a.to_json() for a in self.approvals],
            "verification": list(self.verification),
            "approval_expiry": self.approval_expiry,
        }


@dataclass(frozen=True)
class Policy:
    """A validated policy. Build it with :func:`load_policy` or :meth:`Policy.from_dict`."""

    document: PolicyDocument
    version: str
    """The content hash of the validated policy; it goes with every decision."""
    source: str | None = None
    _role_closure: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _compiled: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _base: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> Policy:
        where = f" in {source}" if source else ""
        if not isinstance(data, dict):
            raise PolicyError(f"policy{where} must be a mapping at the top level, got {type(data).__name__}")
        try:
            doc = PolicyDocument.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
            raise PolicyError(f"invalid policy{where}: {key}: {msg}{more}") from None
        version = sha256_hex(canonical_json(doc.model_dump(mode="json")))[:16]
        policy = cls(document=doc, version=version, source=source)
        policy._role_closure.update(_close_roles(doc.roles))
        return policy

    # -- approvers and roles ---------------------------------------------------------------
    def roles_of(self, approver: str) -> frozenset[str]:
        """Every role an approver may act as (their roles and what those roles include)."""
        out: set[str] = set()
        for role in self.document.approvers.get(approver, ()):
            out |= self._role_closure.get(role, frozenset({role}))
        return frozenset(out)

    def can_act_as(self, approver: str, role: str) -> bool:
        return role in self.roles_of(approver)

    def holders_of(self, role: str) -> list[str]:
        return sorted(a for a in self.document.approvers if self.can_act_as(a, role))

    @property
    def tools(self) -> dict[str, ToolPolicy]:
        return self.document.tools

    @property
    def max_strikes(self) -> int:
        return self.document.defaults.max_strikes

    # -- evaluation ------------------------------------------------------------------------
    def _compiled_rules(self, tool: str, entry: ToolPolicy) -> tuple[tuple[Any, ...], ...]:
        """Per tool: each rule as (id, predicates, deny, mode, rank, role, count, verification, reason)."""
        cached = self._compiled.get(tool)
        if cached is None:
            out = []
            for r in (*self.document.rules, *entry.rules):
                mode = r.mode
                if r.approval is not None or r.verification is not None:
                    mode = (mode or Mode.EXECUTE_GATED).stricter(Mode.EXECUTE_GATED)
                out.append((r.id, tuple(c.compile() for c in r.conditions), r.deny, mode,
                            mode.rank if mode else -1, r.approval.role if r.approval else None,
                            r.approval.count if r.approval else 0, r.verification,
                            r.reason or _default_reason(r, tool)))
            cached = self._compiled[tool] = tuple(out)
        return cached

    def _base_for(self, tool: str, ceiling: Mode | None) -> tuple[Any, ...]:
        """What does not depend on the call: the entry, base mode, its reason, the compiled rules."""
        entry = self.document.tools.get(tool)
        if entry is None:
            base: tuple[Any, ...] = (None,)
        else:
            mode = entry.mode if ceiling is None else entry.mode.stricter(ceiling)
            decided_by = f"tools.{tool}.mode" if ceiling is None or mode == entry.mode else f"registered:{ceiling.value}"
            base = (entry, mode, mode.rank, decided_by, entry.description or f"{tool} is {mode.value}",
                    entry.approval_expiry or self.document.defaults.approval_expiry, self._compiled_rules(tool, entry))
        self._base[(tool, ceiling)] = base
        return base

    def evaluate(
        self,
        tool: str,
        args: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
        *,
        ceiling: Mode | None = None,
    ) -> Decision:
        """Decide one call. Pure: the same inputs give the same decision.

        Args:
            tool: the tool's name.
            args: the validated arguments.
            context: trusted run context (never model or customer text).
            facts: values read from the system of record for this call.
            ceiling: the mode the tool was registered with; the result is never looser.
        """
        base = self._base.get((tool, ceiling))
        if base is None:
            base = self._base_for(tool, ceiling)
        if base[0] is None:
            return Decision(
                tool=tool, mode=None, outcome="deny", rule=None, policy_version=self.version,
                reason=f"tool {tool!r} has no policy entry; it is denied by default",
            )
        entry, mode, rank, decided_by, reason, expiry, rules = base
        request = {"args": args, "context": context or {}, "facts": facts or {}}
        decided_by_rule = False
        fired: list[str] = []
        approvals: dict[str, int] = {}
        verification: list[str] = []
        deny: tuple[str, str] | None = None
        for rid, preds, rdeny, rmode, rrank, role, count, verify, rreason in rules:
            ok = True
            for p in preds:
                if not p(request):
                    ok = False
                    break
            if not ok:
                continue
            fired.append(rid)
            if rdeny is not None:
                deny = deny or (rid, rdeny)
                continue
            if role is not None and approvals.get(role, 0) < count:
                approvals[role] = count
            if verify is not None and verify not in verification:
                verification.append(verify)
            if rmode is None:
                continue
            if rrank > rank or (rrank == rank and not decided_by_rule):
                mode, rank, decided_by, decided_by_rule, reason = rmode, rrank, rid, True, rreason
        version, fired_t, visible = self.version, tuple(fired), entry.visible_fields
        if deny is not None:
            return Decision(tool, None, "deny", deny[0], deny[1], version, fired_t, (), (), expiry, visible)
        if not approvals:
            reqs: tuple[ApprovalRequirement, ...] = ()
        elif len(approvals) == 1:
            reqs = tuple(ApprovalRequirement(r, n) for r, n in approvals.items())
        else:
            reqs = tuple(ApprovalRequirement(r, n) for r, n in sorted(
                approvals.items(), key=lambda kv: (-len(self._role_closure.get(kv[0], ())), kv[0])))
        if mode is Mode.EXECUTE_GATED and not reqs and not verification:
            # A gated call with nothing named to gate it: the policy did not say who approves.
            return Decision(tool, mode, "deny", decided_by,
                            f"{tool} is execute_gated but no rule names an approver role or a verification; denied",
                            version, fired_t, (), (), expiry, visible)
        outcome: Outcome
        if mode is Mode.EXECUTE_GATED:
            outcome = "verify" if verification else "approve"
        else:
            outcome = _OUTCOME[mode]
        return Decision(tool, mode, outcome, decided_by, reason, version, fired_t, reqs, tuple(verification),
                        expiry, visible)

    def rollback_requirement(self, tool: str) -> ApprovalRequirement | None:
        entry = self.document.tools.get(tool)
        if entry is None or entry.rollback is None:
            return None
        return ApprovalRequirement(entry.rollback.role, entry.rollback.count)


_OUTCOME: dict[Mode, Outcome] = {
    Mode.READ_ONLY: "allow", Mode.EXECUTE_LIMITED: "allow", Mode.DRAFT_ONLY: "draft",
    Mode.RECOMMEND_ONLY: "recommend", Mode.ESCALATE: "escalate",
}


def _default_reason(rule: Rule, tool: str) -> str:
    if rule.approval is not None:
        n = f"{rule.approval.count} approvals" if rule.approval.count > 1 else "approval"
        return f"rule {rule.id}: {tool} needs {n} by role {rule.approval.role}"
    if rule.verification == "confirm":
        return f"rule {rule.id}: the customer must confirm this exact action"
    if rule.verification == "identity":
        return f"rule {rule.id}: the customer must verify their identity first"
    if rule.mode is not None:
        return f"rule {rule.id}: {tool} becomes {rule.mode.value}"
    return f"rule {rule.id}"


def _close_roles(roles: Mapping[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """Each role -> itself plus every role it includes, transitively."""
    out: dict[str, frozenset[str]] = {}
    for role in roles:
        seen, todo = {role}, list(roles.get(role, ()))
        while todo:
            r = todo.pop()
            if r not in seen:
                seen.add(r)
                todo.extend(roles.get(r, ()))
        out[role] = frozenset(seen)
    return out


def load_policy(path: str | Path) -> Policy:
    """Read and validate a YAML policy file.

    Raises:
        PolicyError: the file is missing, is not YAML, or fails validation (names the key).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {str(p)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {str(p)!r} is not valid YAML: {exc}") from None
    if isinstance(data, dict) and "approvers_file" in data:
        data = dict(data)
        extra = _read_approvers(p, data.pop("approvers_file"))
        data["approvers"] = {**extra, **(data.get("approvers") or {})}
    return Policy.from_dict(data, source=str(p))


def _read_approvers(policy_path: Path, name: Any) -> dict[str, Any]:
    """Approvers kept in their own file (named by the policy, relative to it): name -> roles."""
    path = policy_path.parent / str(name)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PolicyError(f"invalid policy in {policy_path}: approvers_file: cannot read {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid policy in {policy_path}: approvers_file: {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"invalid policy in {policy_path}: approvers_file: {str(path)!r} must map names to lists of roles")
    return data
