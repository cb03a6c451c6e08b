"""The execution ledger: every side effect is written down before it happens.

An effect's idempotency key (thread, tool call, action hash) is inserted with status
``started`` before the tool runs and the outcome is recorded after. On recovery a ``done``
record returns its result instead of running again; a ``started`` record whose process died
becomes ``unknown`` and is reconciled through the key, never re-run blindly.

The grants an effect consumes (the interrupts of its approvals and verifications) are recorded
beside it (``ledger_grants``), in the transaction that starts the effect: a grant serves one
effect only, so an approval can never pay twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _totals
from ._canonical import canonical_json
from ._db import Database, Row, Tx, utc_now
from .errors import LedgerError, RollbackError

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["ExecutionLedger", "LedgerRecord", "LedgerStatus"]

LedgerStatus = Literal["started", "done", "failed", "unknown"]
T = TypeVar("T")

_COLUMNS = ("key, thread_id, tool_call_id, tool, action_hash, args, status, result, error, "
            "started_at, finished_at, duration_ms, rolled_back_by")
_SELECT = f"SELECT {_COLUMNS} FROM ledger"


@dataclass(frozen=True)
class LedgerRecord:
    """One effect: what was asked, and what came of it."""

    key: str
    """The idempotency key handed to the tool."""
    thread_id: str
    tool_call_id: str
    tool: str
    action_hash: str
    args: dict[str, Any]
    status: LedgerStatus
    """``started`` before the call, ``done`` / ``failed`` after it, ``unknown`` if it was cut off."""
    result: Any
    error: str | None
    started_at: str
    finished_at: str | None
    duration_ms: float | None
    rolled_back_by: int | None
    """``seq`` of the audit entry of the rollback, once rolled back."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON."""
        return asdict(self)


