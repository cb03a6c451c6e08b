"""A thin connection layer over sqlite3 and psycopg, so agent_kit's SQL is written once.

SQL is written with ``?`` placeholders; on Postgres they become ``%s`` (and a literal ``%``
becomes ``%%``). Each thread gets its own connection, opened lazily and reopened after a
``fork``. Writes run in short transactions:

- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock up front, so two processes never
  both read-then-write and the loser waits (``busy_timeout``) instead of failing on upgrade;
  a busy error that still escapes is retried with backoff.
- Postgres: a plain transaction, optionally serialized by ``pg_advisory_xact_lock`` on a
  named lock (hashed with the schema, so test schemas never contend with each other), in
  pipeline mode: a statement whose outcome is not read (:meth:`Tx.send`) does not wait for the
  server, so a transaction costs one round trip per read it makes, plus its commit.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._extras import require
from .errors import StorageError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "BUSY_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "Backend",
    "Database",
    "Row",
    "Tx",
    "describe_url",
    "pg_transaction",
    "postgres_connect_kwargs",
    "to_pyformat",
    "utc_now",
]

Backend = Literal["sqlite", "postgres"]
Row = tuple[Any, ...]
T = TypeVar("T")

MIN_SQLITE = (3, 35, 0)
"""The oldest SQLite the store runs on: the ledger reads back what it writes with ``RETURNING``."""
BUSY_TIMEOUT_S = 30.0


def sqlite_synchronous() -> str:
    """The ``PRAGMA synchronous`` for every SQLite connection of a store: ``AGENT_KIT_SQLITE_SYNC``.

    NORMAL (the default) is what SQLite recommends with WAL: a process that dies loses nothing
    it committed; a power loss may drop the newest commits, after which every reconcilable effect
    is still caught by the back office's idempotency key. FULL also survives power loss for
    tools that cannot reconcile, at one fsync per commit.
    """
    value = os.environ.get("AGENT_KIT_SQLITE_SYNC", "NORMAL").upper()
    if value not in ("NORMAL", "FULL", "EXTRA"):
        raise StorageError(f"AGENT_KIT_SQLITE_SYNC must be NORMAL, FULL or EXTRA, got {value!r}")
    return value
"""How long a SQLite connection waits for another process's write lock."""
CONNECT_TIMEOUT_S = 3
"""How long Store.open waits for a Postgres server before giving up."""
_RETRY_DEADLINE_S = 60.0
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """Translate ``?`` placeholders to psycopg's ``%s``, leaving quoted text alone."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def utc_now() -> str:
    """The current time as ISO-8601 UTC with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _psycopg() -> ModuleType:
    """psycopg, from the ``postgres`` extra (imported on first use: SQLite never needs it)."""
    return require("postgres", "psycopg")


