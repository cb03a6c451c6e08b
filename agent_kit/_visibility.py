"""Data visibility: keep only the fields of a result that the policy lets the model see."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def filter_fields(value: Any, visible: Iterable[str] | None) -> tuple[Any, list[str]]:
    """Return ``(filtered, hidden_paths)``.

    ``visible`` holds dotted paths (``payment.last4``); a path names a field of a mapping, and
    of each mapping in a list. ``None`` shows everything. Hidden paths are listed once each, so
    the audit trail says which fields the model did not see.
    """
    if visible is None:
        return value, []
    tree: dict[str, Any] = {}
    for path in visible:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    hidden: list[str] = []
    out = _filter(value, tree, "", hidden)
    return out, sorted(set(hidden))


def _filter(value: Any, tree: dict[str, Any], prefix: str, hidden: list[str]) -> Any:
    if not tree:  # the whole value is visible
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, (list, tuple)):
        return [_filter(v, tree, prefix, hidden) for v in value]
    if not isinstance(value, dict):
        # Fields were named but this value has none to pick: show nothing rather than all of it.
        hidden.append(prefix.rstrip(".") or "*")
        return None
    out: dict[str, Any] = {}
    for key, sub in value.items():
        path = f"{prefix}{key}"
        if key in tree:
            out[key] = _filter(sub, tree[key], path + ".", hidden)
        else:
            hidden.append(path)
    return out
