"""A small app that exists only so the library's tests run on something: its own records, a
dozen tools covering every mode and gate, its own policy and a phrase-driven offline model.

It is a test double, not a product: ``graphs/`` and ``tools/`` (the reference app) can be deleted
and the library's tests still run on this. ``graph`` (for ``agent-kit --graph
tests.fixture_app.served:graph``) is in :mod:`tests.fixture_app.served`.
"""

from __future__ import annotations

from .agent import build_graph
from .harness import App, make_app
from .records import Records

__all__ = ["App", "Records", "build_graph", "make_app"]
