"""The fixture app on one store, as the library's tests use it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_kit import AgentRuntime
from agent_kit.store import Store

from .agent import build_graph
from .records import Records


@dataclass
class App:
    """An agent on one store: runtime, system of record, home folder."""

    home: Path
    store: Any
    runtime: Any
    shop: Any
    db_url: str | None = None
    schema: str | None = None

    def say(self, thread: str, *messages: str) -> Any:
        result = None
        for m in messages:
            result = self.runtime.send(thread, m)
        return result


def assemble(build: Any, records: Any, home: Path, db_url: str | None, schema: str | None, **graph_kw: Any) -> App:
    """An app on ``home`` (and on Postgres ``schema`` when ``db_url`` is given): ``build(home=,
    store=, **graph_kw)`` makes its graph, ``records(home)`` opens its system of record."""
    store = Store.open(home=home, db_url=db_url, schema=schema) if db_url else Store.open(home=home)
    graph = build(home=home, store=store, **graph_kw)
    return App(home=home, store=store, runtime=AgentRuntime(graph, store=store), shop=records(home),
               db_url=db_url, schema=schema)


def make_app(home: Path, *, db_url: str | None = None, schema: str | None = None, model: Any = None,
             policy: Any = None) -> App:
    """The fixture app on ``home`` (and on Postgres ``schema`` when ``db_url`` is given)."""
    return assemble(build_graph, Records.at_home, home, db_url, schema, model=model, policy=policy)


@pytest.fixture
def build_app() -> Any:
    """What the ``app`` and ``sqlite_app`` fixtures build: here, the fixture app."""
    return make_app
