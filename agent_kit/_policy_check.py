"""Checking a policy against the tools it governs: nothing in it may be silently inert.

A rule that tests a path no call can have (a misspelt argument, an undeclared fact or context
key, an aggregate the tool does not declare) or compares with an operand of a type the value can
never have would never fire: an $80 refund would run unapproved because ``args.amont`` is never
greater than 50. Every such mistake is found here, when the graph is built and again whenever the
policy changes, and is a load error naming the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agent_kit._policy_schema import Aggregate, Condition, Rule
from agent_kit.errors import PolicyError
from agent_kit.modes import Mode
from agent_kit.policy import Policy
from agent_kit.registry import ToolRegistry, ToolSpec

__all__ = ["LIBRARY_CONTEXT_KEYS", "check_policy", "policy_problems"]

LIBRARY_CONTEXT_KEYS: Mapping[str, Any] = {
    "customer_verified": bool,
    "customer_id": str,
    "customer_name": str,
    "closing_note": str,
}
"""The context keys agent_kit itself writes: the conversation's verified identity (one per
conversation) and a person's closing note. An application declares its own beside them."""

_ANY = None
_NUMBER = frozenset({"number"})


def _py_types(t: Any) -> frozenset[str] | None:
    """JSON types of a declared Python type (None: any)."""
    if t is None or t is Any:
        return _ANY
    if isinstance(t, (tuple, list, set, frozenset)):
        out: set[str] = set()
        for x in t:
            sub = _py_types(x)
            if sub is None:
                return _ANY
            out |= sub
        return frozenset(out)
    names = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null",
             list: "array", tuple: "array", dict: "object"}
    if t in names:
        return frozenset({names[t]})
    args = getattr(t, "__args__", None)  # int | None and the like
    if args:
        return _py_types(tuple(args))
    return _ANY