def _conninfo(url: str) -> dict[str, Any] | None:
    """The parsed parts of a Postgres URL, or None when psycopg cannot parse it."""
    pg = _psycopg()
    try:
        return dict(pg.conninfo.conninfo_to_dict(url))
    except pg.Error:
        return None


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a Postgres URL, for error messages (never the password)."""
    info = _conninfo(url)
    if info is None:
        return "an unparsable URL"
    host = str(info.get("host") or info.get("hostaddr") or "localhost")
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"


def postgres_connect_kwargs(schema: str | None, url: str | None = None) -> dict[str, Any]:
    """Connection options every agent_kit Postgres connection shares.

    A schema is added to the URL's own ``options`` (statement_timeout, ...), never put in their place.
    """
    kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True}
    if schema is not None:
        kwargs["options"] = f"{_url_options(url)} -csearch_path={schema}".strip()
    return kwargs


def _url_options(url: str | None) -> str:
    if not url:
        return ""
    return str((_conninfo(url) or {}).get("options") or "")


class Tx:
    """One open transaction: statements run on the transaction's connection.

    On Postgres the transaction's statements are pipelined: each is sent at once and only a read
    of its outcome (a fetch, a row count) waits for the server, so statements whose outcome is
    not read (:meth:`send`) share the round trip of the next read or of the commit.
    """

    def __init__(self, conn: sqlite3.Connection | psycopg.Connection[Any], backend: Backend,
                 pipeline: psycopg.Pipeline | None = None, leave_pipeline: Callable[[], None] | None = None) -> None:
        self._conn = conn
        self._pg = backend == "postgres"
        self._pipeline = pipeline
        self._leave_pipeline = leave_pipeline
        self.backend: Backend = backend
        """``"sqlite"`` or ``"postgres"``."""

    @property
    def connection(self) -> Any:
        """The transaction's own connection (``sqlite3`` or ``psycopg``), for SQL written for one
        backend; statements on it belong to this transaction. On Postgres the transaction leaves
        pipeline mode first (what was sent is answered, a failure of it raised here), so the
        connection behaves as a plain one: row counts are known, a string may hold several
        statements."""
        if self._leave_pipeline is not None:
            leave, self._leave_pipeline, self._pipeline = self._leave_pipeline, None, None
            leave()
        return self._conn

    @property
    def pipelined_connection(self) -> Any:
        """The connection as it is, in pipeline mode on Postgres: for agent_kit's own statements
        that read every outcome they need with a fetch (one statement per call)."""
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        if self._pg:
            cur = self._conn.execute(to_pyformat(sql), params)
            if self._pipeline is not None:
                self._pipeline.sync()  # the count is known once the server has answered
            return cur.rowcount
        return self._conn.execute(sql, params).rowcount

    def send(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement whose outcome is not read here. On Postgres it goes out with the
        statements after it: a failure is raised by the transaction's next read or its commit,
        and rolls the whole transaction back, as any failure does."""
        if self._pg:
            self._conn.execute(to_pyformat(sql), params)
        else:
            self._conn.execute(sql, params)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        if self._pg:
            return self._conn.execute(to_pyformat(sql), params).fetchone()
        return self._conn.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._pg:
            return self._conn.execute(to_pyformat(sql), params).fetchall()
        return self._conn.execute(sql, params).fetchall()


