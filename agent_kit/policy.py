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

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import ValidationError

from agent_kit._canonical import canonical_json, sha256_hex
from agent_kit._policy_schema import PolicyDocument, Rule, ToolPolicy, close_roles
from agent_kit.errors import PolicyError
from agent_kit.modes import Mode
from agent_kit.types import DecisionRecord, RequiredApproval

__all__ = [
    "ApprovalRequirement",
    "Decision",
    "Policy",
    "PolicySource",
    "load_policy",
]

Outcome = Literal["allow", "verify", "approve", "recommend", "draft", "escalate", "deny"]
"""What the graph does with a call: the gate it goes to next, or none."""

@dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    role: str
    count: int = 1

    def to_json(self) -> RequiredApproval:
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

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Decision:
        """The decision :meth:`to_json` wrote (as an action carries it)."""
        return cls(
            tool=d["tool"], mode=Mode(d["mode"]) if d.get("mode") else None, outcome=d["outcome"],
            rule=d.get("rule"), reason=d["reason"], policy_version=d["policy_version"],
            fired=tuple(d.get("fired", ())),
            approvals=tuple(ApprovalRequirement(a["role"], a["count"]) for a in d.get("approvals", [])),
            verification=tuple(d.get("verification", ())), approval_expiry=d.get("approval_expiry", 0),
        )

    def to_json(self) -> DecisionRecord:
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
    files: tuple[str, ...] = ()
    """The files the policy was read from: the policy file and every file it names."""
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
        policy._role_closure.update(close_roles(doc.roles))
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
            out: list[tuple[Any, ...]] = []
            if entry.mode is Mode.EXECUTE_GATED:
                # The entry's own gate: every call of an execute_gated tool passes it.
                out.append((f"tools.{tool}", (), None, Mode.EXECUTE_GATED, Mode.EXECUTE_GATED.rank,
                            entry.approval.role if entry.approval else None,
                            entry.approval.count if entry.approval else 0, entry.verification,
                            entry.description or f"{tool} is execute_gated"))
            for r in self.document.rules_for(tool):
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
            if ceiling is None or mode == entry.mode:
                decided_by = f"tools.{tool}.mode"
            else:
                decided_by = f"registered:{ceiling.value}"
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
        aggregates: Mapping[str, float] | None = None,
    ) -> Decision:
        """Decide one call. Pure: the same inputs give the same decision.

        Args:
            tool: the tool's name.
            args: the validated arguments.
            context: trusted run context (never model or customer text).
            facts: values read from the system of record for this call.
            ceiling: the mode the tool was registered with; the result is never looser.
            aggregates: the running totals the tool's entry declares, by name (from the
                execution ledger); a total a rule tests but that is missing makes the rule apply.
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
        request = {"args": args, "context": context or {}, "facts": facts or {}, "aggregates": aggregates or {}}
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

    def counted_tools(self) -> frozenset[str]:
        """The tools some aggregate counts: their calls are decided again atomically at execute."""
        cached = self._compiled.get(" counted")
        if cached is None:
            cached = self._compiled[" counted"] = frozenset(
                t for name, entry in self.document.tools.items() for agg in entry.aggregates.values()
                for t in (name, *agg.tools))
        return cached

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


def load_policy(path: str | Path) -> Policy:
    """Read and validate a YAML policy file (and the files it names).

    The policy's version is the content hash of the file and of every file it names, so any
    change to any of them, whatever their modification times, makes a new version.

    Raises:
        PolicyError: a file is missing, is not YAML, repeats a key, or fails validation (names
            the key).
    """
    p = Path(path)
    text = _read_bytes(p, None)
    data = _parse_yaml(text, p, None)
    files: list[tuple[str, bytes]] = [(str(p), text)]
    if isinstance(data, dict) and "approvers_file" in data:
        data = dict(data)
        named = p.parent / str(data.pop("approvers_file"))
        raw = _read_bytes(named, p)
        files.append((str(named), raw))
        extra = _parse_yaml(raw, named, p)
        if not isinstance(extra, dict):
            raise PolicyError(f"invalid policy in {p}: approvers_file: {str(named)!r} must map names to lists of roles")
        own = data.get("approvers") or {}
        both = sorted(set(extra) & set(own)) if isinstance(own, dict) else []
        if both:
            raise PolicyError(f"invalid policy in {p}: approvers: {', '.join(both)} listed both here and in "
                              f"{str(named)!r}; keep each approver in one place")
        data["approvers"] = {**extra, **own} if isinstance(own, dict) else own
    policy = Policy.from_dict(data, source=str(p))
    return replace(policy, version=content_version(files), files=tuple(name for name, _ in files))


def content_version(files: list[tuple[str, bytes]]) -> str:
    """The version of a policy read from files: a hash of every file's bytes, in order."""
    digest = hashlib.sha256()
    for _, raw in files:
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()[:16]


class PolicySource:
    """A policy file kept fresh: before every decision its files are read again and hashed.

    A change to the policy or to any file it names is seen at once, whatever the files'
    modification times. A changed policy that fails validation fails closed (the error is
    raised; nothing runs under the old or the broken policy).
    """

    def __init__(self, path: str | Path, check: Callable[[Policy], None] | None = None) -> None:
        self.path = Path(path)
        self._check = check
        self._policy = load_policy(self.path)
        if check is not None:
            check(self._policy)

    def current(self) -> Policy:
        """The policy as the files say now."""
        policy = self._policy
        try:
            files = [(name, Path(name).read_bytes()) for name in policy.files]
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {exc.filename!r}: {exc.strerror}") from None
        if content_version(files) == policy.version:
            return policy
        fresh = load_policy(self.path)
        if self._check is not None:
            self._check(fresh)
        self._policy = fresh
        return fresh


def _read_bytes(path: Path, named_by: Path | None) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        if named_by is None:
            raise PolicyError(f"cannot read policy file {str(path)!r}: {exc.strerror}") from None
        raise PolicyError(f"invalid policy in {named_by}: approvers_file: cannot read {str(path)!r}: "
                          f"{exc.strerror}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base constructor reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1}); a key may appear once "
                    "in a mapping, or the last one would silently win", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(raw: bytes, path: Path, named_by: Path | None) -> Any:
    where = f"policy file {str(path)!r}" if named_by is None else (
        f"invalid policy in {named_by}: approvers_file: {str(path)!r}")
    try:
        return yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{where} is not UTF-8 text: {exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{where} is not valid YAML: {exc}") from None
