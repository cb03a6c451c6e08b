"""The inbox: an index of the interrupts waiting on a person.

The checkpoints are the truth about what is paused; the inbox is a fast, queryable copy of the
pending requests (one row per interrupt id), so ``agent-kit pending`` lists thousands without
loading a single checkpoint. Each row holds the item as canonical JSON plus the columns it is
listed by (kind, thread, request time), which are indexed.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args

import orjson

from ._canonical import canonical_json
from ._db import Database, Row, Tx, utc_now
from .errors import ApprovalError, StaleInterruptError, UsageError
from .types import Kind

if TYPE_CHECKING:
    import sqlite_utils

__all__ = [
    "PENDING_KINDS",
    "Inbox",
    "PendingItem",
    "PendingKind",
]

PendingKind = Kind
"""The kinds of :mod:`agent_kit.interrupts` (one literal for the graph, the inbox and the CLI)."""
PENDING_KINDS: tuple[str, ...] = get_args(Kind)
"""What a paused run waits for: a staff approval, the customer's verification, or a person
taking over the case."""


@dataclass(frozen=True, kw_only=True)
class PendingItem:
    """One interrupt waiting on a person."""

    thread_id: str
    interrupt_id: str
    kind: PendingKind
    action: dict[str, Any]
    """``{"name": tool, "args": {...}}``: the exact action awaiting a decision."""
    action_hash: str
    mode: str
    rule: str | None = None
    """The policy rule that fired, if any."""
    reason: str = ""
    required_role: str | None = None
    approvals_needed: int = 1
    approvals: list[dict[str, Any]] = field(default_factory=list)
    """Approvals so far, each ``{"approver", "role", "at"}``."""
    requested_by: str | None = None
    requested_at: str = field(default_factory=utc_now)
    expires_at: str | None = None
    summary: str | None = None
    tool_call_id: str | None = None
    policy_version: str | None = None
    question: str | None = None
    """What the person is asked, as the run asked it (for a verification: the customer's question)."""
    receivers: list[str] | None = None
    """For an escalation: the roles (or people) who may resolve it."""
    requirements: list[dict[str, Any]] | None = None
    """For an approval: every role it needs, ``{"role", "count"}`` (``required_role`` is the first
    one still unmet)."""
    served_by: dict[str, str] | None = None
    """``{"graph_id", "assistant_id"}`` when LangGraph Server runs the thread: it is resumed there,
    not through ``agent-kit``."""

    def __post_init__(self) -> None:
        if self.kind not in PENDING_KINDS:
            raise UsageError(f"pending kind {self.kind!r} is not one of {', '.join(PENDING_KINDS)}")

    def to_json(self) -> dict[str, Any]:
        """The item as plain JSON."""
        return asdict(self)

    @classmethod
    def from_request(cls, thread_id: str, interrupt_id: str, request: Mapping[str, Any], *,
                     served_by: dict[str, str] | None = None) -> PendingItem:
        """The item of one pending interrupt, from its value (:func:`agent_kit.interrupts.build_request`):
        the one shape the graph puts in the inbox and the runtime, CLI and web show."""
        asked = request["action_requests"][0]
        return cls(
            thread_id=thread_id, interrupt_id=interrupt_id, kind=request["kind"],
            action={"name": asked["name"], "args": asked["args"]}, action_hash=request["action_hash"],
            mode=str(request.get("mode") or ""), rule=request.get("rule"), reason=request.get("reason") or "",
            required_role=request.get("required_role"), approvals_needed=int(request.get("approvals_needed") or 0),
            approvals=list(request.get("approvals_given") or []), requested_by=request.get("requested_by"),
            requested_at=request["requested_at"], expires_at=request.get("expires_at"),
            summary=request.get("summary"), tool_call_id=request.get("tool_call_id"),
            policy_version=request.get("policy_version"), question=asked.get("description"),
            receivers=request.get("receivers"), served_by=served_by,
            requirements=[dict(r) for r in request["requirements"]] if request.get("requirements") else None,
        )

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> PendingItem:
        """Rebuild an item from :meth:`to_json` output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


_FIELD_COUNT = len(fields(PendingItem))


class Inbox:
    """The inbox table of one store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, item: PendingItem) -> None:
        """Insert the item, or replace the one with the same ``interrupt_id``."""
        self._db.write(lambda tx: _put(tx, item))

    def put_in(self, tx: Tx, item: PendingItem) -> None:
        """:meth:`put` inside the caller's transaction (with the audit entry that asks)."""
        _put(tx, item)

    def remove(self, interrupt_id: str) -> None:
        """Forget one interrupt (answered or abandoned); a missing one is ignored."""
        self._db.execute("DELETE FROM inbox WHERE interrupt_id = ?", (interrupt_id,))

    def remove_in(self, tx: Tx, interrupt_id: str) -> None:
        """:meth:`remove` inside the caller's transaction (with the audit entry of the decision)."""
        tx.send("DELETE FROM inbox WHERE interrupt_id = ?", (interrupt_id,))

    def sweep_in(self, tx: Tx, thread_id: str, *, keep: Sequence[str]) -> int:
        """Inside the caller's transaction, forget the thread's items whose interrupt is no longer
        pending (every one not in ``keep``); returns how many went."""
        if not keep:
            return tx.execute("DELETE FROM inbox WHERE thread_id = ?", (thread_id,))
        marks = ", ".join("?" * len(keep))
        return tx.execute(f"DELETE FROM inbox WHERE thread_id = ? AND interrupt_id NOT IN ({marks})",
                          (thread_id, *keep))

    def remove_thread(self, thread_id: str) -> None:
        """Forget every pending interrupt of a thread."""
        self._db.execute("DELETE FROM inbox WHERE thread_id = ?", (thread_id,))

    def get(self, interrupt_id: str) -> PendingItem | None:
        row = self._db.fetchone("SELECT body FROM inbox WHERE interrupt_id = ?", (interrupt_id,))
        return _item(row) if row else None

    def for_thread(self, thread_id: str) -> list[PendingItem]:
        """The thread's pending items, oldest request first."""
        rows = self._db.fetchall(
            "SELECT body FROM inbox WHERE thread_id = ? ORDER BY requested_at, interrupt_id", (thread_id,))
        return [_item(row) for row in rows]

    def list(self, *, kind: str | None = None, limit: int | None = None) -> list[PendingItem]:
        """Pending items (of one kind, if given), oldest request first."""
        sql, params = "SELECT body FROM inbox", list[Any]()
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        sql += " ORDER BY requested_at, interrupt_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._db.fetchall(sql, params)
        if not rows:
            return []
        # The cyclic collector is paused: parsing makes some twenty objects per item and no
        # cycles, and the collector's passes over them tripled the time of listing 10,000 items.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return [_item(row) for row in rows]
        finally:
            if enabled:
                gc.enable()

    def add_approval(self, interrupt_id: str, approver: str, role: str | None,
                     at: str | datetime | None = None) -> PendingItem:
        """Add one approval to a pending item, atomically, and return the updated item.

        Raises:
            StaleInterruptError: the interrupt is not pending.
            ApprovalError: this approver has already approved it.
        """
        when = at.isoformat() if isinstance(at, datetime) else (at or utc_now())

        def approve_in(tx: Tx) -> PendingItem:
            row = tx.fetchone("SELECT body FROM inbox WHERE interrupt_id = ?", (interrupt_id,))
            if row is None:
                raise StaleInterruptError(f"interrupt {interrupt_id!r} is not pending (answered or unknown)",
                                          interrupt_id=interrupt_id)
            item = _item(row)
            if any(a.get("approver") == approver for a in item.approvals):
                raise ApprovalError(f"{approver!r} has already approved interrupt {interrupt_id!r}; "
                                    "a second approval must come from someone else",
                                    approver=approver, reason="repeat_approval")
            updated = replace(item, approvals=[*item.approvals,
                                               {"approver": approver, "role": role, "at": when}])
            tx.execute("UPDATE inbox SET body = ? WHERE interrupt_id = ?",
                       (canonical_json(updated.to_json()), interrupt_id))
            return updated

        return self._db.write(approve_in)


