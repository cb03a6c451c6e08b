"""agent_kit: LangGraph agents that act on customers' accounts safely.

Every tool call passes through permission, verification, approval and escalation nodes; policy,
decided outside the model, gives each action its mode; approvals are bound to the exact action
and an identified approver; every effect happens once and every decision is audited.
"""

import typing as _typing

from agent_kit.errors import (
    AgentKitError,
    ApprovalError,
    AuditError,
    CheckpointError,
    CredentialError,
    DecisionInputError,
    InputError,
    LedgerError,
    MissingExtraError,
    ModelError,
    PolicyError,
    RegistrationError,
    ResumeError,
    RollbackError,
    RunBusyError,
    StaleInterruptError,
    StorageError,
    UsageError,
)

if _typing.TYPE_CHECKING:
    from agent_kit.credentials import Credentials
    from agent_kit.graph import AgentState, PermissionLayer, RunContext, create_permissioned_agent, layer_of
    from agent_kit.kernel import Kernel
    from agent_kit.limits import InputLimits
    from agent_kit.modes import Mode
    from agent_kit.policy import ApprovalRequirement, Decision, Policy, load_policy
    from agent_kit.registry import Compensation, ToolRegistry, ToolSpec, error_in_result, register
    from agent_kit.retention import RetentionPolicy, prune_checkpoints
    from agent_kit.runtime import AgentRuntime, TurnResult

# The rest is imported on first use (PEP 562), so that `import agent_kit.errors` (the CLI's
# `--help`, a tool module) does not pay for LangGraph and LangChain.
_LAZY: dict[str, str] = {
    "AgentRuntime": "agent_kit.runtime",
    "AgentState": "agent_kit.graph",
    "ApprovalRequirement": "agent_kit.policy",
    "Compensation": "agent_kit.registry",
    "Credentials": "agent_kit.credentials",
    "Decision": "agent_kit.policy",
    "InputLimits": "agent_kit.limits",
    "Kernel": "agent_kit.kernel",
    "Mode": "agent_kit.modes",
    "PermissionLayer": "agent_kit.graph",
    "Policy": "agent_kit.policy",
    "RetentionPolicy": "agent_kit.retention",
    "RunContext": "agent_kit.graph",
    "ToolRegistry": "agent_kit.registry",
    "ToolSpec": "agent_kit.registry",
    "TurnResult": "agent_kit.runtime",
    "create_permissioned_agent": "agent_kit.graph",
    "error_in_result": "agent_kit.registry",
    "layer_of": "agent_kit.graph",
    "load_policy": "agent_kit.policy",
    "prune_checkpoints": "agent_kit.retention",
    "register": "agent_kit.registry",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_kit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AgentKitError",
    "AgentRuntime",
    "AgentState",
    "ApprovalError",
    "ApprovalRequirement",
    "AuditError",
    "CheckpointError",
    "Compensation",
    "CredentialError",
    "Credentials",
    "Decision",
    "DecisionInputError",
    "InputError",
    "InputLimits",
    "Kernel",
    "LedgerError",
    "MissingExtraError",
    "Mode",
    "ModelError",
    "PermissionLayer",
    "Policy",
    "PolicyError",
    "RegistrationError",
    "ResumeError",
    "RetentionPolicy",
    "RollbackError",
    "RunBusyError",
    "RunContext",
    "StaleInterruptError",
    "StorageError",
    "ToolRegistry",
    "ToolSpec",
    "TurnResult",
    "UsageError",
    "create_permissioned_agent",
    "error_in_result",
    "layer_of",
    "load_policy",
    "prune_checkpoints",
    "register",
]
