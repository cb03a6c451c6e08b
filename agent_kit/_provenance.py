"""Provenance of the trusted context: every key a node writes carries who wrote it and a MAC.

The context (``customer_verified``, ``customer_id``, sentiment, ...) decides what policy allows, so
it must come from agent_kit's nodes only. The input schema keeps it out of a run's input, but a
served graph's API can write a thread's state directly (``threads.update_state``,
``command.update``, ``command.goto`` with a ``Send`` payload). The server's auth handler refuses
those writes to customers; this module is the second wall, for a deployment without the handler:

- a node writing a context key signs it: ``context["_signed"][key] = {"by": node, "from": source,
  "mac": KEY_ID:HMAC(audit key, [thread, key, value, by, from])}``; the audit key lives outside the
  database and the checkpoint (:mod:`agent_kit.audit_keys`), so no client can compute one;
- a node reading the context keeps only keys whose MAC checks for *this* thread; anything else
  (written through the API, copied from another thread, edited) is dropped, the node acts as if
  it were absent (an unverified customer), and the attempt is audited once (``refused``,
  ``rule: forged_context``).

The identity keys are audited when written as well (the ``verified`` entry of ``claim_identity``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from agent_kit._canonical import canonical_json

SIGNED = "_signed"
"""The context key holding each key's provenance."""
_DOMAIN = "agent_kit.context/1"


def _message(thread: str, key: str, value: Any, by: str, source: str) -> str:
    return canonical_json([_DOMAIN, thread, key, value, by, source])


def sign(keyring: Any, thread: str, update: Mapping[str, Any], *, by: str, source: str) -> dict[str, Any]:
    """``update`` with the provenance of each of its keys added (an empty update stays empty)."""
    plain = {k: v for k, v in update.items() if k != SIGNED}
    if not plain:
        return {}
    marks = {k: {"by": by, "from": source, "mac": keyring.sign(_message(thread, k, v, by, source))}
             for k, v in plain.items()}
    return {**plain, SIGNED: marks}


def trusted(keyring: Any, thread: str, context: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys of ``context`` a node of this thread wrote (with their provenance), and the rest."""
    context = dict(context or {})
    marks = context.pop(SIGNED, None)
    marks = marks if isinstance(marks, Mapping) else {}
    good: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    forged: dict[str, Any] = {}
    for key, value in context.items():
        mark = marks.get(key)
        ok = False
        if isinstance(mark, Mapping) and all(isinstance(mark.get(f), str) for f in ("by", "from", "mac")):
            try:
                ok = keyring.check(_message(thread, key, value, mark["by"], mark["from"]), mark["mac"]) is None
            except (TypeError, ValueError):  # a value canonical JSON cannot take was never signed
                ok = False
        if ok:
            good[key], kept[key] = value, mark
        else:
            forged[key] = value
    if kept:
        good[SIGNED] = kept
    return good, forged


def digest(forged: Mapping[str, Any]) -> str:
    """A short stable name of a forged write, so each is audited once however often it is read."""
    try:
        text = canonical_json(dict(forged))
    except (TypeError, ValueError):
        text = repr(sorted(forged))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def plain(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The context's values without their provenance (what policy rules and tools see)."""
    return {k: v for k, v in (context or {}).items() if k != SIGNED}


def merge(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Any]:
    """``new`` over ``old``, provenance included (key by key)."""
    old, new = dict(old or {}), dict(new or {})
    out = {**old, **new}
    if SIGNED in old or SIGNED in new:
        out[SIGNED] = {**(old.get(SIGNED) or {}), **(new.get(SIGNED) or {})}
        # a key written without provenance loses the old key's mark (it no longer describes it)
        for key in new:
            if key != SIGNED and key not in (new.get(SIGNED) or {}):
                out[SIGNED].pop(key, None)
    return out


ACTION_MAC = "_mac"
"""The key of an action (in a gate node's task) holding its MAC."""
_ACTION_DOMAIN = "agent_kit.action/1"


def _action_message(node: str, action: Mapping[str, Any], refused: Any) -> str:
    return canonical_json([_ACTION_DOMAIN, node, {k: v for k, v in action.items() if k != ACTION_MAC}, refused])


def sign_action(keyring: Any, node: str, action: Mapping[str, Any], refused: Any = None) -> dict[str, Any]:
    """The action, MAC'd for ``node``: a gate node takes an action only from agent_kit's own nodes
    (a ``Send`` payload written by anyone else, in-process or through a server's ``command.goto``,
    carries no valid MAC: its hash, grants, siblings, expiry or decision cannot be made up)."""
    plain = {k: v for k, v in action.items() if k != ACTION_MAC}
    return {**plain, ACTION_MAC: keyring.sign(_action_message(node, plain, refused))}


def action_signed(keyring: Any, node: str, action: Any, refused: Any = None) -> bool:
    """Whether agent_kit's nodes sent this action (and the refusal carried with it) to ``node`` as it is."""
    if not isinstance(action, Mapping) or not isinstance(action.get(ACTION_MAC), str):
        return False
    try:
        return keyring.check(_action_message(node, action, refused), action[ACTION_MAC]) is None
    except Exception:  # noqa: BLE001 - a value that cannot even be checked is not signed
        return False
