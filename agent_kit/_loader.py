"""Finding the graph: ``--graph module:attr`` or ``langgraph.json`` in the current folder."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from agent_kit.errors import AgentKitError


def graph_ref(ref: str | None, folder: Path | None = None) -> str:
    """The ``module:attr`` or ``./file.py:attr`` of the graph to run."""
    if ref:
        return ref
    folder = folder or Path.cwd()
    config = folder / "langgraph.json"
    if not config.exists():
        raise AgentKitError(f"no langgraph.json in {folder}; run from the project folder or give --graph module:attr")
    try:
        graphs = json.loads(config.read_text()).get("graphs") or {}
    except (ValueError, AttributeError) as exc:
        raise AgentKitError(f"{config} is not valid JSON with a 'graphs' object: {exc}") from None
    if not graphs:
        raise AgentKitError(f"{config} lists no graphs")
    return str(next(iter(graphs.values())))


def load_object(ref: str, folder: Path | None = None) -> Any:
    """Import ``module:attr`` or ``path/to/file.py:attr`` and return the attribute."""
    folder = folder or Path.cwd()
    if ":" not in ref:
        raise AgentKitError(f"graph reference {ref!r} must look like module:attr or ./file.py:attr")
    where, attr = ref.rsplit(":", 1)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        if where.endswith(".py"):
            path = (folder / where).resolve()
            if not path.exists():
                raise AgentKitError(f"graph file {where!r} does not exist (from {ref!r})")
            rel = path.relative_to(folder.resolve()).with_suffix("") if path.is_relative_to(folder.resolve()) else None
            if rel is not None:
                module = importlib.import_module(".".join(rel.parts))
            else:
                spec = importlib.util.spec_from_file_location(path.stem, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise AgentKitError(f"cannot import the graph {ref!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AgentKitError(f"{where} has no attribute {attr!r} (from {ref!r})") from None
