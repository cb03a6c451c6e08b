"""Checkpoint retention: keep what a thread needs to continue, drop the history behind it.

LangGraph saves a checkpoint per super-step, and ``SqliteSaver`` stores the whole state in each
one, so a 200-turn conversation grows to ~60 MB. Nothing but time travel reads the old ones:

- a resume (``Command(resume=...)``) and ``get_state`` load the **latest** checkpoint of each
  namespace and the pending writes filed under it (the interrupt, and the writes of sibling
  tasks that already finished in that step). Interrupts of older checkpoints were answered
  already: a thread waits only on the interrupts of its latest checkpoint;
- the parent is read only for checkpoints older than format v4 (pending ``Send`` s lived in the
  parent's writes). Retention runs after every invoke, so the head is always a fresh v4 one.

:func:`prune_checkpoints` therefore keeps the ``keep_latest`` newest checkpoints of each
namespace with their writes (and, on Postgres, every blob they reference) and deletes the rest,
in one transaction. Only checkpoints *older* than the kept ones are deleted (a cut-off by id:
checkpoint ids grow with time), so a run that saves a newer one meanwhile is never touched.
A kept checkpoint whose parent is gone gets ``parent_checkpoint_id = NULL``, as LangGraph's own
``PostgresSaver.prune`` does. Time travel to a pruned checkpoint is no longer possible: that is
the point. Threads that use a ``DeltaChannel`` are refused (their value is rebuilt from older
checkpoints).

SQLite never gives freed pages back to the file system by itself; they are reused, so with
pruning after each turn a file stops growing at its working size. :func:`reclaim_space` also
runs ``PRAGMA incremental_vacuum`` (when the file was created with ``auto_vacuum=INCREMENTAL``)
and truncates the WAL; ``full=True`` runs ``VACUUM`` (rewrites the whole file: seconds on a large
one, and it needs exclusive access). On Postgres, autovacuum reuses the space.

:class:`RetentionPolicy` bundles both for :class:`agent_kit.AgentRuntime`, which applies it to a
thread after each call, while it holds the thread's lease.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from ._db import Tx
from .errors import AgentKitError

__all__ = ["RetentionPolicy", "checkpoint_count", "prune_checkpoints", "prune_in", "reclaim_space"]

_log = logging.getLogger(__name__)

_DELTA_KEYS = ("counters_since_delta_snapshot", "delta_writes_versioned")


def _saver(target: Any) -> BaseCheckpointSaver[Any]:
    """The checkpointer behind a Store, a compiled graph or a checkpointer."""
    if isinstance(target, BaseCheckpointSaver):
        return target
    if hasattr(target, "checkpointer") and callable(target.checkpointer):  # agent_kit Store
        return _saver(target.checkpointer())
    saver = getattr(target, "checkpointer", None)  # a compiled graph
    if isinstance(saver, BaseCheckpointSaver):
        return saver
    raise AgentKitError(
        f"cannot prune checkpoints of {type(target).__name__}: pass an agent_kit Store, a SqliteSaver "
        "or a PostgresSaver (or a graph compiled with one)"
    )


def _kind(saver: BaseCheckpointSaver[Any]) -> str:
    name = type(saver).__name__
    bases = {c.__name__ for c in type(saver).__mro__}  # subclasses too (the store's guarded saver)
    if "SqliteSaver" in bases:
        return "sqlite"
    if "PostgresSaver" in bases:
        return "postgres"
    raise AgentKitError(
        f"checkpoint retention supports SqliteSaver and PostgresSaver, not {name}; "
        "use the store's checkpointer (Store.checkpointer())"
    )


def prune_checkpoints(checkpointer_or_store: Any, thread_id: str, *, keep_latest: int = 1) -> int:
    """Delete a thread's old checkpoints, keeping what resume and ``get_state`` read.

    Keeps the ``keep_latest`` newest checkpoints of each namespace with their pending writes
    (the pending interrupts among them) and, on Postgres, the blobs they reference.

    Args:
        checkpointer_or_store: an agent_kit ``Store``, a ``SqliteSaver`` / ``PostgresSaver``, or
            a graph compiled with one.
        thread_id: the thread to prune.
        keep_latest: how many of the newest checkpoints of each namespace to keep (>= 1).

    Returns:
        How many checkpoints were deleted.

    Raises:
        AgentKitError: ``keep_latest`` < 1, an unsupported checkpointer, or a thread that uses a
            ``DeltaChannel`` (nothing is deleted).
    """
    if not isinstance(keep_latest, int) or isinstance(keep_latest, bool) or keep_latest < 1:
        raise AgentKitError(f"keep_latest must be an integer >= 1 (the latest checkpoint is always kept), "
                            f"got {keep_latest!r}")
    saver = _saver(checkpointer_or_store)
    if _kind(saver) == "sqlite":
        return _prune_sqlite(saver, str(thread_id), keep_latest)
    return _prune_postgres(saver, str(thread_id), keep_latest)


def checkpoint_count(checkpointer_or_store: Any, thread_id: str | None = None) -> int:
    """How many checkpoint rows a thread (or the whole store) has."""
    saver = _saver(checkpointer_or_store)
    where, params = ("WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
    if _kind(saver) == "sqlite":
        with saver.cursor(transaction=False) as cur:  # type: ignore[attr-defined]
            return int(cur.execute(f"SELECT count(*) FROM checkpoints {where}", params).fetchone()[0])
    with saver._cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f"SELECT count(*) AS n FROM checkpoints {where.replace('?', '%s')}", params)
        return int(cur.fetchone()["n"])


# -- SQLite ---------------------------------------------------------------------------------------

def _prune_sqlite(saver: Any, thread_id: str, keep: int) -> int:
    with saver.lock:
        saver.setup()
        conn: sqlite3.Connection = saver.conn
        if conn.in_transaction:  # the saver commits after each statement; be sure we start clean
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock first: the cut-off and the deletes agree
        try:
            deleted = _prune_sqlite_in(conn, thread_id, keep)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return deleted


def _prune_sqlite_in(conn: sqlite3.Connection, thread_id: str, keep: int) -> int:
    delta = conn.execute(
        "SELECT 1 FROM checkpoints WHERE thread_id = ? AND ("
        + " OR ".join(f"json_extract(CAST(metadata AS TEXT), '$.{k}') IS NOT NULL" for k in _DELTA_KEYS)
        + ") LIMIT 1", (thread_id,)).fetchone()
    if delta:
        raise AgentKitError(f"thread {thread_id!r} uses a DeltaChannel; its state is rebuilt from older "
                            "checkpoints, so they are not pruned")
    deleted = 0
    namespaces = [r[0] for r in conn.execute(
        "SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = ?", (thread_id,))]
    for ns in namespaces:
        row = conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
            "ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?", (thread_id, ns, keep - 1)).fetchone()
        if row is None:
            continue
        cutoff = row[0]
        args = (thread_id, ns, cutoff)
        conn.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?", args)
        deleted += conn.execute(
            "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?", args).rowcount
        conn.execute("UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ? AND checkpoint_ns = ? "
                     "AND parent_checkpoint_id < ?", args)
    return deleted


# -- Postgres -------------------------------------------------------------------------------------

def _prune_postgres(saver: Any, thread_id: str, keep: int) -> int:
    from agent_kit._compat import postgres_cursor

    with postgres_cursor(saver) as cur:
        return _prune_postgres_on(cur.connection, thread_id, keep, prepare=None)


def _prune_sql() -> str:
    """One statement that prunes a thread on Postgres: every part reads the same snapshot, so rows
    a concurrent run commits meanwhile are neither read nor deleted, and a thread that uses a
    ``DeltaChannel`` is left untouched (the statement reports it)."""
    from agent_kit._compat import prune_delta_threads_sql

    return f"""
