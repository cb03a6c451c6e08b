"""Registering tools: any LangChain tool or plain typed function, without changing its code.

A registration declares the tool's mode (its ceiling: policy can only make a call stricter), what
it reads and changes, how it is reversed (a :class:`Compensation`) or that it cannot be, and the
trusted values injected into it from the run's context (never from the model).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ValidationError

from agent_kit.errors import RegistrationError
from agent_kit.modes import Mode

__all__ = ["Compensation", "ToolRegistry", "ToolSpec", "error_in_result", "register"]

IDEMPOTENCY_ARG = "idempotency_key"
"""A tool that takes this argument gets the ledger's idempotency key, never the model's value."""


@dataclass(frozen=True)
class Compensation:
    """How to reverse an executed call: another registered tool and its arguments.

    Args:
        tool: the compensating tool's name (it must be registered and have a policy entry).
        args: builds the compensating call's arguments from the original call's arguments and
            its recorded result.
        description: what reversing means, for the checklist.
    """

    tool: str
    args: Callable[[Mapping[str, Any], Any], dict[str, Any]]
    description: str = ""


@dataclass(frozen=True)
class ToolSpec:
    """One registered tool and everything agent_kit needs to know about it."""

    tool: BaseTool
    mode: Mode
    """The tool's ceiling: the least strict mode any call of it may get."""
    reads: tuple[str, ...] = ()
    """The records it reads (for the checklist), e.g. ``("orders", "customers")``."""
    changes: tuple[str, ...] = ()
    """The records it changes; empty for a read-only tool."""
    system: str = "application"
    """The system it touches, for the checklist."""
    compensation: Compensation | None = None
    irreversible: bool = False
    """Declared on purpose: executed calls cannot be reversed (the checklist flags it)."""
    inject: Mapping[str, str] = field(default_factory=dict)
    """Tool argument -> context key: filled from the run's trusted context, never by the model."""
    facts: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None
    """Reads values from the system of record that policy rules test (``facts.*``). No writes."""
    fact_types: Mapping[str, Any] = field(default_factory=dict)
    """The facts ``facts`` returns, by name, with their Python type (``float``, ``str``, ...) or
    None for any: policy conditions on ``facts.<name>`` are checked against them at load."""
    on_result: Callable[[Any], Mapping[str, Any]] | None = None
    """Turns the tool's own result into trusted context updates (e.g. a verified identity)."""
    draft: Callable[..., Any] | None = None
    """For a draft_only tool: saves the prepared payload (called with the call's arguments and
    the idempotency key). Without it the draft is kept in agent_kit's store only."""
    reconcilable: bool | None = None
    """Whether a retry with the same idempotency key returns the original result. Default: the
    tool takes an ``idempotency_key`` argument."""
    failure: Callable[[Any], str | bool | None] | None = None
    """Tells a failed result from a good one, for tools that report failure in what they return
    (``"Error: ..."``, ``{"ok": false}``) rather than by raising: returns the reason (or True) when
    the result is a failure. Such a call is recorded as failed in the ledger and the audit trail,
    the model is told, and it counts as a strike. See :func:`error_in_result`."""

    def call_args(self, args: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments the tool is called with: ``args`` (the model's, checked), and those
        ``inject`` fills from the run's trusted ``context``."""
        return {**args, **{arg: context.get(key) for arg, key in self.inject.items()}}

    def failure_of(self, result: Any) -> str | None:
        """Why this result is a failure, or None. A check that raises counts as a failure too:
        a result nobody could classify is never recorded as a success."""
        if self.failure is None:
            return None
        try:
            verdict = self.failure(result)
        except Exception as exc:
            return f"the failure check of {self.name} raised {type(exc).__name__}: {exc}"
        if verdict is None or verdict is False:
            return None
        return verdict if isinstance(verdict, str) and verdict else f"{self.name} reported a failure in its result"

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def takes_idempotency_key(self) -> bool:
        return IDEMPOTENCY_ARG in _arg_names(self.tool)

    @property
    def can_reconcile(self) -> bool:
        return self.takes_idempotency_key if self.reconcilable is None else self.reconcilable

    @property
    def model_schema(self) -> type[BaseModel] | dict[str, Any]:
        """The arguments the model may set (injected ones are hidden)."""
        if isinstance(self.tool.args_schema, dict):
            return _model_json_schema(self.tool.args_schema, set(self.inject) | {IDEMPOTENCY_ARG})
        return _pydantic_schema(self.tool)

    @property
    def model_tool(self) -> BaseTool | dict[str, Any]:
        """The tool as the model is shown it: for a JSON-schema tool, its schema without the
        arguments agent_kit fills in (an OpenAI-format tool, which every chat model binds)."""
        if not isinstance(self.tool.args_schema, dict):
            return self.tool
        return {"type": "function", "function": {"name": self.name, "description": self.tool.description,
                                                 "parameters": self.model_schema}}

    def validate_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check the model's arguments against the tool's schema.

        Returns the arguments as the model gave them (defaults filled), without injected ones.

        Raises:
            ValueError: naming each bad field.
        """
        hidden = set(self.inject) | {IDEMPOTENCY_ARG}
        extra = sorted(k for k in args if k in hidden)
        if extra:
            raise ValueError(f"argument(s) {', '.join(extra)} are set by agent_kit, not by the caller")
        if isinstance(self.tool.args_schema, dict):  # a tool wrapped from a JSON schema
            return _check_json_args(self.name, _model_json_schema(self.tool.args_schema, hidden), args)
        schema = _pydantic_schema(self.tool)
        try:
            model = schema.model_validate(dict(args))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"invalid arguments for {self.name}: {problems}") from None
        known = set(type(model).model_fields)
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"invalid arguments for {self.name}: unknown argument(s) {', '.join(unknown)}")
        out = {k: v for k, v in model.model_dump(mode="json").items() if k in args or v is not None}
        if _non_finite(out):
            # NaN compares false with every limit, so it would slip past each threshold rule.
            raise ValueError(f"invalid arguments for {self.name}: numbers must be finite (no NaN or infinity)")
        return out


def error_in_result(result: Any) -> str | None:
    """A ready failure check for tools that report errors in their result: text starting with
    ``Error``, or an object with ``"ok": false``, ``"success": false`` or an ``"error"`` value.

    Use it as ``register(tool, mode, failure=error_in_result)``.
    """
    if isinstance(result, str):
        text = result.strip()
        return text if text[:5].lower() == "error" else None
    if isinstance(result, Mapping):
        if result.get("ok") is False or result.get("success") is False or result.get("error"):
            return str(result.get("error") or result.get("message") or result)
    return None


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _arg_names(tool: BaseTool) -> set[str]:
    if isinstance(tool.args_schema, dict):
        return set(tool.args_schema.get("properties") or {})
    schema = tool.get_input_schema()
    return set(getattr(schema, "model_fields", {}) or {})


def _model_json_schema(schema: Mapping[str, Any], hidden: set[str]) -> dict[str, Any]:
    """A tool's JSON schema without the arguments agent_kit fills in."""
    out = dict(schema)
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k not in hidden}
    out["properties"] = props
    if "required" in schema:
        out["required"] = [k for k in schema["required"] if k not in hidden]
    return out


def _pydantic_schema(tool: BaseTool) -> type[BaseModel]:
    """The tool's call schema as a pydantic v2 model (LangChain builds one for every tool without a JSON schema)."""
    schema = tool.tool_call_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise RegistrationError(f"tool {tool.name!r} has an argument schema agent_kit cannot check "
                                f"({schema!r}); give it a pydantic v2 model or a JSON schema")
    return schema


def _json_validator(name: str, schema: Mapping[str, Any]) -> Any:
    """A validator for a tool's JSON schema; a schema that is not valid JSON Schema is refused."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except SchemaError as exc:
        raise RegistrationError(f"tool {name!r} has an invalid JSON schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise RegistrationError(f"tool {name!r}: its JSON schema must describe an object of arguments, "
                                f"got type {schema.get('type')!r}")
    return cls(schema)


def _check_json_args(name: str, schema: dict[str, Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """Check arguments against a JSON schema: types, enums, required keys, formats of numbers.

    Unknown arguments are refused unless the schema itself allows them
    (``additionalProperties`` given); numbers must be finite.
    """
    strict = schema if "additionalProperties" in schema else {**schema, "additionalProperties": False}
    problems = []
    try:
        errors = sorted(_json_validator(name, strict).iter_errors(dict(args)), key=lambda e: list(e.absolute_path))
    except RegistrationError:
        raise
    except Exception as exc:  # e.g. a $ref that cannot be resolved: what cannot be checked does not run
        raise ValueError(f"invalid arguments for {name}: its schema could not be checked "
                         f"({type(exc).__name__}: {exc})") from None
    for e in errors:
        where = ".".join(str(x) for x in e.absolute_path) or "args"
        problems.append(f"{where}: {e.message}")
    if problems:
        raise ValueError(f"invalid arguments for {name}: {'; '.join(problems)}")
    if _non_finite(args):
        raise ValueError(f"invalid arguments for {name}: numbers must be finite (no NaN or infinity)")
    return dict(args)


def _langgraph_injected(tool: BaseTool) -> dict[str, str]:
    """Arguments the tool expects LangGraph's ``ToolNode`` to inject (``InjectedState``,
    ``InjectedStore``, ``InjectedToolCallId``, ``ToolRuntime``), by name -> the marker's name."""
    from typing import Annotated, get_args, get_origin

    from langchain_core.tools import InjectedToolArg
    from langchain_core.tools.base import _DirectlyInjectedToolArg, get_all_basemodel_annotations

    if isinstance(tool.args_schema, dict) or tool.args_schema is None:
        return {}
    found: dict[str, str] = {}
    for arg, annotation in get_all_basemodel_annotations(tool.args_schema).items():
        markers = list(get_args(annotation)[1:]) if get_origin(annotation) is Annotated else []
        base = get_args(annotation)[0] if markers else annotation
        for marker in [base, *markers]:
            cls = marker if isinstance(marker, type) else type(marker)
            if issubclass(cls, _DirectlyInjectedToolArg) or (issubclass(cls, InjectedToolArg)
                                                             and cls is not InjectedToolArg):
                found[arg] = cls.__name__
    return found