class ExecutionLedger:
    """The ledger table of one store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self, key: str, *, thread_id: str, tool_call_id: str, tool: str, action_hash: str,
              args: dict[str, Any], dims: Sequence[tuple[str, str]] = ()) -> tuple[LedgerRecord, bool]:
        """Record the intent to run an action, unless the key is already recorded.

        Args:
            dims: the (dimension, value) pairs the action's running totals are grouped by
                (see :mod:`agent_kit._totals`); recorded in the same transaction.

        Returns:
            ``(record, created)``: ``created`` is False when the key existed (the caller then
            looks at ``record.status`` instead of running the tool).

        Raises:
            LedgerError: the key is recorded for a different action hash.
        """
        row, created = self._db.write(lambda tx: self._begin_row(tx, key, thread_id=thread_id,
                                                                  tool_call_id=tool_call_id, tool=tool,
                                                                  action_hash=action_hash, args=args, dims=dims))
        return _checked(_record(row), key, action_hash, tool), created

    def begin_in(self, tx: Tx, key: str, *, thread_id: str, tool_call_id: str, tool: str, action_hash: str,
                 args: dict[str, Any], dims: Sequence[tuple[str, str]] = ()) -> tuple[LedgerRecord, bool]:
        """:meth:`begin` inside the caller's transaction (see :meth:`AuditLog.write`)."""
        row, created = self._begin_row(tx, key, thread_id=thread_id, tool_call_id=tool_call_id, tool=tool,
                                       action_hash=action_hash, args=args, dims=dims)
        return _checked(_record(row), key, action_hash, tool), created

    def _begin_row(self, tx: Tx, key: str, *, thread_id: str, tool_call_id: str, tool: str, action_hash: str,
                   args: dict[str, Any], dims: Sequence[tuple[str, str]] = ()) -> tuple[Row, bool]:
        # The new row comes back from the insert itself; only a key already recorded is read.
        row = tx.fetchone(
            "INSERT INTO ledger (key, thread_id, tool_call_id, tool, action_hash, args, status, "
            "started_at) VALUES (?, ?, ?, ?, ?, ?, 'started', ?) ON CONFLICT (key) DO NOTHING RETURNING " + _COLUMNS,
            (key, thread_id, tool_call_id, tool, action_hash, _json(args, "args"), utc_now()),
        )
        created = row is not None
        if row is None:
            row = tx.fetchone(_SELECT + " WHERE key = ?", (key,))
        assert row is not None
        # An effect on its way counts toward its running totals (a reservation's rows move to
        # "started"). A failed one stays as it finished, counted nowhere: beginning its key again
        # (a run replayed after a crash) does not run it again, so it must not count again either.
        if row[4] == action_hash and row[6] == "started":
            _totals.insert_rows(tx, key, tool=tool, thread_id=thread_id, dims=dims, nums=_totals.numbers(args),
                                state="started")
        return row, created

    def status_in(self, tx: Tx, key: str) -> str | None:
        """The key's status inside the caller's transaction, or None."""
        row = tx.fetchone("SELECT status FROM ledger WHERE key = ?", (key,))
        return str(row[0]) if row else None

    def spend_in(self, tx: Tx, grants: list[str], key: str) -> dict[str, str]:
        """Consume each grant (an approval's or a verification's interrupt, ``thread:interrupt_id``)
        for the effect ``key``, inside the transaction that starts that effect.

        Returns:
            The grants already consumed by *another* effect, with that effect's key: if any, the
            caller must refuse the effect (raising rolls the whole transaction back). A grant
            consumed by this same key (a resumed or recovered run) is fine.
        """
        spent: dict[str, str] = {}
        for grant in grants:
            # Spent now: the insert says so. Else read who spent it (in a statement of its own, so
            # a spend another transaction committed while this one waited on it is seen).
            row = tx.fetchone("INSERT INTO ledger_grants (grant_id, key, spent_at) VALUES (?, ?, ?) "
                              "ON CONFLICT (grant_id) DO NOTHING RETURNING key", (grant, key, utc_now()))
            if row is None:
                row = tx.fetchone("SELECT key FROM ledger_grants WHERE grant_id = ?", (grant,))
            if row is not None and row[0] != key:
                spent[grant] = str(row[0])
        return spent

    def spent_by(self, grant: str) -> str | None:
        """The key of the effect that consumed ``grant``, or None if it is unused."""
        row = self._db.fetchone("SELECT key FROM ledger_grants WHERE grant_id = ?", (grant,))
        return str(row[0]) if row else None

    def reserve(self, key: str, *, tool: str, thread_id: str, args: dict[str, Any],
                dims: Sequence[tuple[str, str]]) -> None:
        """Count an action decided to execute (an approved action on its way) before it starts."""
        nums = _totals.numbers(args)
        # Nothing once the action has its rows: an effect that started (or finished) meanwhile
        # keeps them as they are, whatever commits between a check and a write (a reservation
        # that reset them would let release() delete a started effect's total).
        self._db.write(lambda tx: _totals.insert_rows(tx, key, tool=tool, thread_id=thread_id, dims=dims,
                                                      nums=nums, state="reserved", move=False))

    def release(self, key: str) -> None:
        """Stop counting a reservation whose action did not go on to execute."""
        self._db.write(lambda tx: _totals.release(tx, key))

    def total(self, *, tools: Sequence[str], dim: str, val: str, window: int | None, measure: str | None,
              exclude: str, tx: Tx | None = None) -> float:
        """A running total of the counted tools' calls in one group and window (see :mod:`agent_kit._totals`)."""
        def run(t: Tx) -> float:
            return _totals.total(t, self._db.backend, tools=tools, dim=dim, val=val, after=_totals.since(window),
                                 measure=measure, exclude=exclude)

        return run(tx) if tx is not None else _totals.read(self._db, run)

    def counted(self, keys: Sequence[str], tx: Tx | None = None) -> set[str]:
        """Which of these action keys the totals already count."""
        if tx is not None:
            return _totals.present(tx, keys)
        return set(_totals.read(self._db, lambda t: _totals.present(t, keys)))

    def finish(self, key: str, *, result: Any = None, error: str | None = None,
               duration_ms: float | None = None) -> LedgerRecord:
        """Record the outcome: ``failed`` if ``error`` is given, else ``done`` with ``result``.

        A ``started``, ``unknown`` or ``failed`` record takes the outcome (a failed call may be
        retried); finishing a ``done`` record again with the same outcome returns it unchanged.

        Raises:
            LedgerError: the key is unknown, or already ``done`` with another outcome.
        """
        return self._db.write(lambda tx: self.finish_in(tx, key, result=result, error=error,
                                                        duration_ms=duration_ms))

    def finish_in(self, tx: Tx, key: str, *, result: Any = None, error: str | None = None,
                  duration_ms: float | None = None) -> LedgerRecord:
        """:meth:`finish` inside the caller's transaction (see :meth:`AuditLog.write`)."""
        status: LedgerStatus = "failed" if error is not None else "done"
        result_text = _json(result, "result")
        row = tx.fetchone(
            "UPDATE ledger SET status = ?, result = ?, error = ?, finished_at = ?, duration_ms = ? "
            "WHERE key = ? AND status IN ('started', 'unknown', 'failed') RETURNING " + _COLUMNS,
            (status, result_text, error, utc_now(), duration_ms, key))
        changed = row is not None
        if row is None:
            row = tx.fetchone(_SELECT + " WHERE key = ?", (key,))
        if row is None:
            raise LedgerError(f"no ledger record for key {key!r}: call begin() first")
        if not changed and (row[6], row[7], row[8]) != (status, result_text, error):
            raise LedgerError(
                f"ledger key {key!r} is already {row[6]}; refusing to record a second outcome")
        if changed:
            _totals.set_state(tx, key, status)
        return _record(row)

    def mark_unknown(self, key: str) -> LedgerRecord:
        """Mark a ``started`` record whose outcome was lost (its process died) as ``unknown``.

        A finished record is returned unchanged.

        Raises:
            LedgerError: the key is unknown.
        """

        def mark_in(tx: Tx) -> Row | None:
            if tx.execute("UPDATE ledger SET status = 'unknown' WHERE key = ? AND status = 'started'", (key,)):
                _totals.set_state(tx, key, "unknown")
            return tx.fetchone(_SELECT + " WHERE key = ?", (key,))

        row = self._db.write(mark_in)
        if row is None:
            raise LedgerError(f"no ledger record for key {key!r}")
        return _record(row)

    def get(self, key: str) -> LedgerRecord | None:
        """The record for ``key``, or None."""
        row = self._db.fetchone(_SELECT + " WHERE key = ?", (key,))
        return _record(row) if row else None

    def for_thread(self, thread_id: str) -> list[LedgerRecord]:
        """The thread's records, oldest first."""
        rows = self._db.fetchall(_SELECT + " WHERE thread_id = ? ORDER BY started_at, key", (thread_id,))
        return [_record(row) for row in rows]

    def mark_rolled_back(self, key: str, audit_seq: int) -> None:
        """Record that the action was rolled back (by the audit entry ``audit_seq``).

        The check and the update are one statement, so two concurrent rollbacks cannot both win.

        Raises:
            RollbackError: the action was already rolled back.
            LedgerError: the key is unknown.
        """
        self._db.write(lambda tx: self.mark_rolled_back_in(tx, key, audit_seq))

    def mark_rolled_back_in(self, tx: Tx, key: str, audit_seq: int) -> None:
        """:meth:`mark_rolled_back` inside the caller's transaction."""
        changed = tx.execute(
            "UPDATE ledger SET rolled_back_by = ? WHERE key = ? AND rolled_back_by IS NULL",
            (audit_seq, key))
        if changed:
            _totals.set_state(tx, key, "rolled_back")
            return
        row = tx.fetchone(_SELECT + " WHERE key = ?", (key,))
        if row is None:
            raise LedgerError(f"no ledger record for key {key!r}")
        record = _record(row)
        raise RollbackError(
            f"action {key!r} ({record.tool}) was already rolled back by audit entry {record.rolled_back_by}")