def _put(tx: Tx, item: PendingItem) -> None:
    tx.send(
        "INSERT INTO inbox (interrupt_id, thread_id, kind, requested_at, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (interrupt_id) DO UPDATE SET thread_id = excluded.thread_id, "
        "kind = excluded.kind, requested_at = excluded.requested_at, body = excluded.body",
        (item.interrupt_id, item.thread_id, item.kind, item.requested_at, canonical_json(item.to_json())))


def _item(row: Row) -> PendingItem:
    return _from_value(orjson.loads(row[0]))


def _from_value(value: dict[str, Any]) -> PendingItem:
    if len(value) != _FIELD_COUNT:
        return PendingItem.from_json(value)
    # Rows were validated when put; skipping __init__ halves the cost of listing thousands.
    item = object.__new__(PendingItem)
    item.__dict__.update(value)
    return item


def _create_sqlite_tables(db: sqlite_utils.Database) -> None:
    db["inbox"].create(  # type: ignore[union-attr]
        {"interrupt_id": str, "thread_id": str, "kind": str, "requested_at": str, "body": str},
        pk="interrupt_id", not_null={"thread_id", "kind", "requested_at", "body"}, if_not_exists=True)
    for name, cols in _INDEXES:
        db["inbox"].create_index(cols, index_name=name, if_not_exists=True)  # type: ignore[union-attr]


def _create_postgres_tables(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS inbox (interrupt_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, "
               "kind TEXT NOT NULL, requested_at TEXT NOT NULL, body TEXT NOT NULL)")
    for name, cols in _INDEXES:
        tx.execute(f"CREATE INDEX IF NOT EXISTS {name} ON inbox ({', '.join(cols)})")


_INDEXES = (
    ("inbox_requested", ["requested_at", "interrupt_id"]),
    ("inbox_kind", ["kind", "requested_at", "interrupt_id"]),
    ("inbox_thread", ["thread_id", "requested_at"]),
)
