"""The core data, typed: an action, its grants and decision, and the interrupt request a person sees.

They are plain JSON at run time (``TypedDict``\\s): an action travels in ``Send`` payloads and
checkpoints, a request is an interrupt's value. The request is LangChain's human-in-the-loop
``HITLRequest`` (``action_requests`` / ``review_configs``, field for field, so Agent Chat UI and
other clients of that contract read it unchanged) with agent_kit's own fields beside them.
"""


from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "Action",
    "ActionRequest",
    "ApprovalGiven",
    "DecisionRecord",
    "DecisionType",
    "Grants",
    "InterruptRequest",
    "Kind",
    "RequiredApproval",
    "ReviewConfig",
    "Sibling",
    "Task",
]

Kind = Literal["approval", "verification", "escalation"]
"""What a paused run waits for: a staff approval, the customer's verification, or a person taking
over the case."""

DecisionType = Literal["approve", "edit", "reject", "respond"]
"""The decisions of LangChain's human-in-the-loop contract."""


class ApprovalGiven(TypedDict):
    """One approval an action holds: who gave it, acting as which role, when."""

    approver: str
    role: str | None
    at: str
    interrupt_id: NotRequired[str]


class Grants(TypedDict):
    """What an action holds when it reaches ``execute``: the interrupt ids of the verifications the
    customer answered, and the approvals staff gave (each consumed by exactly one execution)."""

    verified: list[str]
    approvals: list[ApprovalGiven]
    verified_at: NotRequired[dict[str, str]]
    """Verification kind (``identity``, ``confirm``) -> the interrupt id the customer answered."""


class RequiredApproval(TypedDict):
    role: str
    count: int


class DecisionRecord(TypedDict):
    """A :class:`agent_kit.policy.Decision` as JSON (``Decision.to_json()``), as the action carries it."""

    tool: str
    mode: str | None
    outcome: str
    rule: str | None
    reason: str
    policy_version: str
    fired: list[str]
    approvals: list[RequiredApproval]
    verification: list[str]
    approval_expiry: float | None


class Sibling(TypedDict):
    """Another call of the same model message, whose amounts count against the same limits."""

    key: str
    call: str
    tool: str
    args: dict[str, Any]


class Action(TypedDict):
    """One tool call, validated and decided by policy (``Kernel.new_action``)."""

    tool_call_id: str
    turn: str | None
    """The AI message the call came in (a model may reuse tool call ids across messages)."""
    tool: str
    args: dict[str, Any]
    hash: str
    """The action hash: the tool and its canonical arguments (what an approval is bound to)."""
    decision: DecisionRecord
    requested_by: str
    requested_at: str
    grants: Grants
    expires_at: NotRequired[str | None]
    siblings: NotRequired[list[Sibling]]
    handoff: NotRequired[bool]
    """No open tool call: the whole run goes to a person."""


class ActionRequest(TypedDict):
    """LangChain's ``ActionRequest``: the call a person reviews."""

    name: str
    args: dict[str, Any]
    description: NotRequired[str]


class ReviewConfig(TypedDict):
    """LangChain's ``ReviewConfig``: the decisions a person may make on it."""

    action_name: str
    allowed_decisions: list[DecisionType]
    args_schema: NotRequired[dict[str, Any]]


class InterruptRequest(TypedDict):
    """An interrupt's value: LangChain's ``HITLRequest`` plus agent_kit's fields."""

    action_requests: list[ActionRequest]
    review_configs: list[ReviewConfig]
    kind: Kind
    action_hash: str
    tool_call_id: str
    mode: str | None
    rule: str | None
    reason: str
    policy_version: str
    requested_by: str | None
    requested_at: str
    interrupt_id: NotRequired[str]
    """The id LangGraph gives the interrupt (known once asked; the inbox keys items by it)."""
    answered_by: NotRequired[str]
    required_role: NotRequired[str | None]
    approvals_needed: NotRequired[int]
    approvals_given: NotRequired[list[ApprovalGiven]]
    expires_at: NotRequired[str | None]
    summary: NotRequired[str | None]
    receivers: NotRequired[list[str]]
    verification: NotRequired[str]
    """For a verification: ``"identity"`` (who the customer is) or ``"confirm"`` (this action)."""
    requirements: NotRequired[list[RequiredApproval]]
    """For an approval: every role the action needs, with how many approvers of it."""
    refused: NotRequired[dict[str, Any]]
    """Why the previous answer to this question was refused (shown to the client that sent it)."""


class Task(TypedDict):
    """What a gate node (``verification``, ``approval``, ``escalation``, ``execute``, ``record``)
    is sent: the action, the conversation's context, and why a previous answer was refused."""

    action: Action
    context: dict[str, Any]
    refused: NotRequired[dict[str, Any] | None]
