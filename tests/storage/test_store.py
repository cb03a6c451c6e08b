"""Opening the store: one SQLite file, Postgres schemas, and clear failures at open."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from agent_kit.errors import StorageError
from agent_kit.store import SQLITE_FILE, Store

from .conftest import PG_URL


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_one_sqlite_file_holds_checkpoints_and_our_tables(store: Store) -> None:
    assert store.path == store.home / SQLITE_FILE  # type: ignore[operator]
    with sqlite3.connect(str(store.path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"audit", "ledger", "inbox", "leases", "drafts", "checkpoints", "writes"} <= tables
    assert [p.name for p in store.home.iterdir() if p.suffix == ".sqlite"] == [SQLITE_FILE]  # type: ignore[union-attr]


def test_open_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path / "envhome"))
    with Store.open() as store:
        assert store.backend == "sqlite" and store.home == tmp_path / "envhome"
        assert (tmp_path / "envhome" / SQLITE_FILE).exists()


def test_an_explicit_home_wins_over_the_url_in_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("AGENT_KIT_DB_URL", "postgresql://nobody@127.0.0.1:1/none")
    with Store.open(tmp_path) as store:
        assert store.backend == "sqlite"


def test_data_survives_reopening(open_store) -> None:  # type: ignore[no-untyped-def]
    first = open_store()
    entry = first.audit.append("read", actor="agent", thread_id="t1")
    first.close()
    second = open_store()
    assert second.audit.get(1) == entry and second.audit.verify().ok


def test_a_store_written_by_a_newer_version_is_refused(open_store) -> None:  # type: ignore[no-untyped-def]
    first = open_store()
    first._db.execute("UPDATE agent_kit_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StorageError, match="schema version 99"):
        open_store()


@pytest.mark.postgres
@pytest.mark.parametrize("url, host", [
    ("postgresql://postgres@127.0.0.1:1/test", "127.0.0.1:1"),
    ("postgresql://postgres@no-such-host.invalid:5432/test", "no-such-host.invalid:5432"),
    ("postgresql://postgres@127.0.0.1:5432/no_such_database_ak", "127.0.0.1:5432"),
], ids=["refused", "unknown-host", "unknown-database"])
def test_a_bad_postgres_url_fails_at_open_with_one_line_naming_the_host(url: str, host: str) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        Store.open(db_url=url)
    message = str(caught.value)
    assert host in message and "\n" not in message and message.startswith("cannot connect to PostgreSQL")
    assert time.monotonic() - started < 10


def test_an_unsupported_url_is_refused() -> None:
    with pytest.raises(StorageError, match="unsupported database URL"):
        Store.open(db_url="mysql://root@localhost/db")


@pytest.mark.postgres
def test_a_bad_schema_name_is_refused() -> None:
    with pytest.raises(StorageError, match="invalid schema name"):
        Store.open(db_url=PG_URL, schema="x; DROP TABLE y")


@pytest.mark.postgres
def test_each_schema_has_its_own_tables(pg_schema: str) -> None:
    other_schema = pg_schema + "_b"
    try:
        with Store.open(db_url=PG_URL, schema=pg_schema) as a, Store.open(db_url=PG_URL, schema=other_schema) as b:
            a.audit.append("read", actor="agent")
            assert a.audit.head()[0] == 1 and b.audit.head()[0] == 0
            with a.leases.acquire("t1"):
                b.leases.acquire("t1").release()  # leases do not cross schemas either
    finally:
        with Store.open(db_url=PG_URL, schema=other_schema) as b:
            b._db.execute(f'DROP SCHEMA "{other_schema}" CASCADE')


def test_closed_store_refuses_work(open_store) -> None:  # type: ignore[no-untyped-def]
    store = open_store()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.audit.head()


def test_closing_the_store_waits_for_a_checkpointer_call_in_progress(store: Store) -> None:
    """A run left streaming writes its last checkpoint in LangGraph's background thread; closing
    the store meanwhile must wait for that call (closing a SQLite connection under a call in
    another thread crashes the process), and a later call fails with the driver's error."""
    import threading

    saver = store.checkpointer()
    entered, release, failures = threading.Event(), threading.Event(), []

    def busy() -> None:
        with saver.lock:  # as the saver's own calls hold it
            entered.set()
            release.wait(10)
            try:
                saver.conn.execute("SELECT 1")  # still open: the close waits for this call
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

    worker = threading.Thread(target=busy)
    worker.start()
    assert entered.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "the store closed the connection under a call in progress"
    release.set()
    worker.join(10)
    closer.join(10)
    assert not closer.is_alive() and not failures, failures
    with pytest.raises(Exception, match="(?i)closed"):
        saver.conn.execute("SELECT 1")
