"""Every exception agent_kit raises.

    AgentKitError
    ├── PolicyError           a policy file or entry is invalid (names the key)
    ├── RegistrationError     a tool cannot be registered as declared
    ├── ResumeError           a resume payload is refused before the graph runs
    │   ├── ApprovalError     unknown approver, wrong role, self- or repeat approval, expired
    │   └── StaleInterruptError  the interrupt is not (or no longer) pending
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
]


class AgentKitError(Exception):
    """Root of every agent_kit error."""


class PolicyError(AgentKitError):
    """A policy file or entry is invalid; the message names the key and the problem."""


class RegistrationError(AgentKitError):
    """A tool cannot be registered as declared."""


class ResumeError(AgentKitError):
    """A resume payload was refused before the graph was invoked; the run stays paused."""


class ApprovalError(ResumeError):
    """An approval cannot be accepted: approver, role, expiry or binding is wrong."""


class StaleInterruptError(ResumeError):
    """The interrupt named is not pending on this thread (answered, foreign or unknown)."""


class RunBusyError(AgentKitError):
    """Another process is running or resuming this thread right now."""


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
