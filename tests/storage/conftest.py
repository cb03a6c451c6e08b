"""Fixtures: a ``store`` on every backend (SQLite in a temp folder, Postgres in a fresh schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_kit.store import Store

from tests._pg import PG_URL, drop_schema

__all__ = ["PG_URL"]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh Postgres schema, dropped (with everything in it) afterwards."""
    schema = f"ak_test_{uuid.uuid4().hex[:12]}"
    yield schema
    drop_schema(schema)


@pytest.fixture
def open_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A function opening (another handle on) this test's store; every handle is closed after."""
    handles: list[Store] = []
    schema = request.getfixturevalue("pg_schema") if backend == "postgres" else None

    def opener() -> Store:
        if backend == "sqlite":
            store = Store.open(tmp_path / "home")
        else:
            store = Store.open(tmp_path / "home", db_url=PG_URL, schema=schema)
        handles.append(store)
        return store

    yield opener
    for handle in handles:
        handle.close()


@pytest.fixture
def store(open_store) -> Store:  # type: ignore[no-untyped-def]
    return open_store()  # type: ignore[no-any-return]
