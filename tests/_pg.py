"""The test session's own PostgreSQL database.

One variable, ``AGENT_KIT_TEST_DB_URL``, names the server to test against (default
``postgresql://postgres@127.0.0.1:5432/postgres``, the local server). Its database part is used
only to connect: each test process creates its own database ``agent_kit_test_<random>`` on that
server the first time a Postgres test needs it, every test works in a fresh schema inside it, and
the database is dropped when the session ends. No test ever writes into a shared database.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

SERVER_URL = os.environ.get("AGENT_KIT_TEST_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = f"agent_kit_test_{uuid.uuid4().hex[:12]}"


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


PG_URL = _with_database(SERVER_URL, DATABASE)
"""This process's own test database (it exists once :func:`ensure_test_database` ran)."""

_created = False


def ensure_test_database() -> None:
    """Create this process's test database on the server, once."""
    global _created
    if _created:
        return
    import psycopg

    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    _created = True


def drop_test_database() -> None:
    """Drop this process's test database (and end any session still connected to it)."""
    global _created
    if not _created:
        return
    import psycopg

    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    _created = False


def drop_schema(schema: str) -> None:
    """Drop one test's schema and everything in it."""
    import psycopg

    ensure_test_database()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
