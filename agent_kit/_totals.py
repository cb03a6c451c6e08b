"""Running totals over the execution ledger, for policy aggregates (``aggregates.<name>``).

Every action that reaches the ledger leaves one row per *dimension* it can be grouped by: its
thread, each scalar argument, each scalar trusted-context value, and ``all``. A row carries the
call's numeric arguments and a state: ``reserved`` (decided to execute, not yet started: an
approved action on its way), ``started`` / ``done`` / ``unknown`` (the effect may have happened),
``failed`` and ``rolled_back`` (it did not, or was undone). A total is one indexed query
``(dim, val, at)``: the sum of one argument (or the count) of the rows of the counted tools in the
group and the window whose state may have paid.

Grouping by every dimension up front means a total added to the policy later still sees the
history; storing the group values (not the aggregate's name) means a renamed aggregate does too.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._db import Database, Tx, utc_now

if TYPE_CHECKING:
    import sqlite_utils

COUNTED_STATES = ("reserved", "started", "done", "unknown")
"""States whose effect happened, may have happened, or is approved and on its way."""

_MAX_VALUE_CHARS = 200


def dim_value(value: Any) -> str:
    """A group value as stored: canonical JSON (ASCII, so NUL and surrogates are escaped), hashed when long."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > _MAX_VALUE_CHARS:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def dimensions(thread_id: str, args: Mapping[str, Any], context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (dimension, value) one call can be grouped by."""
    dims = [("all", ""), ("thread", dim_value(thread_id))]
    for root, values in (("args", args), ("context", context)):
        for k, v in values.items():
            if v is None or isinstance(v, (str, int, float, bool)):
                dims.append((f"{root}.{k}", dim_value(v)))
    return dims


def numbers(args: Mapping[str, Any]) -> dict[str, float]:
    """The call's numeric arguments (what a sum can add up)."""
    return {k: float(v) for k, v in args.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def since(window: int | None) -> str:
    """The start of a window ending now, in the stored timestamp format ('' for all time)."""
    if window is None:
        return ""
    return (datetime.now(UTC) - timedelta(seconds=window)).isoformat(timespec="microseconds")


def insert_rows(tx: Tx, key: str, *, tool: str, thread_id: str, dims: Iterable[tuple[str, str]],
                nums: Mapping[str, float], state: str, move: bool = True) -> None:
    """Record one action's rows (kept if already there, then moved to ``state``). With
    ``move=False`` (a reservation) nothing is written once the action has its "all" row: what
    is there stays exactly as it is."""
    at, nums_text = utc_now(), json.dumps(dict(nums), sort_keys=True)
    first: dict[str, str] = {}
    for dim, val in dims:
        first.setdefault(dim, val)  # a dimension given twice keeps its first value, as one row
    rows = list(first.items())

    def insert(part: list[tuple[str, str]], *, counted: bool = True) -> int:
        """Rows of ``part`` not there yet, in one statement; how many went in (if ``counted``)."""
        if not part:
            return 0
        sql = ("INSERT INTO ledger_totals (key, dim, val, tool, thread_id, nums, at, state) VALUES "
               + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?)" for _ in part) + " ON CONFLICT (key, dim) DO NOTHING")
        params = [v for dim, val in part for v in (key, dim, val, tool, thread_id, nums_text, at, state)]
        if not counted:
            tx.send(sql, params)
            return 0
        return tx.execute(sql, params)

    if not move:
        if "all" not in first:
            insert(rows, counted=False)
            return
        # Rows already there stay exactly as they are and none is added beside them (a late
        # reservation under another context must not add a counted row to a call that started
        # or failed): the "all" row goes first, the others only if it went in. A concurrent
        # writer's uncommitted "all" row makes this insert wait for it, then do nothing.
        if insert([("all", first["all"])]):
            insert([(dim, val) for dim, val in rows if dim != "all"])
        return
    # The rows not there yet go in; every row of the key then has ``state`` (those just put in have
    # it already). Neither statement's count is read, so both go out with the transaction's next.
    insert(rows, counted=False)
    tx.send("UPDATE ledger_totals SET state = ? WHERE key = ? AND state <> ?", (state, key, state))


def set_state(tx: Tx, key: str, state: str) -> None:
    tx.send("UPDATE ledger_totals SET state = ? WHERE key = ?", (state, key))


def release(tx: Tx, key: str) -> None:
    """Drop a reservation that did not go on to execute."""
    tx.execute("DELETE FROM ledger_totals WHERE key = ? AND state = 'reserved'", (key,))


def total(tx: Tx, backend: str, *, tools: Sequence[str], dim: str, val: str, after: str,
          measure: str | None, exclude: str) -> float:
    """The sum of ``measure`` (or the count, for None) over the group, the window and the tools."""
    marks = ", ".join("?" for _ in tools)
    states = ", ".join(f"'{s}'" for s in COUNTED_STATES)
    if measure is None:
        expr, params = "COUNT(*)", []
    elif backend == "postgres":
        expr, params = "SUM(CAST(CAST(nums AS jsonb) ->> ? AS DOUBLE PRECISION))", [measure]
    else:
        expr, params = "SUM(json_extract(nums, ?))", ['$."' + measure + '"']
    row = tx.fetchone(
        f"SELECT {expr} FROM ledger_totals WHERE dim = ? AND val = ? AND at >= ? AND tool IN ({marks}) "
        f"AND state IN ({states}) AND key <> ?",
        (*params, dim, val, after, *tools, exclude))
    return float(row[0]) if row and row[0] is not None else 0.0


def present(tx: Tx, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` already have rows (so a sibling is not counted twice)."""
    if not keys:
        return set()
    marks = ", ".join("?" for _ in keys)
    return {r[0] for r in tx.fetchall(f"SELECT DISTINCT key FROM ledger_totals WHERE dim = 'all' AND key IN ({marks})",
                                      tuple(keys))}


def read(db: Database, fn: Any) -> Any:
    """Run a read of totals outside a write transaction."""
    return fn(Tx(db.connection(), db.backend))


def create_sqlite_tables(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS ledger_totals (key TEXT NOT NULL, dim TEXT NOT NULL, val TEXT NOT NULL, "
               "tool TEXT NOT NULL, thread_id TEXT NOT NULL, nums TEXT NOT NULL, at TEXT NOT NULL, "
               "state TEXT NOT NULL, PRIMARY KEY (key, dim))")
    db.execute("CREATE INDEX IF NOT EXISTS ledger_totals_group ON ledger_totals (dim, val, at)")


def create_postgres_tables(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS ledger_totals (key TEXT NOT NULL, dim TEXT NOT NULL, val TEXT NOT NULL, "
               "tool TEXT NOT NULL, thread_id TEXT NOT NULL, nums TEXT NOT NULL, at TEXT NOT NULL, "
               "state TEXT NOT NULL, PRIMARY KEY (key, dim))")
    tx.execute("CREATE INDEX IF NOT EXISTS ledger_totals_group ON ledger_totals (dim, val, at)")
