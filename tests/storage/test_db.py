"""The connection layer: placeholders written once, transactions that roll back, busy retries."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from agent_kit._db import to_pyformat
from agent_kit.errors import StorageError
from agent_kit.store import Store


@pytest.mark.parametrize("sql, expected", [
    ("SELECT ? , ?", "SELECT %s , %s"),
    ("SELECT '?' || ?", "SELECT '?' || %s"),
    ("SELECT 5 % 2, '%'", "SELECT 5 %% 2, '%%'"),
    ('SELECT "a?b" FROM t WHERE x = ?', 'SELECT "a?b" FROM t WHERE x = %s'),
], ids=["plain", "quoted-question-mark", "percent", "quoted-identifier"])
def test_placeholders_translate_for_psycopg(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


def test_same_sql_runs_on_both_backends(store: Store) -> None:
    assert store._db.fetchone("SELECT ? || '%' || ?", ("a", "b")) == ("a%b",)
    assert store._db.fetchone("SELECT '%?'") == ("%?",)


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    def half_done(tx):  # type: ignore[no-untyped-def]
        tx.execute("INSERT INTO leases (thread_id, owner, token, acquired_at) VALUES ('t', 'o', 'x', 'now')")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        store._db.write(half_done)
    assert store.leases.holder("t") is None
    assert store._db.execute("DELETE FROM leases") == 0  # the connection is usable again


_LEASE_ROW = "INSERT INTO leases (thread_id, owner, token, acquired_at) VALUES (?, 'o', 'x', 'now')"


def test_a_statement_sent_without_reading_its_outcome_is_seen_by_the_next_read_of_its_transaction(
        store: Store) -> None:
    def sent_then_read(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        tx.send(_LEASE_ROW, ("b",))
        return tx.fetchone("SELECT count(*) FROM leases")

    assert store._db.write(sent_then_read) == (2,)
    assert store._db.execute("DELETE FROM leases") == 2


def test_a_sent_statement_that_fails_fails_its_whole_transaction_though_nothing_read_its_outcome(
        store: Store) -> None:
    def third_fails(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        tx.send(_LEASE_ROW, ("b",))
        tx.send(_LEASE_ROW, ("a",))  # the same key again: refused by the server, at the latest at commit
        tx.send(_LEASE_ROW, ("c",))

    with pytest.raises(Exception) as caught:  # sqlite3 and psycopg each raise their own type
        store._db.write(third_fails)
    assert "unique" in str(caught.value).lower() or "duplicate" in str(caught.value).lower(), caught.value
    assert store._db.fetchall("SELECT thread_id FROM leases") == []  # nothing of it committed
    assert store._db.execute("DELETE FROM leases") == 0  # the connection is usable again


def test_sql_on_the_transactions_own_connection_sees_its_row_counts_and_the_statements_sent_before(
        store: Store) -> None:
    def raw(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        tx.send(_LEASE_ROW, ("b",))
        conn = tx.connection
        sql = "UPDATE leases SET owner = 'p' WHERE thread_id IN ('a', 'b')"
        changed = conn.execute(sql if store._db.backend == "sqlite" else sql.replace("?", "%s")).rowcount
        if store._db.backend == "postgres":  # a string of several statements, as psycopg runs it
            conn.execute("UPDATE leases SET token = 'y' WHERE thread_id = 'a'; "
                         "UPDATE leases SET token = 'y' WHERE thread_id = 'b'")
        tx.send(_LEASE_ROW, ("c",))  # and the transaction's own statements go on after
        return changed

    assert store._db.write(raw) == 2
    assert sorted(store._db.fetchall("SELECT thread_id, owner FROM leases")) == [("a", "p"), ("b", "p"), ("c", "o")]


def test_writes_go_on_after_failed_ones_whatever_statements_the_connection_had_prepared(store: Store) -> None:
    # psycopg prepares a statement on its fifth run and must forget what a failed transaction
    # left behind: a later write failed with 'prepared statement "_pg3_1" does not exist'.
    def refused_then_raises(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        tx.send(_LEASE_ROW, ("a",))
        raise ValueError("refused by the caller")

    def refused_then_returns(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        tx.send(_LEASE_ROW, ("a",))

    for n, fails in enumerate([refused_then_raises, refused_then_returns] * 4):
        store._db.execute("DELETE FROM leases")
        with pytest.raises(Exception):  # noqa: B017 - sqlite3 and psycopg each raise their own type
            store._db.write(fails)
        assert store._db.fetchall("SELECT thread_id FROM leases") == []
        got = store._db.write(lambda tx, n=n: (tx.send(_LEASE_ROW, (f"k{n}",)),
                                               tx.fetchone("SELECT count(*) FROM leases"))[1])
        assert got == (1,), got
        store._db.execute("DELETE FROM leases")


def test_an_interruption_inside_a_write_commits_nothing_and_the_next_write_works(store: Store) -> None:
    def interrupted(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        tx.fetchone("SELECT count(*) FROM leases")
        tx.send(_LEASE_ROW, ("b",))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store._db.write(interrupted, lock="audit")
    assert store._db.fetchall("SELECT thread_id FROM leases") == []
    assert store._db.write(lambda tx: (tx.send(_LEASE_ROW, ("c",)),
                                       tx.fetchone("SELECT count(*) FROM leases"))[1], lock="audit") == (1,)


def test_a_write_inside_a_write_of_the_same_thread_is_refused_and_the_outer_one_stands(store: Store) -> None:
    def outer(tx):  # type: ignore[no-untyped-def]
        tx.send(_LEASE_ROW, ("a",))
        with pytest.raises(StorageError, match="transaction within a transaction"):
            store._db.write(lambda inner: inner.send(_LEASE_ROW, ("b",)))
        return tx.fetchone("SELECT count(*) FROM leases")

    assert store._db.write(outer) == (1,)
    assert store._db.fetchall("SELECT thread_id FROM leases") == [("a",)]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_write_whose_function_caught_a_failed_statement_says_nothing_was_written(store: Store) -> None:
    # On Postgres a failed statement aborts its transaction; the commit then rolls it all back.
    # (SQLite undoes only the failed statement, so there the rest commits and nothing is lost.)
    def swallowed(tx):  # type: ignore[no-untyped-def]
        tx.execute(_LEASE_ROW, ("a",))
        try:
            tx.execute(_LEASE_ROW, ("a",))
        except Exception:  # noqa: BLE001 - what an application function might do
            pass
        return "done"

    with pytest.raises(StorageError, match="nothing of it was written"):
        store._db.write(swallowed)
    assert store._db.fetchall("SELECT thread_id FROM leases") == []
    assert store._db.execute("DELETE FROM leases") == 0  # the connection is usable again


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_write_waits_for_another_process_holding_the_sqlite_lock(store: Store) -> None:
    blocker = sqlite3.connect(str(store.path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    appended = threading.Event()
    worker = threading.Thread(target=lambda: (store.audit.append("read", actor="a"), appended.set()))
    worker.start()
    assert not appended.wait(0.3)  # still blocked behind the other writer
    blocker.execute("COMMIT")
    worker.join(timeout=30)
    assert appended.is_set() and store.audit.head()[0] == 1


def test_a_sqlite_older_than_the_store_needs_is_refused_in_one_line_naming_both_versions(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The ledger's writes read back with RETURNING (SQLite 3.35): on an older SQLite the store is
    refused when opened, not at the first effect with a syntax error."""
    from agent_kit import _db
    from agent_kit.errors import StorageError

    monkeypatch.setattr(_db.sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(_db.sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(StorageError, match=r"SQLite 3\.34\.1; .*needs 3\.35\.0 or newer") as err:
        Store.open(tmp_path / "home")
    assert "\n" not in str(err.value) and not (tmp_path / "home" / "agent_kit.sqlite").exists()
    monkeypatch.undo()
    Store.open(tmp_path / "home").close()  # the version this Python has is fine
