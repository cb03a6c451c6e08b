"""What a decision names: the thread, and the interrupt id and/or action hash its decider saw.

A decision never lands on an action its decider did not name (DESIGN, principle 3): the runtime
turns whatever the caller passed (a pending item, its JSON, or a thread id with an id or a hash)
into a :class:`Named` and refuses the decision unless that is exactly what is pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_kit._canonical import canonical_json
from agent_kit.errors import ResumeError, UsageError
from agent_kit.inbox import PendingItem

Target = str | PendingItem | Mapping[str, Any]
"""What a decision names: a pending item (from ``pending()`` or ``TurnResult.pending``), or a thread
id given with ``interrupt_id`` and/or ``action_hash``."""


@dataclass(frozen=True)
class Named:
    """What a decision names: the thread, and the interrupt id and/or action hash its decider saw."""

    thread_id: str
    interrupt_id: str | None
    action_hash: str | None


_MIN_HASH_PREFIX = 16


def named(target: Any, interrupt_id: str | None, action_hash: str | None) -> Named:
    if isinstance(target, PendingItem):
        target = {"thread_id": target.thread_id, "interrupt_id": target.interrupt_id,
                  "action_hash": target.action_hash}
    if isinstance(target, Mapping):
        missing = [k for k in ("thread_id", "interrupt_id", "action_hash") if not isinstance(target.get(k), str)]
        if missing:
            raise ResumeError(f"a pending item needs {', '.join(missing)}; pass one from pending() as it is")
        for given, key in ((interrupt_id, "interrupt_id"), (action_hash, "action_hash")):
            if given is not None and given != target[key]:
                raise ResumeError(f"{key}={given!r} contradicts the item's {key} {target[key]!r}")
        return Named(str(target["thread_id"]), str(target["interrupt_id"]), str(target["action_hash"]))
    if not isinstance(target, str) or not target:
        raise UsageError(f"a decision names a thread id or a pending item, got {type(target).__name__}")
    for given, key in ((interrupt_id, "interrupt_id"), (action_hash, "action_hash")):
        if given is not None and (not isinstance(given, str) or not given.strip()):
            raise ResumeError(f"{key} must be non-empty text as pending shows it, got {given!r}")
    if action_hash is not None:
        action_hash = action_hash.strip().lower()
        if len(action_hash) < _MIN_HASH_PREFIX or any(c not in "0123456789abcdef" for c in action_hash):
            raise ResumeError(f"action hash {action_hash!r} must be at least {_MIN_HASH_PREFIX} hex digits of the "
                              "hash pending shows")
    return Named(target, interrupt_id, action_hash)


def describe(interrupt: Any) -> str:
    v = interrupt.value
    req = v["action_requests"][0]
    return f"{interrupt.id} {req['name']}({canonical_json(req['args'])}) hash {v['action_hash'][:16]}"
