"""Typed events of a streamed turn: the model's tokens and what agent_kit decided and did.

``AgentRuntime.stream(thread, message)`` (and ``astream``) yield, in the order they happen:

- :class:`Token`: a piece of the model's text, as the model server sends it;
- :class:`Decided`: a decision about a tool call: read, recommended, drafted, approved, edited,
  rejected, verified, resolved, rolled back (from the audit trail, as it is written);
- :class:`Executed`: an effect ran (its audit entry is written);
- :class:`Refused`: a call was denied by policy, refused, or failed;
- :class:`Paused`: the run waits on a person (approval, verification, escalation), with the same
  view ``agent-kit pending`` shows;
- :class:`TurnEnded`: last, with the :class:`~agent_kit.runtime.TurnResult` ``send`` returns.

Each event has ``type`` (its name in snake_case) and ``to_json()``, so a UI or a server can pass
them on as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

__all__ = ["Decided", "Executed", "Paused", "Refused", "StreamEvent", "Token", "TurnEnded", "event_of_audit_entry"]

EventType = Literal["token", "decided", "executed", "refused", "paused", "turn_ended"]


@dataclass(frozen=True)
class StreamEvent:
    """Base of every streamed event."""

    type: ClassVar[EventType]
    thread_id: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class Token(StreamEvent):
    """A piece of the model's reply text."""

    type: ClassVar[EventType] = "token"
    text: str
    message_id: str | None = None
    """The id of the message the piece belongs to (a new id starts a new message)."""


@dataclass(frozen=True)
class _AuditEvent(StreamEvent):
    kind: str
    """The audit entry's kind (``executed``, ``approved``, ``denied``...)."""
    tool: str | None
    actor: str
    action_hash: str | None
    seq: int
    """The audit entry's sequence number (``agent-kit audit`` shows it)."""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decided(_AuditEvent):
    """A decision about a tool call was recorded (read, recommended, drafted, approved, edited,
    rejected, verified, resolved, rolled_back)."""

    type: ClassVar[EventType] = "decided"


@dataclass(frozen=True)
class Executed(_AuditEvent):
    """An effect ran, once, through the ledger."""

    type: ClassVar[EventType] = "executed"


@dataclass(frozen=True)
class Refused(_AuditEvent):
    """A call did not run: denied by policy, refused, or failed (``kind`` says which)."""

    type: ClassVar[EventType] = "refused"


@dataclass(frozen=True)
class Paused(StreamEvent):
    """The run waits on a person; ``pending`` is the operator's view of the interrupt."""

    type: ClassVar[EventType] = "paused"
    pending: dict[str, Any]


@dataclass(frozen=True)
class TurnEnded(StreamEvent):
    """The turn is over; ``result`` is what :meth:`AgentRuntime.send` would have returned."""

    type: ClassVar[EventType] = "turn_ended"
    result: Any

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "thread_id": self.thread_id, "result": self.result.to_json()}


_REFUSED = frozenset({"denied", "refused", "failed"})
_REQUESTS = frozenset({"approval_requested", "verification_requested", "escalated"})


def event_of_audit_entry(entry: Any) -> StreamEvent | None:
    """The event for one audit entry, or None for a request to a person (streamed as
    :class:`Paused`, from the interrupt itself)."""
    if entry.kind in _REQUESTS or entry.kind in ("message_held", "message_delivered"):
        return None  # the customer's own messages, kept while a run waited: not a decision
    cls: type[_AuditEvent] = Executed if entry.kind == "executed" else Refused if entry.kind in _REFUSED else Decided
    return cls(thread_id=entry.thread_id, kind=entry.kind, tool=entry.tool, actor=entry.actor,
               action_hash=entry.action_hash, seq=entry.seq, data=dict(entry.data or {}))
