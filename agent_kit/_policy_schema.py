"""The policy file's schema: pydantic models that validate it and compile its conditions.

Private to :mod:`agent_kit.policy`, which holds the public :class:`~agent_kit.policy.Policy`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent_kit.modes import Mode

_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists")
_ROOTS = ("args", "context", "facts")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MISSING = object()
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
