"""Postgres for the benchmarks: a database of its own per measurement, and its transaction count.

Transactions are counted by the server (``pg_stat_database.xact_commit + xact_rollback``) in a
database made for the measurement, so nobody else's traffic on the server is counted. A backend
reports its counts when it goes idle (at most once a second) and when its session ends, so
:func:`transactions` is read only after every session of that database has ended.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["PG_URL", "available", "database", "transactions", "transactions_per_call"]

PG_URL = os.environ.get("AGENT_KIT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The server the Postgres benchmarks run on (its database part is only used to connect)."""


def available() -> bool:
    """Whether the Postgres server answers (the Postgres benchmarks are left out if not)."""
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - any failure means: no server to benchmark on
        return False
    return True


def _url(database: str, server: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextmanager
def database(prefix: str = "ak_bench", *, server: str = PG_URL) -> Iterator[str]:
    """A new database on the server for one measurement; yields its URL and drops it after."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _url(name, server)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def transactions(url: str, *, timeout_s: float = 30.0, server: str = PG_URL) -> int:
    """Transactions committed or rolled back in ``url``'s database so far, once every session of
    it has ended (so each has reported its counts). Counted from another database."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(server, autocommit=True) as conn:
        while True:
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
            if busy is not None and busy[0] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sessions of {name} still open after {timeout_s:.0f} s: close them first")
            time.sleep(0.02)
        # A session's last counts reach the statistics as it exits, and may land a moment after it
        # has left pg_stat_activity, later on a loaded machine (read 0.3 s after the last change,
        # a round trip once counted 35.0 instead of 34.4 under the whole suite's load: a base run
        # read short inflates the difference): read until they have not changed for a second.
        last, stable_since = -1, time.monotonic()
        while True:
            row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                               (name,)).fetchone()
            count = int(row[0]) if row is not None and row[0] is not None else 0
            if count != last:
                last, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since > 1.0:
                return count
            time.sleep(0.05)


def transactions_per_call(open_side: Callable[[str], tuple[Callable[[int], Any], Callable[[], None]]],
                          *, calls: int = 10, base: int = 2, server: str = PG_URL) -> float:
    """Transactions one call of a side costs, counted by the server.

    ``open_side(url)`` opens the side on that database and returns ``(call, close)``; ``close``
    must end every session it opened. The side is run twice in fresh databases, ``base`` and
    ``base + calls`` times; the difference over ``calls`` leaves out what opening and closing it
    cost (table creation, first reads).
    """
    counts = []
    for n in (base, base + calls):
        with database("ak_bench_xact", server=server) as url:
            call, close = open_side(url)
            try:
                _no_autovacuum(url)
                for i in range(n):
                    call(i)
            finally:
                close()
            counts.append(transactions(url, server=server) - _autovacuum_runs(url))
    return (counts[1] - counts[0]) / calls


def _tables(conn: Any) -> list[tuple[str, str]]:
    return [(str(s), str(t)) for s, t in conn.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")]


def _no_autovacuum(url: str) -> None:
    """Keep the server's autovacuum out of the count: its workers' runs are transactions in the
    database too, and how many land inside a measurement depends on how long it takes (a slow,
    loaded machine counted one more per round trip). Turned off on every table the side made
    (the same statements in both runs, so they cancel out)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for schema, table in _tables(conn):
            conn.execute(f'ALTER TABLE "{schema}"."{table}" SET (autovacuum_enabled = false, '
                         "toast.autovacuum_enabled = false)")


def _autovacuum_runs(url: str) -> int:
    """Autovacuum and autoanalyze runs in ``url``'s database (on tables made after it was turned
    off), read after :func:`transactions` counted (this session's own are not in that count)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) "
                           "FROM pg_stat_user_tables").fetchone()
    return int(row[0]) if row is not None else 0
