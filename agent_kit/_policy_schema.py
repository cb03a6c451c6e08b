"""The policy file's schema: pydantic models that validate it and compile its conditions.

Private to :mod:`agent_kit.policy`, which holds the public :class:`~agent_kit.policy.Policy`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from agent_kit.modes import Mode

_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists")
_ROOTS = ("args", "context", "facts", "aggregates")
_ORDERED = ("gt", "gte", "lt", "lte")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MISSING = object()
_DURATION_SCHEMA = WithJsonSchema({
    "anyOf": [{"type": "integer", "exclusiveMinimum": 0, "description": "seconds"},
              {"type": "string", "pattern": r"^\s*[1-9]\d*\s*[smhd]\s*$", "examples": ["30m", "24h", "7d"]}]})
Duration = Annotated[int, _DURATION_SCHEMA]
_WHEN_SCHEMA = WithJsonSchema({
    "type": "object",
    "description": "path -> a value (equality) or {operator: value}; every test must hold. Empty: always.",
    "propertyNames": {"pattern": r"^(args|context|facts|aggregates)\.[^.]+(\.[^.]+)*$"},
    "additionalProperties": {"anyOf": [
        {"type": ["string", "number", "boolean", "null"]},
        {"type": "object", "additionalProperties": False, "minProperties": 1,
         "properties": {**{op: {} for op in ("eq", "ne", "gt", "gte", "lt", "lte")},
                        "in": {"type": "array"}, "not_in": {"type": "array"}, "exists": {"type": "boolean"},
                        "ref": {"type": "string", "pattern": r"^(args|context|facts|aggregates)\."}}},
    ]},
})
_CMP: dict[str, Any] = {
    "eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
}


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
        is_ref = isinstance(expected, dict) and set(expected) == {"ref"}
        ref = tuple(str(expected["ref"]).split(".")) if is_ref else None
        cmp = _CMP.get(op)
        if root == "aggregates":
            # A total the caller did not supply is unknown: the rule applies (fail closed).
            inner = self._compile(root, parts, op, expected, ref, cmp)

            def agg_pred(request: Mapping[str, Any]) -> bool:
                node = request.get("aggregates")
                if not isinstance(node, Mapping) or parts[0] not in node:
                    return True
                return bool(inner(request))

            return agg_pred
        return self._compile(root, parts, op, expected, ref, cmp)

    @staticmethod
    def _compile(root: str, parts: list[str], op: str, expected: Any, ref: Any, cmp: Any) -> Any:
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

            def pred_one_key(request: Mapping[str, Any]) -> bool:
                node = request[root]
                if key not in node:
                    return False
                actual = node[key]
                if actual != actual:  # NaN compares false with every limit: the rule applies
                    return True
                try:
                    return bool(cmp(actual, expected))
                except TypeError:
                    return True

            return pred_one_key

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
                return bool(cmp(actual, want))
            except TypeError:
                return True

        return pred


class Rule(_Strict):
    id: str
    when: Annotated[dict[str, Any], _WHEN_SCHEMA] = Field(default_factory=dict)
    """Path -> value (equality) or {op: value}; every test must hold. Empty: always."""
    mode: Mode | None = None
    approval: ApprovalSpec | None = None
    verification: Literal["identity", "confirm"] | None = None
    deny: str | None = None
    """Deny the call; the text is the reason the model is given."""
    reason: str | None = None
    """What the model and the approver are told when this rule decides the call."""
    tags: tuple[str, ...] = ()
    """Global rules only: apply to the tools carrying any of these tags (with ``tools``, to either)."""
    tools: tuple[str, ...] = ()
    """Global rules only: apply to these tools. Neither ``tags`` nor ``tools``: every tool."""

    conditions: SkipJsonSchema[tuple[Condition, ...]] = Field(default=(), exclude=True)

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
                    _check_operand(str(path), op, value)
                    conds.append(Condition(path=str(path), op=op, value=value))
            else:
                _check_operand(str(path), "eq", test)
                conds.append(Condition(path=str(path), op="eq", value=test))
        data["conditions"] = tuple(conds)
        return data

    @model_validator(mode="after")
    def _has_effect(self) -> Rule:
        if self.mode is None and self.approval is None and self.verification is None and self.deny is None:
            raise ValueError(f"rule {self.id!r} has no effect: give it mode, approval, verification or deny")
        if self.mode is Mode.EXECUTE_GATED and self.approval is None and self.verification is None:
            raise ValueError(f"rule {self.id!r} makes calls execute_gated but names no approval or verification, "
                             "so nobody could ever approve them; give it approval: {role: ...} or verification")
        return self


def _check_operand(path: str, op: str, value: Any) -> None:
    """Refuse an operand no value can ever compare with (the rule would never fire)."""
    if isinstance(value, dict) and set(value) == {"ref"}:
        ref = str(value["ref"])
        if ref.split(".", 1)[0] not in _ROOTS or "." not in ref:
            raise ValueError(f"{path}: ref {ref!r} must start with one of {', '.join(r + '.' for r in _ROOTS)}")
        return
    if op in _ORDERED and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise ValueError(f"{path}: operator {op!r} compares with a number or a string, got {value!r}")
    if op == "exists" and not isinstance(value, bool):
        raise ValueError(f"{path}: operator 'exists' takes true or false, got {value!r}")
    if isinstance(value, float) and value != value:
        raise ValueError(f"{path}: {op} NaN never matches anything; give a number")
    if isinstance(value, dict):
        raise ValueError(f"{path}: {op} compares with a plain value, got the mapping {value!r} "
                         "(to compare with another path write {ref: context.x})")


class Aggregate(_Strict):
    """A running total over the execution ledger: the sum of an argument, or a count of calls.

    It counts this tool's (and ``tools``') executed calls, calls approved and on their way to
    execute, the other calls of the same model message, and the call being decided.
    """

    sum: str | None = None
    """``args.<name>``: the numeric argument to add up."""
    count: bool = False
    """True: count calls instead of adding an argument."""
    per: str | None = None
    """Group by ``args.<name>``, ``context.<key>`` or ``thread``; none: every call of the tool."""
    within: Duration | None = None
    """Only calls in this window (``30m``, ``24h``, ``7d``); none: all time."""
    tools: tuple[str, ...] = ()
    """Other tools whose calls count too (they must take the same argument)."""

    @field_validator("within", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Any:
        return None if v is None else _parse_duration(v)

    @field_validator("sum")
    @classmethod
    def _sum_path(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("args.") or v.count(".") != 1):
            raise ValueError(f"sum must name one argument as args.<name>, got {v!r}")
        return v

    @field_validator("per")
    @classmethod
    def _per_path(cls, v: str | None) -> str | None:
        if v is not None and v != "thread" and not (v.count(".") == 1 and v.split(".")[0] in ("args", "context")):
            raise ValueError(f"per must be args.<name>, context.<key> or thread, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_measure(self) -> Aggregate:
        if (self.sum is None) == (not self.count):
            raise ValueError("an aggregate takes exactly one of sum: args.<name> or count: true")
        return self


class ToolPolicy(_Strict):
    mode: Mode
    """The tool's base mode; rules only make a call stricter."""
    approval: ApprovalSpec | None = None
    """For ``execute_gated``: who approves every call of the tool."""
    verification: Literal["identity", "confirm"] | None = None
    """For ``execute_gated``: what the customer verifies for every call of the tool."""
    tags: tuple[str, ...] = ()
    """Groups the tool belongs to (``money``, ``writes``); global rules can target them."""
    aggregates: dict[str, Aggregate] = Field(default_factory=dict)
    """Named running totals the tool's rules test as ``aggregates.<name>``."""
    rules: tuple[Rule, ...] = ()
    visible_fields: tuple[str, ...] | None = None
    """Dotted paths of the result the model may see; everything else is hidden. None: all."""
    approval_expiry: Duration | None = None
    """How long an approval request of this tool stays valid (default: defaults.approval_expiry)."""
    rollback: ApprovalSpec | None = None
    """Who may roll back an executed call of this tool (a permissioned action)."""
    description: str | None = None

    @field_validator("approval_expiry", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else _parse_duration(v)

    @model_validator(mode="after")
    def _gated_has_a_gate(self) -> ToolPolicy:
        gated = self.mode is Mode.EXECUTE_GATED
        if not gated and (self.approval is not None or self.verification is not None):
            raise ValueError(f"approval and verification on a tool entry need mode execute_gated (it is "
                             f"{self.mode.value}); put them in a rule to gate only some calls")
        if gated and self.approval is None and self.verification is None:
            raise ValueError("an execute_gated tool needs approval: {role: ...} or verification: identity|confirm "
                             "on its entry; without one nobody can ever approve its calls")
        for r in self.rules:
            if r.tags or r.tools:
                raise ValueError(f"rule {r.id!r}: tags and tools target global rules; a tool's own rules "
                                 "already apply to that tool only")
        for name in self.aggregates:
            if not name.isidentifier():
                raise ValueError(f"aggregate name {name!r} must be a plain word (letters, digits, _)")
        return self


class Defaults(_Strict):
    approval_expiry: Duration = 24 * 3600
    """How long an approval request stays valid: seconds, or 30m, 24h, 7d."""
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
    """The policy format's version."""
    name: str = "policy"
    approvers: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Approver name -> the roles they hold."""
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Role -> the roles it may also act as (a supervisor may act as a support_lead)."""
    defaults: Defaults = Field(default_factory=Defaults)
    escalation: Escalation = Field(default_factory=Escalation)
    rules: tuple[Rule, ...] = ()
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_gate_can_open(self) -> PolicyDocument:
        closure = close_roles(self.roles)

        def holders(role: str) -> list[str]:
            return sorted(a for a, rs in self.approvers.items() if any(role in closure.get(r, {r}) for r in rs))

        specs = [(f"tools.{t}.approval", p.approval) for t, p in self.tools.items()]
        specs += [(f"rules.{i}.approval", r.approval) for i, r in enumerate(self.rules)]
        specs += [(f"tools.{t}.rules.{i}.approval", r.approval)
                  for t, p in self.tools.items() for i, r in enumerate(p.rules)]
        for where, spec in specs:
            if spec is not None and len(holders(spec.role)) < spec.count:
                have = holders(spec.role)
                raise ValueError(f"{where} needs {spec.count} approver(s) with role {spec.role!r}, but "
                                 f"{len(have)} hold it ({', '.join(have) or 'nobody'}); add approvers or roles")
        tags = {tag for p in self.tools.values() for tag in p.tags}
        for i, r in enumerate(self.rules):
            unknown_tags = sorted(set(r.tags) - tags)
            if unknown_tags:
                raise ValueError(f"rules.{i} ({r.id}): no tool carries tag(s) {', '.join(unknown_tags)}; "
                                 "the rule would never fire")
            unknown_tools = sorted(set(r.tools) - set(self.tools))
            if unknown_tools:
                raise ValueError(f"rules.{i} ({r.id}): no tool entry named {', '.join(unknown_tools)}; "
                                 "the rule would never fire")
        for t, p in self.tools.items():
            for name, agg in p.aggregates.items():
                missing = sorted(set(agg.tools) - set(self.tools))
                if missing:
                    raise ValueError(f"tools.{t}.aggregates.{name}.tools: no tool entry named {', '.join(missing)}")
        return self

    def rules_for(self, tool: str) -> tuple[Rule, ...]:
        """The global rules that target ``tool`` (every tool, its name, or one of its tags), then its own."""
        entry = self.tools.get(tool)
        if entry is None:
            return ()
        mine = set(entry.tags)
        glob = tuple(r for r in self.rules if (not r.tags and not r.tools) or tool in r.tools or mine & set(r.tags))
        return (*glob, *entry.rules)

    @model_validator(mode="after")
    def _rule_ids_unique(self) -> PolicyDocument:
        seen: set[str] = set()
        for where, rules in [("rules", self.rules), *((f"tools.{t}.rules", p.rules) for t, p in self.tools.items())]:
            for r in rules:
                if r.id in seen:
                    raise ValueError(f"rule id {r.id!r} is used twice (again in {where}); rule ids must be unique")
                seen.add(r.id)
        return self


def close_roles(roles: Mapping[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
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


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file, for editors (generated from these models).

    ``approvers_file`` is read by the loader before validation, so it is added here by hand.
    """
    schema = PolicyDocument.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "agent_kit policy"
    schema["properties"]["approvers_file"] = {
        "type": "string", "description": "A YAML file (relative to the policy) mapping approver names to roles."}
    return schema

