"""The store: one database holding LangGraph's checkpoints and agent_kit's own tables.

- SQLite (default): one file, ``$AGENT_KIT_HOME/agent_kit.sqlite`` (home defaults to
  ``./.agent_kit``), in WAL mode, for the checkpoints (``SqliteSaver``) and for the audit trail,
  execution ledger, inbox, leases, drafts and approvers' credentials.
- Postgres: ``AGENT_KIT_DB_URL=postgresql://...``: ``PostgresSaver`` and our tables in the same
  database and schema. ``Store.open(db_url=..., schema="name")`` creates that schema and uses
  it (tests get one each). A wrong or unreachable URL fails in :meth:`Store.open`.
- On both, what must stay outside the database lives in the home folder: the audit key
  (``audit.key``, or ``AGENT_KIT_AUDIT_KEY``) and the audit anchor (``audit.anchor``; on
  Postgres ``audit-<id>.anchor`` per database and schema).

Every table is created on open, under a lock, so any number of processes may open one store at
once. The store records its schema version and refuses a newer one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import sqlite_utils
from langgraph.checkpoint.base import BaseCheckpointSaver

from . import audit, credentials, drafts, inbox, leases, ledger
from ._db import BUSY_TIMEOUT_S, Database, Tx
from .anchor import AuditAnchor, FileAnchor, anchor_file_name
from .audit import AuditLog
from .audit_keys import AuditKeyring
from .checkpoint import make_async_checkpointer, make_checkpointer, strict_serializer
from .drafts import Drafts
from .errors import StorageError
from .inbox import Inbox
from .leases import ThreadLeases
from .ledger import ExecutionLedger

__all__ = ["DEFAULT_HOME", "SCHEMA_VERSION", "SQLITE_FILE", "Store"]

_log = logging.getLogger(__name__)

DEFAULT_HOME = ".agent_kit"
"""Home folder used when neither an argument nor ``AGENT_KIT_HOME`` names one."""
SQLITE_FILE = "agent_kit.sqlite"
"""The one SQLite file in the home folder."""
SCHEMA_VERSION = 1
"""Version of agent_kit's tables; a store written by a newer version is refused."""

_MODULES = (audit, ledger, inbox, leases, drafts, credentials)


class Store:
    """agent_kit's storage for one home folder or database URL. Open it with :meth:`open`."""

    def __init__(self, db: Database, *, home: Path, db_url: str | None,
                 anchor: AuditAnchor | None = None, anchor_every: int | None = None) -> None:
        self.home = home
        """The home folder: the SQLite file's (SQLite), and the audit key's and anchor's (both)."""
        self.db_url = db_url
        """The Postgres URL, or None on SQLite."""
        self.backend: Literal["sqlite", "postgres"] = db.backend
        self.path: Path | None = db.path
        """The SQLite file, or None on Postgres."""
        self.schema = db.schema
        """The Postgres schema given to :meth:`open`, if any."""
        if anchor is None:
            name = anchor_file_name(None if db.backend == "sqlite" else db.namespace)
            anchor = FileAnchor(home / name)
        self.audit = AuditLog(db, AuditKeyring(home), anchor, anchor_every or _anchor_every())
        self.ledger = ExecutionLedger(db)
        self.inbox = Inbox(db)
        self.leases = ThreadLeases(db)
        self.drafts = Drafts(db)
        self._db = db
        self._saver: BaseCheckpointSaver[Any] | None = None
        self._saver_lock = threading.Lock()

    @classmethod
    def open(cls, home: str | Path | None = None, db_url: str | None = None, *,
             schema: str | None = None, anchor: AuditAnchor | None = None,
             anchor_every: int | None = None) -> Store:
        """Open (creating if needed) the store.

        ``db_url`` wins over ``home`` for the database; with neither, ``AGENT_KIT_DB_URL`` is
        used if set, else SQLite in ``AGENT_KIT_HOME``, else ``./.agent_kit``. The home (same
        rule) also holds the audit key and anchor on Postgres.

        Args:
            anchor: where audit heads are anchored (default: a file under the home).
            anchor_every: anchor after every this many audit entries (default
                ``AGENT_KIT_AUDIT_ANCHOR_EVERY``, else 1).

        Raises:
            StorageError: the database cannot be opened or reached (the message names the host),
                or it was written by a newer agent_kit.
        """
        if db_url is None and home is None:
            db_url = os.environ.get("AGENT_KIT_DB_URL") or None
        home_path = Path(home if home is not None else os.environ.get("AGENT_KIT_HOME") or DEFAULT_HOME)
        if db_url is not None:
            db = Database.open_postgres(db_url, schema)
        else:
            db = Database.open_sqlite(home_path / SQLITE_FILE)
        try:
            store = cls(db, home=home_path, db_url=db_url, anchor=anchor, anchor_every=anchor_every)
            _create_tables(db)
            _setup_checkpoints(db)
        except BaseException:
            db.close()
            raise
        return store

    def checkpointer(self) -> BaseCheckpointSaver[Any]:
        """The store's sync checkpointer (``SqliteSaver`` / ``PostgresSaver``, strict
        deserialization), created on first call and closed with the store."""
        with self._saver_lock:
            if self._saver is None:
                self._saver = make_checkpointer(self)
            return self._saver

    def acheckpointer(self) -> AbstractAsyncContextManager[BaseCheckpointSaver[Any]]:
        """An async checkpointer (``AsyncSqliteSaver`` / ``AsyncPostgresSaver``, strict), as an
        async context manager that closes its connection: ``async with store.acheckpointer() as cp``."""
        return make_async_checkpointer(self)

    def close(self) -> None:
        """Close every connection of the store (its checkpointer's too)."""
        with self._saver_lock:
            saver, self._saver = self._saver, None
        self.leases.close()
        if saver is not None:
            conn = getattr(saver, "conn", None)
            if conn is not None:
                _close_when_idle(conn, getattr(saver, "lock", None))
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.backend == "sqlite" else f"{self.db_url} schema={self.schema}"
        return f"Store({self.backend}: {where})"


