"""agent_kit: LangGraph agents that act on customers' accounts safely.

Every tool call passes through permission, verification, approval and escalation nodes; policy,
decided outside the model, gives each action its mode; approvals are bound to the exact action
and an identified approver; every effect happens once and every decision is audited.
"""

from agent_kit.errors import (
    AgentKitError,
    ApprovalError,
    AuditError,
    CheckpointError,
    LedgerError,
    PolicyError,
    RegistrationError,
    ResumeError,
    RollbackError,
    RunBusyError,
    StaleInterruptError,
    StorageError,
)
from agent_kit.graph import AgentState, PermissionLayer, create_permissioned_agent, layer_of
from agent_kit.modes import Mode
from agent_kit.policy import ApprovalRequirement, Decision, Policy, load_policy
from agent_kit.registry import Compensation, ToolRegistry, ToolSpec, register
from agent_kit.retention import RetentionPolicy, prune_checkpoints
from agent_kit.runtime import AgentRuntime, TurnResult

__all__ = [
    "AgentKitError",
    "AgentRuntime",
    "AgentState",
    "ApprovalError",
    "ApprovalRequirement",
    "AuditError",
    "CheckpointError",
    "Compensation",
    "Decision",
    "LedgerError",
    "Mode",
    "PermissionLayer",
    "Policy",
    "PolicyError",
    "RegistrationError",
    "ResumeError",
    "RetentionPolicy",
    "RollbackError",
    "RunBusyError",
    "StaleInterruptError",
    "StorageError",
    "ToolRegistry",
    "ToolSpec",
    "TurnResult",
    "create_permissioned_agent",
    "layer_of",
    "load_policy",
    "prune_checkpoints",
    "register",
]
