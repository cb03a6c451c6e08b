"""The reference agent (graphs/, tools/) under the test fixtures: the folder that tests the
reference app (tests/app) makes the ``app`` and ``sqlite_app`` fixtures build it with
``from tests.reference_app import build_app`` in its conftest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixture_app.harness import App, assemble

__all__ = ["App", "build_app", "make_app"]


def make_app(home: Path, *, db_url: str | None = None, schema: str | None = None, model: Any = None,
             policy: Any = None) -> App:
    """The reference agent on ``home``."""
    from graphs.customer_service import build_graph
    from tools.shop import Shop

    return assemble(build_graph, Shop.at_home, home, db_url, schema, model=model, policy=policy)


@pytest.fixture
def build_app() -> Any:
    """What ``app`` and ``sqlite_app`` build in this folder: the reference agent."""
    return make_app
