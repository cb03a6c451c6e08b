"""How the command line shows things to a person: the audit trail as a table, values as text.

Kept apart from ``cli.py`` so the commands stay short; nothing here touches storage or the graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["AUDIT_COLUMNS", "audit_details", "audit_rows", "audit_table", "print_audit", "terminal_text", "value_text"]

AUDIT_COLUMNS = ("seq", "time (UTC)", "thread", "kind", "tool", "actor", "action", "details")
"""The audit table's header row."""

_MAX_TEXT = 120


def value_text(value: Any, limit: int = _MAX_TEXT) -> str:
    """A value as a person reads it: strings bare (quoted only when empty), the rest as JSON,
    every control character escaped, cut at ``limit`` characters."""
    if isinstance(value, str):
        text = value if value.strip() else json.dumps(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        except ValueError:  # a circular structure: not JSON, still shown
            text = str(value)
    text = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def terminal_text(text: str) -> str:
    """Text from the model or a customer, safe to write to a terminal: line breaks and tabs kept,
    every other control or formatting character (escape sequences, NUL, bidi overrides) escaped,
    so a reply can neither rewrite the operator's screen nor reorder what it shows."""
    return "".join(ch if ch.isprintable() or ch in "\n\t " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={value_text(v, 60)}" for k, v in args.items())


def _people(approvals: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{a.get('approver', '?')}" + (f" ({a['role']})" if a.get("role") else "") for a in approvals)


def audit_details(kind: str, data: Mapping[str, Any]) -> str:
    """The readable part of one entry's data: what a person needs, none of the hashes."""
    parts: list[str] = []
    reason = data.get("reason")
    if reason:
        parts.append(value_text(reason))
    if data.get("rule") and str(data["rule"]) not in str(reason or ""):
        parts.append(f"rule {data['rule']}")
    role = data.get("required_role")
    if role and kind.endswith("_requested") and str(role) not in str(reason or ""):
        parts.append(f"needs {data['required_role']}")
    if data.get("hidden_fields"):
        parts.append("hidden from the model: " + ", ".join(map(str, data["hidden_fields"])))
    if kind in ("approved", "rejected", "edited") and data.get("role"):
        parts.append(f"as {data['role']}")
    if isinstance(data.get("approvals"), int) and data.get("needed"):
        parts.append(f"approval {data['approvals']} of {data['needed']}")
    if data.get("message"):
        parts.append(f"message: {value_text(data['message'])}")
    if isinstance(data.get("approvals"), list) and data["approvals"]:
        parts.append("approved by " + _people(data["approvals"]))
    if data.get("verified"):
        parts.append("confirmed by the customer: " + ", ".join(map(str, data["verified"])))
    if data.get("verification") and kind in ("verified", "rejected"):
        parts.append(f"{data['verification']} answer: {value_text(data.get('answer'), 60)}")
    if data.get("new_tool"):
        parts.append(f"edited to {data['new_tool']}({_args(data.get('new_args') or {})})")
    if kind in ("recommended", "drafted") and isinstance(data.get("args"), Mapping):
        parts.append(_args(data["args"]))
    if data.get("draft") is not None and kind == "drafted":
        draft = data["draft"]
        parts.append(f"draft {draft.get('draft_id', '') if isinstance(draft, Mapping) else draft}".rstrip())
    if data.get("note"):
        parts.append(f"note: {value_text(data['note'])}")
    if data.get("resolution"):
        parts.append({"close": "case closed", "return": "handed back to the agent"}.get(
            str(data["resolution"]), f"resolution {data['resolution']}"))
    if data.get("compensation"):
        parts.append(f"{data['compensation']}({_args(data.get('args') or {})})"
                     + (f" reversing entry {data['entry']}" if data.get("entry") is not None else ""))
    if data.get("reconciled"):
        parts.append("reconciled through its idempotency key")
    if data.get("error"):
        parts.append(f"error: {value_text(data['error'])}")
    return "; ".join(parts)


def audit_rows(entries: Iterable[Any]) -> list[tuple[str, ...]]:
    """One row of text per entry, in :data:`AUDIT_COLUMNS` order."""
    return [
        (str(e.seq), e.at[:19].replace("T", " "), e.thread_id or "-", e.kind, e.tool or "-", e.actor,
         (e.action_hash or "-")[:10], audit_details(e.kind, e.data or {}))
        for e in entries
    ]


def print_audit(console: Any, entries: Iterable[Any]) -> None:
    """Print the trail as a table on ``console``: as wide as the terminal, and never so narrow
    that a column is dropped (the details column keeps at least 40 characters)."""
    from rich.console import Console

    table, fixed = audit_table(entries)
    # Console.print(width=) can only narrow; a console of the needed width writes to the same stream.
    wide = Console(width=max(console.width, fixed + (40 if console.is_terminal else 100)), highlight=False,
                   stderr=console.stderr)
    wide.print(table)


def audit_table(entries: Iterable[Any]) -> tuple[Any, int]:
    """The trail as a rich ``Table`` with a header row, and the width its fixed columns take."""
    from rich import box
    from rich.table import Table

    rows = audit_rows(entries)
    fixed = 0
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for i, name in enumerate(AUDIT_COLUMNS):
        if name == "details":  # takes what is left, wrapped
            table.add_column(name, min_width=24, overflow="fold")
        else:  # never squeezed out of a narrow terminal
            width = max([len(name), *(len(r[i]) for r in rows)])
            fixed += width + 2
            table.add_column(name, justify="right" if name == "seq" else "left", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    return table, fixed
