"""Thread leases: one run (or resume, or rollback) per thread at a time, across processes and machines.

LangGraph's checkpointers have no compare-and-set on the parent checkpoint, so two workers
resuming the same interrupt would both execute it. Whoever runs a thread first takes its lease;
the other gets :class:`~agent_kit.errors.RunBusyError`.

Every owner names its process: ``host:pid/start:thread`` (``start``: the process's start time
from ``/proc``, so a reused pid is not mistaken for the holder), then what it is doing
(``run``, ``rollback by lee``...). A lease therefore matches reality:

- SQLite: a row ``(thread_id, owner, token, expires_at)`` taken inside ``BEGIN IMMEDIATE``
  (so two processes cannot both see it free). A holder on this host that no longer exists is
  taken over at once; one that is alive never is, even past its expiry. A holder on another
  host (a shared file system) is taken over once its lease expired. While a lease is held, a
  heartbeat thread of the holding store renews it every ``ttl_s / 3``, so a turn longer than
  the TTL keeps it.
- Postgres: ``pg_try_advisory_lock`` on a session kept for the lease's life; the server
  frees it when that session ends (a killed holder's socket is closed by its kernel; a dead
  machine is found by TCP keepalives within seconds), so ``ttl_s`` does not apply. The
  heartbeat pings that session and marks the lease lost if it broke. A row with the owner is
  kept beside it for the busy message. Taking a lease is one statement (lock and row), giving it
  back another (row and unlock); the session then waits, holding nothing, for the process's next
  lease (a few are kept), so the hot path opens no session.

``ttl_s`` defaults to ``AGENT_KIT_LEASE_TTL`` (seconds), else 30.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._db import Database, Tx, pg_transaction, utc_now
from .errors import RunBusyError, StorageError

if TYPE_CHECKING:
    import psycopg
    import sqlite_utils

__all__ = ["DEFAULT_TTL_S", "Lease", "ThreadLeases", "process_identity"]

DEFAULT_TTL_S = 30.0
"""Lease time-to-live when neither an argument nor ``AGENT_KIT_LEASE_TTL`` gives one."""

# Settings of the lease's own Postgres session, given when it connects (no statement, no
# transaction of their own): a dead client machine is noticed by the server within about 11 s, and
# no idle timeout ends a session that holds a lease on purpose.
_PG_SESSION = (("tcp_keepalives_idle", "5"), ("tcp_keepalives_interval", "2"), ("tcp_keepalives_count", "3"),
               ("idle_session_timeout", "0"),
               # The lease row only names the holder for the busy message; the advisory lock is the
               # lease, and a server crash ends it anyway. So its writes do not wait for the WAL
               # flush (~4 ms a commit here); work handed to on_release(durable=True) does.
               ("synchronous_commit", "off"),
               # Its statements (take, give back, and the retention and inbox work folded into the
               # give-back) each read one thread through an index: a plan made once for any thread
               # is right, and planning the prune again for every thread cost ~1 ms a call.
               ("plan_cache_mode", "force_generic_plan"))
_POOL_SIZE = 4
"""Idle lease sessions a process keeps: taking a lease costs one statement, not a new session."""
_TAKE = ("WITH got AS (SELECT pg_try_advisory_lock(%s) AS ok) "
         "INSERT INTO leases (thread_id, owner, token, acquired_at, expires_at) "
         "SELECT %s, %s, %s, %s, NULL FROM got WHERE got.ok ON CONFLICT (thread_id) DO UPDATE SET "
         "owner = excluded.owner, token = excluded.token, acquired_at = excluded.acquired_at, "
         "expires_at = NULL RETURNING 1")
_RELEASE = ("WITH gone AS (DELETE FROM leases WHERE thread_id = %s AND token = %s) "
            "SELECT pg_advisory_unlock(%s)")


def process_identity() -> str:
    """``host:pid/start:thread`` of the calling thread (``/start`` where ``/proc`` gives it)."""
    start = _start_time(os.getpid())
    pid = f"{os.getpid()}/{start}" if start else str(os.getpid())
    return f"{socket.gethostname()}:{pid}:{threading.get_ident()}"


def default_ttl() -> float:
    """``AGENT_KIT_LEASE_TTL`` as seconds, else :data:`DEFAULT_TTL_S`."""
    raw = os.environ.get("AGENT_KIT_LEASE_TTL")
    if raw is None or not raw.strip():
        return DEFAULT_TTL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise StorageError(f"AGENT_KIT_LEASE_TTL must be a number of seconds > 0, got {raw!r}")
    return value


class Lease:
    """A held lease on one thread; a context manager that releases it on exit."""

    def __init__(self, leases: ThreadLeases, thread_id: str, owner: str, token: str,
                 expires_at: float | None, ttl_s: float, conn: psycopg.Connection[Any] | None = None) -> None:
        self.thread_id = thread_id
        self.owner = owner
        """Who holds it: ``host:pid/start:thread`` and what for."""
        self.token = token
        """Unique to this acquisition: only its holder can renew or release it."""
        self.expires_at = expires_at
        """Epoch seconds after which a holder on another host may be taken over (None on Postgres)."""
        self.ttl_s = ttl_s
        self.renewals = 0
        """How many times the heartbeat (or :meth:`renew`) pushed the expiry ahead."""
        self._leases = leases
        self._conn = conn
        self._held = True
        self._lost = False
        self._lock = threading.Lock()  # the heartbeat and the holder share the Postgres connection
        self._on_release: list[Callable[[Tx], object]] = []
        self._durable = False

    @property
    def held(self) -> bool:
        """Whether this lease has not been released (or lost) yet."""
        return self._held

    @property
    def lost(self) -> bool:
        """Whether the lease was found taken over or its database session broke while held."""
        return self._lost

    def check(self) -> None:
        """Raise if the lease was lost while held.

        Raises:
            RunBusyError: the lease expired and was taken over, or its session broke.
        """
        if self._lost:
            raise RunBusyError(f"the lease on thread {self.thread_id} was lost while this process held it "
                               "(taken over, or its database session ended); stop this run and try again",
                               thread_id=self.thread_id, owner=self.owner)

    def renew(self, ttl_s: float | None = None) -> None:
        """Push the expiry ``ttl_s`` (default: the lease's TTL) seconds ahead; on Postgres, check
        that the session holding the lock is still there.

        Raises:
            RunBusyError: the lease was taken over, or (Postgres) its session broke.
        """
        with self._lock:
            if not self._held:
                self.check()
                return
            if self._conn is not None:
                try:
                    self._conn.execute("SELECT 1")
                except Exception:  # noqa: BLE001 - any failure means the lock may be gone
                    self._lose()
                    self.check()
                self.renewals += 1
                return
            ttl = self.ttl_s if ttl_s is None else ttl_s
            expires = time.time() + ttl
            changed = self._leases._db.execute(
                "UPDATE leases SET expires_at = ? WHERE thread_id = ? AND token = ?",
                (expires, self.thread_id, self.token))
            if not changed:
                self._lose()
                raise RunBusyError(f"the lease on thread {self.thread_id} expired and was taken over; "
                                   "stop this run", thread_id=self.thread_id)
            self.expires_at = expires
            self.renewals += 1

    def _lose(self) -> None:
        self._lost, self._held = True, False
        self._leases._forget(self)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def on_release(self, work: Callable[[Tx], object], *, durable: bool = True) -> None:
        """Run ``work(tx)`` in the transaction that gives the lease back, while it is still held:
        writes that close a turn (the inbox sweep, checkpoint retention) cost no transaction of
        their own. Work runs only if the lease is still held then (never after a takeover). If
        that transaction fails, the lease is given back without it and the error is raised.

        Args:
            durable: whether the work must survive a crash of the database server once the
                lease is given back. ``False`` (work that is redone if lost, such as pruning old
                checkpoints) lets that commit return before Postgres flushes its WAL.
        """
        self._on_release.append(work)
        self._durable = self._durable or durable

    def release(self) -> None:
        """Give the lease back; releasing twice (or after it was lost) is harmless."""
        with self._lock:
            work, self._on_release = self._on_release, []
            if not self._held:
                return
            self._held = False
            self._leases._forget(self)
            if self._conn is None:
                self._release_sqlite(work)
                return
            conn, self._conn = self._conn, None
            args = (self.thread_id, self.token, self._leases._db.lock_key(f"lease\x1f{self.thread_id}"))
            failure: Exception | None = None
            try:
                # One statement: the row goes and the lock is freed explicitly (the server frees a
                # closed session's locks only some time after the client has gone, and the next
                # call on this thread must find it free at once).
                if work:
                    try:
                        with pg_transaction(conn) as tx:
                            if self._durable:
                                tx.send("SET LOCAL synchronous_commit = on")
                            for step in work:
                                step(tx)
                            unlocked = conn.execute(_RELEASE, args).fetchone()
                    except Exception as exc:  # noqa: BLE001 - rolled back: give the lease back without it
                        failure = exc
                        unlocked = conn.execute(_RELEASE, args).fetchone()
                else:
                    unlocked = conn.execute(_RELEASE, args).fetchone()
            except BaseException:
                conn.close()  # ends the session, which frees the advisory lock
                raise
            self._leases._idle(conn, clean=bool(unlocked and unlocked[0]))
            if failure is not None:
                raise failure

    def _release_sqlite(self, work: list[Callable[[Tx], object]]) -> None:
        db, args = self._leases._db, (self.thread_id, self.token)

        def give_back(tx: Tx) -> None:
            if tx.fetchone("SELECT 1 FROM leases WHERE thread_id = ? AND token = ?", args) is not None:
                for step in work:
                    step(tx)
                tx.execute("DELETE FROM leases WHERE thread_id = ? AND token = ?", args)

        if not work:
            db.execute("DELETE FROM leases WHERE thread_id = ? AND token = ?", args)
            return
        try:
            db.write(give_back)
        except Exception:
            db.execute("DELETE FROM leases WHERE thread_id = ? AND token = ?", args)
            raise

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease(thread_id={self.thread_id!r}, owner={self.owner!r}, held={self._held})"


class ThreadLeases:
    """Leases of one store, and the heartbeat that renews those this process holds.

    Args:
        db: the store's database.
        ttl_s: default time-to-live of a lease (default: :func:`default_ttl`).
    """

    def __init__(self, db: Database, ttl_s: float | None = None) -> None:
        self._db = db
        self.ttl_s = ttl_s if ttl_s is not None else default_ttl()
        """Time-to-live of new leases, in seconds; the heartbeat renews every third of it."""
        self._held: dict[str, Lease] = {}
        self._beat_lock = threading.Lock()
        self._wake = threading.Event()
        self._beat: threading.Thread | None = None
        self._beat_pid = 0
        self._closed = False
        self._pool: list[psycopg.Connection[Any]] = []
        self._pool_pid = os.getpid()
        self._pool_lock = threading.Lock()

    def acquire(self, thread_id: str, *, owner: str | None = None, ttl_s: float | None = None) -> Lease:
        """Take the lease on ``thread_id`` now, or fail at once. The heartbeat renews it until released.

        Args:
            owner: what the holder is doing (``"run"``, ``"rollback by lee"``); the recorded
                owner is always this process's ``host:pid/start:thread`` followed by it.
            ttl_s: this lease's time-to-live (default: :attr:`ttl_s`).

        Raises:
            RunBusyError: another holder has it (alive, or on another host and not expired).
        """
        ttl = self.ttl_s if ttl_s is None else ttl_s
        who = process_identity() + (f" {owner}" if owner else "")
        token = uuid.uuid4().hex
        if self._db.backend == "postgres":
            lease = self._acquire_postgres(thread_id, who, token, ttl)
        else:
            def take(tx: Tx) -> float:
                now = time.time()
                row = tx.fetchone("SELECT owner, expires_at FROM leases WHERE thread_id = ?", (thread_id,))
                if row is not None and not _free(str(row[0]), float(row[1]), now):
                    raise _busy(thread_id, row[0])
                expires = now + ttl
                tx.execute(
                    "INSERT INTO leases (thread_id, owner, token, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (thread_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
                    "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                    (thread_id, who, token, utc_now(), expires))
                return expires

            lease = Lease(self, thread_id, who, token, self._db.write(take), ttl)
        if ttl > 0:
            self._track(lease)
        return lease

    def holder(self, thread_id: str) -> str | None:
        """The recorded owner of the thread's lease, if one is recorded (it may have expired)."""
        row = self._db.fetchone("SELECT owner FROM leases WHERE thread_id = ?", (thread_id,))
        return str(row[0]) if row else None

    def close(self) -> None:
        """Stop the heartbeat (leases still held are no longer renewed)."""
        with self._beat_lock:
            self._closed = True
            self._held.clear()
        self._wake.set()
        with self._pool_lock:
            idle, self._pool = (self._pool if self._pool_pid == os.getpid() else []), []
        for conn in idle:
            conn.close()

    # -- heartbeat -----------------------------------------------------------------------------
    def _track(self, lease: Lease) -> None:
        with self._beat_lock:
            if self._closed:
                return
            self._held[lease.token] = lease
            if self._beat is None or not self._beat.is_alive() or self._beat_pid != os.getpid():
                self._beat_pid = os.getpid()
                self._beat = threading.Thread(target=self._heartbeat, name="agent_kit-lease-heartbeat",
                                              daemon=True)
                self._beat.start()
        self._wake.set()

    def _forget(self, lease: Lease) -> None:
        with self._beat_lock:
            self._held.pop(lease.token, None)

    def _heartbeat(self) -> None:
        """Renew every held lease each third of the shortest TTL; idle while none is held."""
        while True:
            with self._beat_lock:
                if self._closed:
                    return
                held = list(self._held.values())
            interval = min((lease.ttl_s for lease in held), default=3600.0) / 3
            if self._wake.wait(interval):
                self._wake.clear()
                continue
            for lease in held:
                if not lease.held:
                    continue
                try:
                    lease.renew()
                except RunBusyError:
                    pass  # marked lost; the holder finds out through lease.check()
                except Exception:  # noqa: BLE001 - a busy or briefly unreachable store: try again next beat
                    pass

    def _acquire_postgres(self, thread_id: str, owner: str, token: str, ttl: float, *,
                          fresh: bool = False) -> Lease:
        pooled, conn = self._session(fresh)
        try:
            # One statement: the lock, and the owner's row only if the lock was got.
            got = conn.execute(_TAKE, (self._db.lock_key(f"lease\x1f{thread_id}"), thread_id, owner, token,
                                       utc_now())).fetchone()
        except BaseException:
            conn.close()
            if not pooled:
                raise
            # An idle session that broke meanwhile (server restarted, network cut): a fresh one.
            return self._acquire_postgres(thread_id, owner, token, ttl, fresh=True)
        if got is None:
            self._idle(conn, clean=True)
            raise _busy(thread_id, self.holder(thread_id))
        return Lease(self, thread_id, owner, token, None, ttl, conn)

    def _session(self, fresh: bool = False) -> tuple[bool, psycopg.Connection[Any]]:
        """A lease session: an idle one of this process (unless ``fresh``), else a new one.
        Returns ``(pooled, conn)``."""
        with self._pool_lock:
            if self._pool_pid != os.getpid():  # forked: the parent's sessions are not ours to use
                self._pool, self._pool_pid = [], os.getpid()
            if self._pool and not fresh:
                return True, self._pool.pop()
        try:
            return False, self._db.raw_postgres(settings=_PG_SESSION)
        except StorageError as exc:
            if "startup parameter" not in str(exc):
                raise
        # A pooler in front of the server that refuses settings given at connection time
        # (PgBouncer without ``ignore_startup_parameters = options``): the same settings, set.
        conn = self._db.raw_postgres()
        try:
            for name, value in _PG_SESSION:
                conn.execute(f"SET {name} = {value}")
        except BaseException:
            conn.close()
            raise
        return False, conn

    def _idle(self, conn: psycopg.Connection[Any], *, clean: bool) -> None:
        """Keep a session that holds no lock for the next lease (a few per process), else close it."""
        with self._pool_lock:
            if clean and not self._closed and self._pool_pid == os.getpid() and len(self._pool) < _POOL_SIZE \
                    and conn.info.transaction_status == _pq_idle():
                self._pool.append(conn)
                return
        conn.close()


def _pq_idle() -> Any:
    from psycopg import pq

    return pq.TransactionStatus.IDLE


def _free(owner: str, expires_at: float, now: float) -> bool:
    """Whether a recorded lease may be taken: its holder on this host is gone, or it is a holder
    elsewhere whose lease expired. A live holder on this host keeps it even past expiry."""
    alive = _holder_alive(owner)
    if alive is not None:
        return not alive
    return expires_at <= now


def _holder_alive(owner: str) -> bool | None:
    """Whether ``owner`` (``host:pid[/start][:thread] ...``) is a live process; None if it is not
    a process of this host (or the owner names no process)."""
    host, _, rest = owner.partition(":")
    pid_part = rest.split(":", 1)[0].split(" ", 1)[0]
    pid_text, _, start = pid_part.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    if start and _start_time(pid) not in (None, start):
        return False  # the pid was reused by another process: the holder is gone
    return True


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


def _busy(thread_id: str, owner: object) -> RunBusyError:
    return RunBusyError(f"thread {thread_id} is being run by another process (owner {owner or 'unknown'}); "
                        "try again", thread_id=thread_id, owner=str(owner) if owner else None)


def _create_sqlite_tables(db: sqlite_utils.Database) -> None:
    db["leases"].create(  # type: ignore[union-attr]
        {"thread_id": str, "owner": str, "token": str, "acquired_at": str, "expires_at": float},
        pk="thread_id", not_null={"owner", "token", "acquired_at"}, if_not_exists=True)


def _create_postgres_tables(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS leases (thread_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
               "token TEXT NOT NULL, acquired_at TEXT NOT NULL, expires_at DOUBLE PRECISION)")
