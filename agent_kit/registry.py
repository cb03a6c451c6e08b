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

__all__ = ["Compensation", "ToolRegistry", "ToolSpec", "register"]

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
    on_result: Callable[[Any], Mapping[str, Any]] | None = None
    """Turns the tool's own result into trusted context updates (e.g. a verified identity)."""
    draft: Callable[..., Any] | None = None
    """For a draft_only tool: saves the prepared payload (called with the call's arguments and
    the idempotency key). Without it the draft is kept in agent_kit's store only."""
    reconcilable: bool | None = None
    """Whether a retry with the same idempotency key returns the original result. Default: the
    tool takes an ``idempotency_key`` argument."""

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
        return self.tool.tool_call_schema

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
        schema = self.tool.tool_call_schema
        if isinstance(schema, dict):  # a JSON schema: check required keys only
            missing = [k for k in schema.get("required", []) if k not in args]
            if missing:
                raise ValueError(f"missing required argument(s): {', '.join(missing)}")
            return dict(args)
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


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _arg_names(tool: BaseTool) -> set[str]:
    schema = tool.get_input_schema()
    return set(getattr(schema, "model_fields", {}) or {})


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
    on_result: Callable[[Any], Mapping[str, Any]] | None = None,
    draft: Callable[..., Any] | None = None,
    reconcilable: bool | None = None,
) -> ToolSpec:
    """Declare a tool's mode, reach and reversal.

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
    names = _arg_names(base)
    for arg in inject or {}:
        if arg not in names:
            raise RegistrationError(f"tool {base.name!r} has no argument {arg!r} to inject")
    return ToolSpec(
        tool=base, mode=m, reads=tuple(reads), changes=changes_t, system=system,
        compensation=compensation, irreversible=irreversible, inject=dict(inject or {}),
        facts=facts, on_result=on_result, draft=draft, reconcilable=reconcilable,
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