WITH delta AS ({prune_delta_threads_sql()}),
cut AS (
  SELECT ns.checkpoint_ns,
         (SELECT c.checkpoint_id FROM checkpoints c WHERE c.thread_id = %(t)s AND c.checkpoint_ns = ns.checkpoint_ns
          ORDER BY c.checkpoint_id DESC LIMIT 1 OFFSET %(skip)s) AS cutoff
  FROM (SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = %(t)s) ns
  WHERE NOT EXISTS (SELECT 1 FROM delta)),
dw AS (
  DELETE FROM checkpoint_writes w USING cut
  WHERE w.thread_id = %(t)s AND w.checkpoint_ns = cut.checkpoint_ns AND w.checkpoint_id < cut.cutoff),
dc AS (
  DELETE FROM checkpoints c USING cut
  WHERE c.thread_id = %(t)s AND c.checkpoint_ns = cut.checkpoint_ns AND c.checkpoint_id < cut.cutoff
  RETURNING c.checkpoint_ns, c.checkpoint -> 'channel_versions' AS versions),
up AS (
  UPDATE checkpoints c SET parent_checkpoint_id = NULL FROM cut
  WHERE c.thread_id = %(t)s AND c.checkpoint_ns = cut.checkpoint_ns AND c.checkpoint_id >= cut.cutoff
    AND c.parent_checkpoint_id < cut.cutoff),
freed AS (
  SELECT dc.checkpoint_ns, v.key AS channel, v.value AS version
  FROM dc CROSS JOIN LATERAL jsonb_each_text(dc.versions) AS v),
kept AS (
  SELECT c.checkpoint_ns, v.key AS channel, v.value AS version
  FROM checkpoints c JOIN cut ON c.checkpoint_ns = cut.checkpoint_ns
  CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS v
  WHERE c.thread_id = %(t)s AND c.checkpoint_id >= cut.cutoff),
db AS (
  DELETE FROM checkpoint_blobs b USING (SELECT * FROM freed EXCEPT SELECT * FROM kept) AS g
  WHERE b.thread_id = %(t)s AND b.checkpoint_ns = g.checkpoint_ns AND b.channel = g.channel
    AND b.version = g.version)
