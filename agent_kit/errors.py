"""Every exception agent_kit raises.

    AgentKitError
    ├── UsageError            the API is called wrongly (a wrong type or a contradictory argument)
    ├── PolicyError           a policy file or entry is invalid (names the key)
    ├── RegistrationError     a tool cannot be registered as declared
    ├── InputError            an input cannot be stored faithfully or is over its limit (names the field)
    ├── ResumeError           a resume payload is refused before the graph runs
    │   ├── ApprovalError     unknown approver, wrong role, self- or repeat approval, expired
    │   ├── StaleInterruptError  the interrupt is not (or no longer) pending
    │   └── DecisionInputError   a decision's text, name or edit is refused (also an InputError)
    ├── RunBusyError          another process holds this thread's lease
    ├── LedgerError           the execution ledger refuses (key reused for another action)
    ├── AuditError            the audit trail cannot be written or read
    ├── CheckpointError       a checkpoint failed strict loading
    ├── StorageError          the store cannot be opened, reached or written (bad URL, unreachable
    │                         host, disk full, read-only, its file deleted or replaced under us)
    ├── MissingExtraError     an optional part is used without its extra installed
    ├── ModelError            the chat model failed (names the model and its server's URL)
    ├── CredentialError       a password or token is refused (too short, malformed name)
    └── RollbackError         a rollback is refused (no compensation, already rolled back)

Flow-control exceptions of LangGraph (``GraphBubbleUp`` and its subclasses) are never wrapped:
every broad ``except`` in agent_kit re-raises them first.
"""

from __future__ import annotations

__all__ = [
    "AgentKitError",
    "ApprovalError",
    "AuditError",
    "CheckpointError",
    "CredentialError",
    "DecisionInputError",
    "InputError",
    "LedgerError",
    "MissingExtraError",
    "ModelError",
    "PolicyError",
    "RegistrationError",
    "ResumeError",
    "RollbackError",
    "RunBusyError",
    "StaleInterruptError",
    "StorageError",
    "UsageError",
]


class AgentKitError(Exception):
    """Root of every agent_kit error."""


class UsageError(AgentKitError, TypeError, ValueError):
    """The API was called wrongly (a wrong type or value, a contradictory argument); nothing ran.

    Also a :class:`TypeError` and a :class:`ValueError`, what Python code guarding such a call
    would catch.
    """


class PolicyError(AgentKitError):
    """A policy file or entry is invalid; the message names the key and the problem."""


class RegistrationError(AgentKitError):
    """A tool cannot be registered as declared."""


class ResumeError(AgentKitError):
    """A resume payload was refused before the graph was invoked; the run stays paused."""


class ApprovalError(ResumeError):
    """An approval cannot be accepted: approver, role, expiry or binding is wrong."""

    def __init__(self, message: str, *, approver: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.approver = approver
        """Who tried to decide (None when nobody was named)."""
        self.reason = reason
        """Why, as a short code: ``unknown_approver``, ``wrong_role``, ``self_approval``,
        ``repeat_approval``, ``expired``, ``unidentified``, ``not_bound``, ``customer_only``
        (None when not classified)."""


class StaleInterruptError(ResumeError):
    """The interrupt named is not pending on this thread (answered, foreign or unknown)."""

    def __init__(self, message: str, *, interrupt_id: str | None = None, thread_id: str | None = None,
                 pending: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.interrupt_id = interrupt_id
        """The interrupt that was named."""
        self.thread_id = thread_id
        """The thread it was looked for on, when known."""
        self.pending = tuple(pending)
        """The interrupt ids that *are* pending there (empty when none or unknown)."""


class InputError(AgentKitError, ValueError):
    """An input was refused before anything was written: a lone surrogate, an integer beyond 64
    bits, ``inf``/``nan``, nesting or size over :class:`agent_kit.limits.InputLimits`, a value that
    is not JSON. The thread is unchanged and answers the next message."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field
        """The input refused: ``message``, ``args``, ``approver``, ``reason``, ``edit``..."""


class DecisionInputError(InputError, ResumeError):
    """A decision's text, approver name or edit was refused as input; the run stays paused."""


class RunBusyError(AgentKitError):
    """Another process is running or resuming this thread right now."""

    def __init__(self, message: str, *, thread_id: str | None = None, owner: str | None = None) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        """The thread whose lease is held."""
        self.owner = owner
        """The holder (``host:pid/start`` or ``rollback:host:pid/start``), when known."""


class LedgerError(AgentKitError):
    """The execution ledger refused an entry."""


class AuditError(AgentKitError):
    """The audit trail cannot be written or read."""


class CheckpointError(AgentKitError):
    """A checkpoint could not be loaded under strict deserialization."""


class StorageError(AgentKitError):
    """The store cannot be opened, reached or written; the message names the path or URL and the cause."""


class MissingExtraError(AgentKitError, ImportError):
    """An optional part (Postgres, OpenAI) is used without its extra; the message says what to install."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra
        """The extra to install (``pip install 'agent_kit[<extra>]'``)."""


class ModelError(AgentKitError):
    """The chat model failed to answer; the message names the model and the URL it was called at."""

    def __init__(self, message: str, *, model: str, url: str | None) -> None:
        super().__init__(message)
        self.model = model
        """The model's name (or its class when it has none)."""
        self.url = url
        """The server the model was called at, when the model says."""


class CredentialError(AgentKitError):
    """A password, token or approver name is refused; the message says which and why."""


class RollbackError(AgentKitError):
    """A rollback was refused."""
