"""Thread leases: one run (or resume) per thread at a time, across processes and machines.

LangGraph's checkpointers have no compare-and-set on the parent checkpoint, so two workers
resuming the same interrupt would both execute it. Whoever runs a thread first takes its lease;
the other gets :class:`~agent_kit.errors.RunBusyError`.

- SQLite: a row ``(thread_id, owner, token, expires_at)`` taken inside ``BEGIN IMMEDIATE``
  (so two processes cannot both see it free). A lease whose holder died expires after
  ``ttl_s`` and may then be taken over; a long run calls :meth:`Lease.renew`.
- Postgres: ``pg_try_advisory_lock`` on a connection kept open for the lease's life; the server
  frees it when that connection ends, so a dead holder never blocks the thread and ``ttl_s``
  does not apply. A row with the owner is kept beside it for the busy message.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._db import Database, Tx, utc_now
from .errors import RunBusyError

if TYPE_CHECKING:
    import psycopg
    import sqlite_utils

__all__ = ["Lease", "ThreadLeases"]


class Lease:
    """A held lease on one thread; a context manager that releases it on exit."""

    def __init__(self, leases: ThreadLeases, thread_id: str, owner: str, token: str,
                 expires_at: float | None, conn: psycopg.Connection[Any] | None = None) -> None:
        self.thread_id = thread_id
        self.owner = owner
        """Who holds it (host:pid:thread by default)."""
        self.token = token
        """Unique to this acquisition: only its holder can renew or release it."""
        self.expires_at = expires_at
        """Epoch seconds after which another process may take it over (None on Postgres)."""
        self._leases = leases
        self._conn = conn
        self._held = True

    @property
    def held(self) -> bool:
        """Whether this lease has not been released yet."""
        return self._held

    def renew(self, ttl_s: float = 300) -> None:
        """Push the expiry ``ttl_s`` seconds ahead.

        Raises:
            RunBusyError: the lease expired and another process took it over.
        """
        if self._conn is not None:
            return
        expires = time.time() + ttl_s
        changed = self._leases._db.execute(
            "UPDATE leases SET expires_at = ? WHERE thread_id = ? AND token = ?",
            (expires, self.thread_id, self.token))
        if not changed:
            self._held = False
            raise RunBusyError(f"the lease on thread {self.thread_id} expired and was taken over; "
                               "stop this run")
        self.expires_at = expires

    def release(self) -> None:
        """Give the lease back; releasing twice is harmless."""
        if not self._held:
            return
        self._held = False
        if self._conn is None:
            self._leases._db.execute("DELETE FROM leases WHERE thread_id = ? AND token = ?",
                                     (self.thread_id, self.token))
            return
        try:
            self._conn.execute("DELETE FROM leases WHERE thread_id = %s AND token = %s",
                               (self.thread_id, self.token))
            # Unlock explicitly: the server frees a closed session's locks only some time after
            # the client has gone, and the next call on this thread must find it free.
            self._conn.execute("SELECT pg_advisory_unlock(%s)",
                               (self._leases._db.lock_key(f"lease\x1f{self.thread_id}"),))
        finally:
            self._conn.close()  # ends the session, which frees the advisory lock

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease(thread_id={self.thread_id!r}, owner={self.owner!r}, held={self._held})"


class ThreadLeases:
    """Leases of one store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, thread_id: str, *, owner: str | None = None, ttl_s: float = 300) -> Lease:
        """Take the lease on ``thread_id`` now, or fail at once.

        Raises:
            RunBusyError: another holder has it (and, on SQLite, it has not expired).
        """
        owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        token = uuid.uuid4().hex
        if self._db.backend == "postgres":
            return self._acquire_postgres(thread_id, owner, token)

        def take(tx: Tx) -> float:
            now = time.time()
            row = tx.fetchone("SELECT owner, expires_at FROM leases WHERE thread_id = ?", (thread_id,))
            if row is not None and float(row[1]) > now and not _holder_died(str(row[0])):
                raise _busy(thread_id, row[0])
            expires = now + ttl_s
            tx.execute(
                "INSERT INTO leases (thread_id, owner, token, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (thread_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (thread_id, owner, token, utc_now(), expires))
            return expires

        return Lease(self, thread_id, owner, token, self._db.write(take))

    def holder(self, thread_id: str) -> str | None:
        """The recorded owner of the thread's lease, if one is recorded (it may have expired)."""
        row = self._db.fetchone("SELECT owner FROM leases WHERE thread_id = ?", (thread_id,))
        return str(row[0]) if row else None

    def _acquire_postgres(self, thread_id: str, owner: str, token: str) -> Lease:
        conn = self._db.raw_postgres()
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)",
                               (self._db.lock_key(f"lease\x1f{thread_id}"),)).fetchone()
            if not got or not got[0]:
                raise _busy(thread_id, self.holder(thread_id))
            conn.execute(
                "INSERT INTO leases (thread_id, owner, token, acquired_at, expires_at) "
                "VALUES (%s, %s, %s, %s, NULL) ON CONFLICT (thread_id) DO UPDATE SET "
                "owner = excluded.owner, token = excluded.token, acquired_at = excluded.acquired_at, "
                "expires_at = NULL", (thread_id, owner, token, utc_now()))
        except BaseException:
            conn.close()
            raise
        return Lease(self, thread_id, owner, token, None, conn)


def _holder_died(owner: str) -> bool:
    """Whether ``owner`` (``host:pid[:thread]``) is a process of this host that no longer exists:
    its lease is taken over at once instead of blocking the thread until it expires."""
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _busy(thread_id: str, owner: object) -> RunBusyError:
    return RunBusyError(f"thread {thread_id} is being run by another process (owner {owner or 'unknown'}); "
                        "try again")


def _create_sqlite_tables(db: sqlite_utils.Database) -> None:
    db["leases"].create(  # type: ignore[union-attr]
        {"thread_id": str, "owner": str, "token": str, "acquired_at": str, "expires_at": float},
        pk="thread_id", not_null={"owner", "token", "acquired_at"}, if_not_exists=True)


def _create_postgres_tables(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS leases (thread_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
               "token TEXT NOT NULL, acquired_at TEXT NOT NULL, expires_at DOUBLE PRECISION)")