def _as_tool(obj: BaseTool | Callable[..., Any]) -> BaseTool:
    if isinstance(obj, BaseTool):
        return obj
    if callable(obj):
        if not inspect.getdoc(obj):
            raise RegistrationError(
                f"function {getattr(obj, '__name__', obj)!r} has no docstring; the model needs one to "
                "know what the tool does"
            )
        return StructuredTool.from_function(obj)
    raise RegistrationError(f"cannot register {obj!r}: give a LangChain tool or a typed function")


def register(
    tool: BaseTool | Callable[..., Any],
    mode: Mode | str,
    *,
    reads: Iterable[str] = (),
    changes: Iterable[str] = (),
    system: str = "application",
    compensation: Compensation | None = None,
    irreversible: bool = False,
    inject: Mapping[str, str] | None = None,
    facts: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None,
    fact_types: Mapping[str, Any] | Iterable[str] | None = None,
    on_result: Callable[[Any], Mapping[str, Any]] | None = None,
    draft: Callable[..., Any] | None = None,
    reconcilable: bool | None = None,
    failure: Callable[[Any], str | bool | None] | None = None,
) -> ToolSpec:
    """Declare a tool's mode, reach and reversal.

    ``facts`` reads values from the system of record for policy rules; ``fact_types`` declares
    what it returns (name -> type, or just names), so a rule naming an undeclared fact is a load
    error instead of a rule that never fires.

    Raises:
        RegistrationError: the declaration contradicts itself (a read-only tool that changes
            records, an injected argument the tool does not take, compensation and irreversible
            both given).
    """
    base = _as_tool(tool)
    try:
        m = Mode(mode)
    except ValueError:
        raise RegistrationError(
            f"unknown mode {mode!r} for tool {base.name!r}; use one of {', '.join(x.value for x in Mode)}"
        ) from None
    changes_t = tuple(changes)
    if m is Mode.READ_ONLY and changes_t:
        raise RegistrationError(f"tool {base.name!r} is read_only but declares changes {changes_t}")
    if compensation is not None and irreversible:
        raise RegistrationError(f"tool {base.name!r} has a compensation and is marked irreversible; pick one")
    if isinstance(base.args_schema, dict):
        _json_validator(base.name, base.args_schema)
    declared: dict[str, Any] = {}
    if fact_types is not None:
        declared = dict(fact_types) if isinstance(fact_types, Mapping) else dict.fromkeys(fact_types)
        if facts is None:
            raise RegistrationError(f"tool {base.name!r} declares fact_types but no facts function reads them")
    names = _arg_names(base)
    for arg in inject or {}:
        if arg not in names:
            raise RegistrationError(f"tool {base.name!r} has no argument {arg!r} to inject")
    for arg, marker in _langgraph_injected(base).items():
        if arg not in (inject or {}):
            raise RegistrationError(
                f"tool {base.name!r} takes {arg!r} as {marker}, which LangGraph's ToolNode injects; agent_kit runs "
                "each tool itself after policy, ledger and audit, and does not provide it: take the values you need "
                f"as ordinary arguments and fill them from the run's trusted context with inject={{{arg!r}: KEY}}")
    return ToolSpec(
        tool=base, mode=m, reads=tuple(reads), changes=changes_t, system=system,
        compensation=compensation, irreversible=irreversible, inject=dict(inject or {}),
        facts=facts, fact_types=declared, on_result=on_result, draft=draft, reconcilable=reconcilable, failure=failure,
    )


class ToolRegistry(Mapping[str, ToolSpec]):
    """The registered tools of one agent, by name."""

    def __init__(self, specs: Iterable[ToolSpec | BaseTool | Callable[..., Any]] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for s in specs:
            self.add(s)

    def add(self, spec: ToolSpec | BaseTool | Callable[..., Any]) -> ToolSpec:
        if not isinstance(spec, ToolSpec):
            # An unregistered tool still gets a spec, with the strictest ceiling that runs nothing.
            spec = register(spec, Mode.ESCALATE)
        if spec.name in self._specs:
            raise RegistrationError(f"tool {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def __getitem__(self, name: str) -> ToolSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def check_compensations(self) -> None:
        for spec in self._specs.values():
            if spec.compensation and spec.compensation.tool not in self._specs:
                raise RegistrationError(
                    f"tool {spec.name!r} names compensation {spec.compensation.tool!r}, which is not registered"
                )

    def model_tools(self) -> list[BaseTool]:
        """The tools as the model sees them (compensations included only if the model may call them)."""
        return [s.tool for s in self._specs.values()]
