"""Canonical JSON and the hashes built on it (action hash, result hash, idempotency key)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON: {value!r}")


def canonical_json(value: Any, *, allow_nan: bool = True) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default,
                      allow_nan=allow_nan)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def action_hash(tool: str, args: dict[str, Any]) -> str:
    """The hash that binds an approval to one exact action: tool name + canonical arguments."""
    return sha256_hex(canonical_json({"tool": tool, "args": args}))


def result_hash(result: Any) -> str:
    return sha256_hex(canonical_json(result))


def idempotency_key(thread_id: str, tool_call_id: str, action: str) -> str:
    """The ledger key of one effect: thread, tool call and action hash.

    The same action approved again keeps its key, so a retry can never pay twice.
    """
    return "ak_" + sha256_hex(f"{thread_id}\x1f{tool_call_id}\x1f{action}")[:40]