SELECT (SELECT count(*) FROM dc), EXISTS (SELECT 1 FROM delta)"""


def _prune_postgres_on(conn: Any, thread_id: str, keep: int, *, prepare: bool | None = True) -> int:
    """Prune on a psycopg connection (in its transaction, if one is open): one statement.

    Blobs are shared between checkpoints (a channel's value is stored once per version): only
    those no remaining checkpoint of the thread references are freed.
    """
    from psycopg.rows import tuple_row

    sql = _prune_sql().replace("ANY(%s)", "ANY(%(ts)s)")
    with conn.cursor(row_factory=tuple_row) as cur:
        # On agent_kit's own session, prepared at first use: planning this statement costs more
        # than running it (~1.3 ms against ~0.3 ms here), and the lease session that runs it after
        # each call keeps one plan for all threads (plan_cache_mode, see agent_kit.leases). On a
        # saver's connection (``prepare=None``) psycopg's own rule applies, as for its statements.
        cur.execute(sql, {"t": thread_id, "ts": [thread_id], "skip": keep - 1}, prepare=prepare)
        deleted, delta = cur.fetchone()
    if delta:
        raise AgentKitError(f"thread {thread_id!r} uses a DeltaChannel; its state is rebuilt from "
                            "older checkpoints, so they are not pruned")
    return int(deleted)


def prune_in(tx: Tx, thread_id: str, *, keep_latest: int = 1) -> int:
    """:func:`prune_checkpoints` inside the caller's transaction on the store's own database
    (whose checkpointer is the store's): the runtime folds it into the transaction that gives the
    thread's lease back. Returns how many checkpoints were deleted."""
    if tx.backend == "sqlite":
        return _prune_sqlite_in(tx.connection, str(thread_id), keep_latest)
    return _prune_postgres_on(tx.pipelined_connection, str(thread_id), keep_latest)


# -- space ----------------------------------------------------------------------------------------

def reclaim_space(checkpointer_or_store: Any, *, full: bool = False) -> None:
    """Give freed SQLite pages back: incremental vacuum (if enabled), WAL truncation, or ``VACUUM``.

    Args:
        full: run ``VACUUM`` (rewrites the file; needs no other open transaction on it).

    A no-op on Postgres, where autovacuum makes freed space reusable.
    """
    saver: Any = _saver(checkpointer_or_store)  # a SqliteSaver: its lock and connection
    if _kind(saver) != "sqlite":
        return
    with saver.lock:
        conn: sqlite3.Connection = saver.conn
        if conn.in_transaction:
            conn.commit()
        if full:
            conn.execute("VACUUM")
        elif conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:  # INCREMENTAL
            conn.execute("PRAGMA incremental_vacuum").fetchall()
            conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


@dataclass(frozen=True)
class RetentionPolicy:
    """What the runtime keeps of a thread's checkpoints after each call.

    ``RetentionPolicy()`` keeps the latest checkpoint (and with it every pending interrupt);
    ``RetentionPolicy(keep_latest=20)`` keeps some time-travel history.
    """

    keep_latest: int = 1
    """Newest checkpoints kept per thread and namespace (>= 1)."""
    reclaim_every: int | None = 50
    """Run :func:`reclaim_space` (incremental vacuum, WAL truncation) every this many prunes
    in this process; None: never."""
    _calls: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.keep_latest, int) or self.keep_latest < 1:
            raise AgentKitError(f"keep_latest must be an integer >= 1, got {self.keep_latest!r}")
        if self.reclaim_every is not None and self.reclaim_every < 1:
            raise AgentKitError(f"reclaim_every must be >= 1 or None, got {self.reclaim_every!r}")

    def apply_in(self, tx: Tx, thread_id: str) -> int:
        """Prune one thread inside the caller's transaction on the store's own database (see
        :func:`prune_in`); returns the checkpoints deleted. Space is reclaimed apart from it, when
        :meth:`reclaim_due` says so."""
        return prune_in(tx, thread_id, keep_latest=self.keep_latest)

    def reclaim_due(self) -> bool:
        """Count one prune; whether this one should be followed by :func:`reclaim_space`."""
        return self.reclaim_every is not None and next(self._calls) % self.reclaim_every == 0

    def apply(self, checkpointer_or_store: Any, thread_id: str) -> int:
        """Prune one thread (and now and then reclaim space); returns the checkpoints deleted.

        A database that is busy (another process writing, or a concurrent prune of the same
        thread on Postgres) skips this round: the next call prunes what is left. Any other error
        is raised.
        """
        try:
            deleted = prune_checkpoints(checkpointer_or_store, thread_id, keep_latest=self.keep_latest)
            if self.reclaim_due():
                reclaim_space(checkpointer_or_store)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            _log.info("checkpoint retention skipped for thread %s: %s", thread_id, exc)
            return 0
        except Exception as exc:
            if type(exc).__name__ not in ("SerializationFailure", "DeadlockDetected"):
                raise
            _log.info("checkpoint retention skipped for thread %s: %s", thread_id, exc)
            return 0
        return deleted