class Database:
    """Connections to one agent_kit database (a SQLite file or a Postgres schema)."""

    def __init__(self, backend: Backend, *, path: Path | None = None, url: str | None = None,
                 schema: str | None = None) -> None:
        self.backend: Backend = backend
        """``"sqlite"`` or ``"postgres"``."""
        self.path = path
        """The SQLite file (SQLite only)."""
        self.url = url
        """The Postgres URL (Postgres only)."""
        self.schema = schema
        """The Postgres schema our tables (and the checkpoints) live in, if not the default."""
        self._namespace = schema or _search_path(url)
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self._file_id: tuple[int, int] | None = None

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open_sqlite(cls, path: Path) -> Database:
        """Open (creating if needed) a SQLite file in WAL mode.

        Raises:
            StorageError: the file cannot be opened, or this Python's SQLite is older than
                :data:`MIN_SQLITE` (the ledger's writes use ``RETURNING``).
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StorageError(
                f"this Python uses SQLite {sqlite3.sqlite_version}; agent_kit's SQLite store needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer (INSERT ... RETURNING): use a Python built "
                "with a newer SQLite (python.org and uv's builds are), or a Postgres store (AGENT_KIT_DB_URL)")
        db: Database | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists() or path.stat().st_size == 0
            db = cls("sqlite", path=path)
            conn = db.connection()
            if new:  # lets retention give freed pages back without a full VACUUM
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            st = os.stat(path)
            db._file_id = (st.st_dev, st.st_ino)
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            raise StorageError(f"cannot open the SQLite store {path}: {exc}{_hint(exc)}") from None
        return db

    def ensure_same_file(self) -> None:
        """Refuse to go on when the SQLite file was deleted or replaced since the store was opened:
        this process's connections would write to a file nobody else sees.

        Raises:
            StorageError: the file is gone, or another file now has its path.
        """
        if self._file_id is None:
            return
        try:
            st = os.stat(self.path)  # type: ignore[arg-type]
        except FileNotFoundError:
            raise StorageError(f"the SQLite store {self.path} was deleted while this process had it open; "
                               "nothing more is written to it: restore the file, then restart the process") from None
        except OSError as exc:
            raise StorageError(f"cannot check the SQLite store {self.path}: {exc.strerror}") from None
        if (st.st_dev, st.st_ino) != self._file_id:
            raise StorageError(f"the SQLite store {self.path} was replaced by another file while this process "
                               "had it open; nothing more is written to it: restart the process to use the new file")

    @classmethod
    def open_postgres(cls, url: str, schema: str | None = None) -> Database:
        """Connect to Postgres now (so a bad URL fails here) and create ``schema`` if given."""
        if not url.startswith(("postgresql://", "postgres://")):
            raise StorageError(f"unsupported database URL {url.split('@')[-1]!r}: expected postgresql://...")
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StorageError(f"invalid schema name {schema!r}: use letters, digits and _")
        _psycopg()
        require("postgres", "langgraph.checkpoint.postgres")
        db = cls("postgres", url=url, schema=schema)
        if schema is not None:
            # Created before search_path points at it; the lock keeps concurrent openers apart.
            with db.raw_postgres(with_schema=False) as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (db.lock_key("create_schema"),))
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        db.connection()
        return db

    @property
    def namespace(self) -> str:
        """Which tables these are, for names kept outside the database: ``host:port/db`` and
        schema on Postgres (the schema given, else the URL's search_path), the file on SQLite."""
        if self.backend == "sqlite":
            return str(self.path)
        return f"{describe_url(self.url or '')}\x1f{self._namespace}"

    def raw_postgres(self, *, with_schema: bool = True, settings: Sequence[tuple[str, str]] = (),
                     **extra: Any) -> psycopg.Connection[Any]:
        """A new dedicated Postgres connection (the caller closes it); StorageError if unreachable.

        Args:
            settings: server settings of the session, ``(name, value)``, given when it connects
                (beside the URL's own ``options``), so they cost no statement.
        """
        assert self.url is not None
        kwargs = postgres_connect_kwargs(self.schema if with_schema else None, self.url)
        if settings:
            given = " ".join(f"-c{name}={value}" for name, value in settings)
            kwargs["options"] = f"{kwargs.get('options') or _url_options(self.url)} {given}".strip()
        kwargs.update(extra)
        pg = _psycopg()
        try:
            return pg.connect(self.url, **kwargs)  # type: ignore[no-any-return]
        except pg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StorageError(
                f"cannot connect to PostgreSQL at {describe_url(self.url)}: {first}"
            ) from None

    def connection(self) -> Any:
        """This thread's connection, opened on first use (and again after a fork)."""
        conn = getattr(self._local, "conn", None)
        if (conn is not None and self._local.pid == os.getpid()
                and not getattr(conn, "closed", False) and not getattr(conn, "broken", False)):
            return conn
        if self._closed:
            raise StorageError("the store is closed")
        if self.backend == "sqlite":
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={sqlite_synchronous()}")
        else:
            conn = self.raw_postgres()
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._lock:
            self._all.append(conn)
        return conn

    # -- statements --------------------------------------------------------------------------

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a read on this thread's connection (autocommit)."""
        try:
            return Tx(self.connection(), self.backend).fetchall(sql, params)
        except storage_failures() as exc:
            raise self.storage_error(exc, "read") from None

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        try:
            return Tx(self.connection(), self.backend).fetchone(sql, params)
        except storage_failures() as exc:
            raise self.storage_error(exc, "read") from None

    def storage_error(self, exc: BaseException, doing: str = "write") -> StorageError:
        """One line naming the store, what failed and, where known, how to fix it."""
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if self.backend == "sqlite":
            return StorageError(f"cannot {doing} the SQLite store {self.path}: {first}{_hint(exc)}")
        where = f"{describe_url(self.url or '')}" + (f" (schema {self._namespace})" if self._namespace else "")
        hint = (" (its tables are gone: the schema or database was dropped or replaced; restart the process "
                "to create them again, the history is lost)") if type(exc).__name__ == "UndefinedTable" else ""
        return StorageError(f"cannot {doing} the PostgreSQL store at {where}: {first}{hint}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction."""
        return self.write(lambda tx: tx.execute(sql, params))

    def lock_key(self, name: str) -> int:
        """A signed 64-bit advisory-lock key for ``name`` within this schema."""
        digest = hashlib.sha256(f"agent_kit\x1f{self._namespace}\x1f{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[Tx]:
        """One write transaction: ``BEGIN IMMEDIATE`` on SQLite; on Postgres, optionally
        serialized with every other transaction that names the same ``lock``."""
        conn = self.connection()
        if self.backend == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            try:
                self.ensure_same_file()  # under the write lock: nothing is written to a lost file
                yield Tx(conn, "sqlite")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the first error is the one to report; SQLite rolls back on its own
                raise
        else:
            if not pg_idle(conn) and id(conn) not in _IN_TRANSACTION:
                # Left mid-exchange by an interruption nothing could clean up: a new connection.
                _close(conn)
                conn = self.connection()
            with pg_transaction(conn, lock_key=None if lock is None else self.lock_key(lock)) as tx:
                yield tx

    def write(self, fn: Callable[[Tx], T], *, lock: str | None = None) -> T:
        """Run ``fn`` in a write transaction, retrying it when the database is busy."""
        deadline = time.monotonic() + _RETRY_DEADLINE_S
        delay = 0.005
        failures: tuple[type[Exception], ...] = (sqlite3.DatabaseError, *storage_failures())
        while True:
            try:
                with self.transaction(lock=lock) as tx:
                    return fn(tx)
            except self._busy_errors() as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise self.storage_error(exc) from None
            except failures as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                    raise
                raise self.storage_error(exc) from None
            # Backoff between retries of a busy write (jittered so processes do not re-collide).
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    def _busy_errors(self) -> tuple[type[Exception], ...]:
        if self.backend == "sqlite":
            return (sqlite3.OperationalError,)
        pg = _psycopg()
        return (sqlite3.OperationalError, pg.errors.SerializationFailure, pg.errors.DeadlockDetected)

    def close(self) -> None:
        """Close every connection this object opened, in any thread."""
        with self._lock:
            conns, self._all = self._all, []
            self._closed = True
        for conn in conns:
            _close(conn)
        self._local = threading.local()


@contextmanager
def pg_transaction(conn: psycopg.Connection[Any], *, lock_key: int | None = None) -> Iterator[Tx]:
    """One Postgres transaction on ``conn`` (in autocommit mode), pipelined from its ``BEGIN`` to
    its ``COMMIT`` (see :class:`Tx`), optionally holding the advisory lock ``lock_key`` until it
    ends. A transaction that only sends and then commits costs one round trip; each read it makes
    costs one more.

    ``BEGIN`` and ``COMMIT`` are sent here, not through psycopg's ``transaction()``, which in
    pipeline mode syncs with the server at its start and twice at its end.

    Raises:
        StorageError: a statement of it failed and the caller caught that failure: the server
            rolls such a transaction back, so nothing of it was written, and saying so beats
            returning as if it had been.
    """
    pq = _psycopg().pq
    idle = pg_idle(conn)
    if id(conn) in _IN_TRANSACTION and not idle:
        raise StorageError("cannot start a transaction within a transaction: write through the transaction "
                           "already open on this thread (the tx it gave you), as on SQLite")
    if not idle:
        raise StorageError("the connection was left in the middle of an exchange with the server (an "
                           "interrupted call): open a new one")
    piped = _Pipelined(conn)
    try:
        _IN_TRANSACTION.add(id(conn))
        pipeline = piped.enter()
        conn.execute("BEGIN", prepare=False)  # nothing to plan: kept out of psycopg's prepared statements
        if lock_key is not None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        yield Tx(conn, "postgres", pipeline, piped.leave)
        # Known without asking the server: a failure already raised to the caller left the
        # pipeline aborted, or (out of pipeline mode) the transaction failed.
        if (conn.pgconn.pipeline_status == pq.PipelineStatus.ABORTED
                or conn.info.transaction_status == pq.TransactionStatus.INERROR):
            raise StorageError("a statement of this transaction failed and the failure was caught: the "
                               "database rolls the whole transaction back, so nothing of it was written")
        conn.execute("COMMIT", prepare=False)
        piped.leave()  # the commit's answer, and a failure of anything sent before it, come back here
    except BaseException as exc:
        interrupt = _interruption(exc)
        if interrupt is None:
            _abandon(conn, piped, exc)
            raise
        # Ctrl-C, an exit, a closed generator, landing anywhere, even inside psycopg while a
        # statement or the commit is on its way: what the connection holds is not known, so it is
        # closed (the server rolls back all it had not committed; nothing queued here is sent),
        # and the interruption itself is raised, not an error psycopg made of it.
        _close(conn)
        piped.drop()
        if interrupt is exc:
            raise
        raise interrupt from None
    finally:
        _IN_TRANSACTION.discard(id(conn))


class _Pipelined:
    """A transaction's pipeline mode on its connection: entered once, left once (answered, or
    dropped unanswered when the connection is closed)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._mode = conn.pipeline()
        self._on = False

    def enter(self) -> psycopg.Pipeline:
        pipeline = self._mode.__enter__()
        self._on = True
        return pipeline

    def leave(self, exc: BaseException | None = None) -> None:
        """Out of pipeline mode: what was sent is answered (a failure of it raised here, unless
        ``exc`` is already on its way); the transaction goes on, or ends, as plain statements."""
        if self._on:
            self._on = False
            self._mode.__exit__(type(exc) if exc is not None else None, exc, None)

    def drop(self) -> None:
        """Forget it without a word to the server (its connection is closed): psycopg's context
        is left now rather than by the garbage collector."""
        self._on = False
        try:
            self._mode.gen.close()
        except BaseException:  # noqa: BLE001 - what is being raised is the one to report
            pass


_IN_TRANSACTION: set[int] = set()
"""Connections (by id) inside :func:`pg_transaction` now; each is used by one thread at a time."""


def pg_idle(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``conn`` is open, out of pipeline mode and in no transaction: ready for the next."""
    pq = _psycopg().pq
    return bool(not conn.closed and getattr(conn, "_pipeline", None) is None
                and conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
                and conn.info.transaction_status == pq.TransactionStatus.IDLE)


def _interruption(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt, SystemExit or GeneratorExit that ``exc`` is, or that it was raised
    while handling (psycopg turns one that lands mid-exchange into an error of its own), else None.
    Only the direct cause is looked at: an older interruption further up the chain is not this one."""
    for seen in (exc, exc.__context__):
        if seen is not None and not isinstance(seen, Exception):
            return seen
    return None


def _close(conn: Any) -> None:
    """Close a connection (sqlite3 or psycopg), best effort."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def _abandon(conn: psycopg.Connection[Any], piped: _Pipelined, exc: BaseException) -> None:
    """After a failure inside :func:`pg_transaction`: out of pipeline mode, the transaction rolled
    back, the connection ready for the next one; a connection that cannot be brought back to
    exactly that is closed (the thread opens a new one). ``exc`` is the failure being raised;
    nothing here replaces it."""
    pq = _psycopg().pq
    try:
        piped.leave(exc)
        if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.rollback()  # psycopg's own: it also forgets the statements it prepared meanwhile
    except Exception:  # noqa: BLE001 - the failure being raised is the one to report
        _close(conn)
        return
    if not conn.closed and not pg_idle(conn):
        _close(conn)  # psycopg could not leave pipeline mode (it only warns while a failure is raised)


def _search_path(url: str | None) -> str:
    """The search_path a URL's ``options`` set, so advisory locks stay per schema."""
    if not url:
        return ""
    options = str((_conninfo(url) or {}).get("options") or "")
    found = re.search(r"search_path\s*=\s*([^\s]+)", options)
    return found.group(1) if found else ""


def storage_failures() -> tuple[type[Exception], ...]:
    """The database errors that mean the store failed (not a bug in a statement): SQLite's
    ``OperationalError``; with psycopg loaded, its ``OperationalError`` (server gone, disk full on
    the server) and ``UndefinedTable`` (schema dropped). psycopg is never imported for this."""
    import sys

    found: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
    pg = sys.modules.get("psycopg")
    if pg is not None:
        found += (pg.OperationalError, pg.errors.UndefinedTable)
    return found


def _hint(exc: BaseException) -> str:
    """How to fix a SQLite failure whose cause is known."""
    text = str(exc).lower()
    if "full" in text:
        return " (free space on its disk, then try again; nothing was written)"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return " (make the file and its folder writable by this user, or mount them read-write)"
    if "disk i/o" in text:
        return " (the disk failed a read or write: check it, and its free space)"
    if "not a database" in text or "malformed" in text:
        return " (the file is not an intact SQLite database: restore it from a backup)"
    if "unable to open" in text:
        return " (check that the folder exists and is writable)"
    return ""


def _is_busy(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    return True
