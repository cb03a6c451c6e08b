"""The connection layer: placeholders written once, transactions that roll back, busy retries."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from agent_kit._db import to_pyformat
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