def _checked(record: LedgerRecord, key: str, action_hash: str, tool: str) -> LedgerRecord:
    if record.action_hash != action_hash:
        raise LedgerError(
            f"ledger key {key!r} is already used for action {record.action_hash[:12]} "
            f"({record.tool}); this call is action {action_hash[:12]} ({tool}): a key belongs to "
            "one action only, so derive it from the action hash")
    return record


def _json(value: Any, what: str) -> str:
    try:
        return canonical_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise LedgerError(f"ledger {what} is not JSON: {exc}") from None


def _record(row: Row) -> LedgerRecord:
    (key, thread_id, tool_call_id, tool, action_hash, args, status, result, error, started_at,
     finished_at, duration_ms, rolled_back_by) = row
    return LedgerRecord(
        key=key, thread_id=thread_id, tool_call_id=tool_call_id, tool=tool, action_hash=action_hash,
        args=json.loads(args), status=status, result=None if result is None else json.loads(result),
        error=error, started_at=started_at, finished_at=finished_at,
        duration_ms=None if duration_ms is None else float(duration_ms),
        rolled_back_by=None if rolled_back_by is None else int(rolled_back_by),
    )


def _create_sqlite_tables(db: sqlite_utils.Database) -> None:
    db["ledger"].create(  # type: ignore[union-attr]
        {"key": str, "thread_id": str, "tool_call_id": str, "tool": str, "action_hash": str,
         "args": str, "status": str, "result": str, "error": str, "started_at": str,
         "finished_at": str, "duration_ms": float, "rolled_back_by": int},
        pk="key", not_null={"thread_id", "tool_call_id", "tool", "action_hash", "args", "status",
                            "started_at"},
        if_not_exists=True)
    db["ledger"].create_index(["thread_id", "started_at"], index_name="ledger_thread",  # type: ignore[union-attr]
                              if_not_exists=True)
    db["ledger_grants"].create(  # type: ignore[union-attr]
        {"grant_id": str, "key": str, "spent_at": str}, pk="grant_id", not_null={"key", "spent_at"},
        if_not_exists=True)
    _totals.create_sqlite_tables(db)


def _create_postgres_tables(tx: Tx) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS ledger (key TEXT PRIMARY KEY, thread_id TEXT NOT NULL, "
        "tool_call_id TEXT NOT NULL, tool TEXT NOT NULL, action_hash TEXT NOT NULL, "
        "args TEXT NOT NULL, status TEXT NOT NULL, result TEXT, error TEXT, "
        "started_at TEXT NOT NULL, finished_at TEXT, duration_ms DOUBLE PRECISION, "
        "rolled_back_by BIGINT)")
    tx.execute("CREATE INDEX IF NOT EXISTS ledger_thread ON ledger (thread_id, started_at)")
    tx.execute("CREATE TABLE IF NOT EXISTS ledger_grants (grant_id TEXT PRIMARY KEY, key TEXT NOT NULL, "
               "spent_at TEXT NOT NULL)")
    _totals.create_postgres_tables(tx)
