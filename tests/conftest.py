"""Shared fixtures: a fresh home per test, an agent on it (the fixture app, tests/fixture_app; the
reference app's test folders build the reference agent instead, see tests/reference_app.py), on
SQLite and on Postgres. Nothing here imports the reference app."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._pg import PG_URL, drop_schema, drop_test_database, ensure_test_database
from tests.fixture_app.harness import App, make_app

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["PG_URL", "App", "drop_schema", "make_app"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Every Postgres test runs in this session's own database, made on first need.
    if item.get_closest_marker("postgres") is not None:
        ensure_test_database()


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The CLI, run in-process, exports its options (--home, --db-url) for the graph module it loads;
    no test leaves them behind for the next one in the same worker."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_test_database()


@pytest.fixture(autouse=True)
def _home_outside_the_repo(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every process it starts) gets a home outside the repository, so a store
    opened without one (Postgres keeps its audit key and anchor there) never writes into the
    working tree; tests that need a given home set it themselves."""
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("AGENT_KIT_AUDIT_KEY", raising=False)
    monkeypatch.delenv("AGENT_KIT_AUDIT_ANCHOR_EVERY", raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def build_app() -> Any:
    """What ``app`` and ``sqlite_app`` build: the fixture app (tests/app overrides it with the
    reference agent)."""
    return make_app


@pytest.fixture
def app(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch, build_app: Any) -> Iterator[App]:
    """The agent on a fresh home (and a fresh Postgres schema for the postgres backend)."""
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    monkeypatch.delenv("AGENT_KIT_MODEL", raising=False)
    schema = f"ak_test_{uuid.uuid4().hex[:10]}" if backend == "postgres" else None
    a = build_app(tmp_path, db_url=PG_URL if schema else None, schema=schema)
    try:
        yield a
    finally:
        a.store.close()
        if schema:
            drop_schema(schema)


@pytest.fixture
def sqlite_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_app: Any) -> Iterator[App]:
    """The agent on SQLite only (for tests about the app, not the storage)."""
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    monkeypatch.delenv("AGENT_KIT_MODEL", raising=False)
    a = build_app(tmp_path)
    try:
        yield a
    finally:
        a.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (no browser download), for one module's browser tests
    (tests/web, tests/app). Module-scoped: Playwright's sync API keeps an event loop running in the
    thread while it is open, which would break every later test of the worker that runs one."""
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: apt-get install -y chromium (.ci/run does this)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()