def _value_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _schema_types(schema: Mapping[str, Any],
                  defs: Mapping[str, Any]) -> tuple[frozenset[str] | None, Mapping[str, Any]]:
    """JSON types of a JSON-schema node, and the node itself with ``$ref`` resolved."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = defs.get(name, {})
    for key in ("anyOf", "oneOf"):
        if key in schema:
            out: set[str] = set()
            for sub in schema[key]:
                t, _ = _schema_types(sub, defs)
                if t is None:
                    return _ANY, schema
                out |= t
            return frozenset(out), schema
    if "enum" in schema:
        return frozenset(_value_type(v) for v in schema["enum"]), schema
    if "const" in schema:
        return frozenset({_value_type(schema["const"])}), schema
    t = schema.get("type")
    if t is None:
        return _ANY, schema
    ts = t if isinstance(t, list) else [t]
    return frozenset("number" if x == "integer" else str(x) for x in ts), schema


def _arg_schema(spec: ToolSpec) -> dict[str, Any]:
    schema = spec.model_schema
    if isinstance(schema, dict):
        return schema
    return schema.model_json_schema()


class _Paths:
    """What a path can hold for one tool: its arguments, facts, context keys and aggregates."""

    def __init__(self, tool: str, spec: ToolSpec, aggregates: Mapping[str, Aggregate],
                 context_keys: Mapping[str, Any]) -> None:
        self.tool, self.spec, self.aggregates, self.context = tool, spec, aggregates, context_keys
        self.schema = _arg_schema(spec)
        self.defs = self.schema.get("$defs", {})

    def types(self, path: str) -> tuple[frozenset[str] | None, str | None]:
        """The JSON types the path can hold, or a problem saying why no call can have it."""
        root, *parts = path.split(".")
        if not parts or any(not p for p in parts):
            return _ANY, f"{path!r} is not a path like args.amount"
        head, rest = parts[0], parts[1:]
        if root == "args":
            props = self.schema.get("properties", {})
            if head not in props:
                known = ", ".join(sorted(props)) or "none"
                return _ANY, f"{self.tool} has no argument {head!r} (its arguments: {known})"
            types, node = _schema_types(props[head], self.defs)
            for part in rest:
                inner = node.get("properties")
                if inner is None:
                    if types is not None and "object" not in types:
                        return _ANY, (f"{self.tool} argument {'.'.join(parts[:1])!r} is not an object; "
                                      f"{path!r} is never set")
                    return _ANY, None
                if part not in inner:
                    return _ANY, f"{self.tool} argument {head!r} has no field {part!r}"
                types, node = _schema_types(inner[part], self.defs)
            return types, None
        if root == "facts":
            declared = self.spec.fact_types
            if head not in declared:
                known = ", ".join(sorted(declared)) or "none (register it with facts= and fact_types=)"
                return _ANY, f"{self.tool} declares no fact {head!r} (its facts: {known})"
            return self._nested(path, _py_types(declared[head]), rest)
        if root == "context":
            if head not in self.context:
                known = ", ".join(sorted(self.context))
                return _ANY, (f"context key {head!r} is declared by neither agent_kit nor the application "
                              f"(declared: {known}; declare it with create_permissioned_agent(context_keys=...))")
            return self._nested(path, _py_types(self.context[head]), rest)
        if root == "aggregates":
            if head not in self.aggregates:
                known = ", ".join(sorted(self.aggregates)) or "none"
                return _ANY, f"{self.tool} declares no aggregate {head!r} (its aggregates: {known})"
            if rest:
                return _ANY, f"aggregate {head!r} is a number; {path!r} is never set"
            return _NUMBER, None
        return _ANY, f"{path!r} must start with args., context., facts. or aggregates."

    @staticmethod
    def _nested(path: str, types: frozenset[str] | None, rest: list[str]) -> tuple[frozenset[str] | None, str | None]:
        if rest and types is not None and "object" not in types:
            return _ANY, f"{path.rsplit('.', len(rest))[0]!r} is not an object; {path!r} is never set"
        return (_ANY if rest else types), None


def _condition_problem(c: Condition, paths: _Paths) -> str | None:
    types, problem = paths.types(c.path)
    if problem is not None:
        return problem
    value = c.value
    if isinstance(value, dict) and set(value) == {"ref"}:
        ref_types, problem = paths.types(str(value["ref"]))
        if problem is not None:
            return f"ref {value['ref']}: {problem}"
        if types is not None and ref_types is not None and not types & ref_types:
            return (f"{c.path} ({'/'.join(sorted(types))}) is compared with {value['ref']} "
                    f"({'/'.join(sorted(ref_types))}); they can never be equal or ordered")
        return None
    if c.op == "exists" or types is None:
        return None
    if c.op in ("gt", "gte", "lt", "lte"):
        if not types & {"number", "string"}:
            return f"{c.path} is {'/'.join(sorted(types))}; {c.op} needs a number or a string"
        vt = _value_type(value)
        if vt not in types:
            return f"{c.path} is {'/'.join(sorted(types))} but {c.op} compares it with {value!r} ({vt})"
        return None
    candidates = value if c.op in ("in", "not_in") else [value]
    for v in candidates:
        vt = _value_type(v)
        if vt not in types:
            return f"{c.path} is {'/'.join(sorted(types))} but {c.op} compares it with {v!r} ({vt}); it can never match"
    return None


def _aggregate_problems(tool: str, name: str, agg: Aggregate, registry: ToolRegistry,
                        context_keys: Mapping[str, Any]) -> Iterable[str]:
    where = f"tools.{tool}.aggregates.{name}"
    for counted in (tool, *agg.tools):
        spec = registry.get(counted)
        if spec is None:
            yield f"{where}: counts {counted}, which is not registered"
            continue
        props = _arg_schema(spec).get("properties", {})
        defs = _arg_schema(spec).get("$defs", {})
        if agg.sum is not None:
            arg = agg.sum.split(".", 1)[1]
            if arg not in props:
                yield f"{where}.sum: {counted} has no argument {arg!r}"
            else:
                t, _ = _schema_types(props[arg], defs)
                if t is not None and "number" not in t:
                    yield f"{where}.sum: {counted} argument {arg!r} is {'/'.join(sorted(t))}, not a number"
        if agg.per is not None and agg.per.startswith("args."):
            arg = agg.per.split(".", 1)[1]
            if arg not in props:
                yield f"{where}.per: {counted} has no argument {arg!r}"
    if agg.per is not None and agg.per.startswith("context."):
        key = agg.per.split(".", 1)[1]
        if key not in context_keys:
            yield f"{where}.per: context key {key!r} is not declared"


def policy_problems(policy: Policy, registry: ToolRegistry, context_keys: Mapping[str, Any] | None = None) -> list[str]:
    """Every way the policy could leave a rule inert for these tools, each naming its key."""
    ctx = {**LIBRARY_CONTEXT_KEYS, **(context_keys or {})}
    doc = policy.document
    problems: list[str] = []
    for tool, entry in doc.tools.items():
        spec = registry.get(tool)
        if spec is None:
            continue  # not registered here: never called, nothing to check against
        if spec.mode is Mode.EXECUTE_GATED and entry.mode.rank < Mode.EXECUTE_GATED.rank:
            problems.append(f"tools.{tool}.mode: {tool} is registered execute_gated but its entry is "
                            f"{entry.mode.value} and names no approver; make the entry execute_gated with "
                            "approval: or verification:")
        for name, agg in entry.aggregates.items():
            problems.extend(_aggregate_problems(tool, name, agg, registry, ctx))
        paths = _Paths(tool, spec, entry.aggregates, ctx)
        for rule in doc.rules_for(tool):
            where = _rule_key(policy, tool, rule)
            for c in rule.conditions:
                problem = _condition_problem(c, paths)
                if problem is not None:
                    target = "" if where.startswith("tools.") else f" (for {tool})"
                    problems.append(f"{where}.when.{c.path}{target}: {problem}")
    return problems


def _rule_key(policy: Policy, tool: str, rule: Rule) -> str:
    doc = policy.document
    for i, r in enumerate(doc.rules):
        if r is rule:
            return f"rules.{i}"
    for i, r in enumerate(doc.tools[tool].rules):
        if r is rule:
            return f"tools.{tool}.rules.{i}"
    return f"rule {rule.id}"


def check_policy(policy: Policy, registry: ToolRegistry, context_keys: Mapping[str, Any] | None = None) -> None:
    """Refuse a policy with any rule that could never fire for these tools.

    Raises:
        PolicyError: naming the policy file, the key and the problem (and how many more).
    """
    problems = policy_problems(policy, registry, context_keys)
    if problems:
        where = f" in {policy.source}" if policy.source else ""
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise PolicyError(f"invalid policy{where}: {problems[0]}{more}")