def _close_when_idle(conn: Any, lock: Any) -> None:
    """Close a checkpointer's connection once no call is using it: a run still writing its last
    checkpoint in LangGraph's background thread (a stream left unfinished) finishes that write,
    and its next one fails with the driver's "closed" error. Closing a SQLite connection while
    another thread is inside a call on it crashes the process."""
    held = False
    if lock is not None and hasattr(lock, "acquire"):
        held = lock.acquire(timeout=_CLOSE_WAIT_S)
        if not held:
            _log.warning("closing the checkpointer's connection while a call still holds it (waited %.0f s)",
                         _CLOSE_WAIT_S)
    try:
        conn.close()
    finally:
        if held:
            lock.release()


_CLOSE_WAIT_S = 10.0


def _anchor_every() -> int:
    raw = os.environ.get("AGENT_KIT_AUDIT_ANCHOR_EVERY", "1")
    if not raw.strip().isdigit() or int(raw) < 1:
        raise StorageError(f"AGENT_KIT_AUDIT_ANCHOR_EVERY must be a whole number >= 1, got {raw!r}")
    return int(raw)


def _check_version(tx: Tx, where: str) -> None:
    row = tx.fetchone("SELECT value FROM agent_kit_meta WHERE name = 'schema_version'")
    if row is None:
        tx.execute("INSERT INTO agent_kit_meta (name, value) VALUES ('schema_version', ?)",
                   (str(SCHEMA_VERSION),))
    elif int(row[0]) > SCHEMA_VERSION:
        raise StorageError(f"the store at {where} has schema version {row[0]}, newer than this "
                           f"agent_kit ({SCHEMA_VERSION}): upgrade agent_kit")


def _create_tables(db: Database) -> None:
    """Create our tables if missing, one process at a time."""
    if db.backend == "sqlite":
        su = sqlite_utils.Database(db.connection(), execute_plugins=False, recursive_triggers=False)

        def create_sqlite(tx: Tx) -> None:
            su["agent_kit_meta"].create({"name": str, "value": str}, pk="name",  # type: ignore[union-attr]
                                        if_not_exists=True)
            _check_version(tx, str(db.path))
            for module in _MODULES:
                module._create_sqlite_tables(su)

        try:
            db.write(create_sqlite)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot use the SQLite store {db.path}: {exc}") from None
        return

    def create_postgres(tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS agent_kit_meta (name TEXT PRIMARY KEY, value TEXT)")
        _check_version(tx, f"{db.url} (schema {db.schema})")
        for module in _MODULES:
            module._create_postgres_tables(tx)

    db.write(create_postgres, lock="create_tables")


def _setup_checkpoints(db: Database) -> None:
    """Create LangGraph's checkpoint tables now, so the file / schema is complete after open."""
    if db.backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        lite = sqlite3.connect(str(db.path), timeout=BUSY_TIMEOUT_S)
        try:
            SqliteSaver(lite, serde=strict_serializer()).setup()
        finally:
            lite.close()
        return
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    with db.raw_postgres(prepare_threshold=0, row_factory=dict_row) as conn:
        # A session lock: PostgresSaver.setup runs its migrations outside one transaction.
        conn.execute("SELECT pg_advisory_lock(%s)", (db.lock_key("checkpoint_setup"),))
        PostgresSaver(conn, serde=strict_serializer()).setup()
