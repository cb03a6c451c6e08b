"""The reference story, offline: every mode once, one approval by an operator, the audit verified.

Run it with ``agent-kit demo`` (or ``make demo``). Approvals go through the same public resume
path an operator uses (:meth:`agent_kit.AgentRuntime.approve`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

STORY: list[tuple[str, str]] = [
    ("read_only: verify the customer", "Hi, I'm jane@example.com"),
    ("read_only: an order, with hidden fields", "Where is my order 1001?"),
    ("recommend_only: a recommendation, nothing runs", "What do you recommend for order 1001? It arrived damaged."),
    ("draft_only: a reply drafted, not sent", "Draft a reply about the late delivery"),
    ("execute_limited: a ticket", "Open a ticket about the damaged box"),
    ("execute_limited: a $20 refund, no person", "Refund $20 on order 1001"),
    ("execute_gated: an $80 refund waits for a support_lead", "Refund $80 on order 1001"),
    ("execute_gated: cancelling needs the customer's yes", "Cancel order 1002"),
    ("escalate: a $2,400 refund goes to a person", "Refund $2,400 on order 1003"),
]


def demo(runtime: Any, *, console: Console | None = None, as_json: bool = False, thread_id: str = "demo-jane") -> dict[str, Any]:
    """Run the story on ``runtime``; return a JSON summary (printed with ``as_json``)."""
    con = console or Console()
    say = (lambda *a, **k: None) if as_json else con.print
    steps: list[dict[str, Any]] = []
    home = getattr(runtime.store, "home", None)
    home_flag = f" --home {home}" if home else ""

    def turn(title: str, message: str) -> Any:
        say(f"\n[bold cyan]── {title}[/bold cyan]")
        say(f"[bold]customer:[/bold] {message}")
        result = runtime.send(thread_id, message)
        say(f"[bold]agent:[/bold] {result.reply}")
        steps.append({"step": title, "message": message, **result.to_json()})
        return result

    for title, message in STORY:
        result = turn(title, message)
        if message.startswith("Where is my order"):
            hidden = [e.data.get("hidden_fields") for e in runtime.store.audit.entries(thread_id, kind="read")][-1]
            say(f"[dim]hidden from the model: {', '.join(hidden or [])}[/dim]")
        for p in result.pending:
            if p["kind"] == "approval":
                say(Panel.fit(
                    f"[bold]{p['action']['name']}[/bold]({', '.join(f'{k}={v!r}' for k, v in p['action']['args'].items())})\n"
                    f"needs role [bold]{p['required_role']}[/bold] · rule {p['rule']} · expires {p['expires_at']}\n"
                    f"hash {p['action_hash'][:16]}…\n"
                    f"agent-kit{home_flag} approve {p['thread_id']} --interrupt {p['interrupt_id']} --as lee",
                    title="operator inbox: waiting for approval"))
                say("[bold]operator lee (support_lead) approves[/bold]")
                result = runtime.approve(thread_id, approver="lee", interrupt_id=p["interrupt_id"])
                say(f"[bold]agent:[/bold] {result.reply}")
                steps.append({"step": "lee approves", **result.to_json()})
            elif p["kind"] == "verification":
                turn("the customer confirms", "yes")
            elif p["kind"] == "escalation":
                say(Panel.fit(f"{p['summary']}\nagent-kit{home_flag} resolve {p['thread_id']} --as morgan --note TEXT",
                              title="operator inbox: escalated"))
    report = runtime.store.audit.verify()
    entries = runtime.store.audit.entries(thread_id)
    if not as_json:
        t = Table("seq", "kind", "tool", "actor", "detail", title="audit trail")
        for e in entries:
            d = e.data or {}
            detail = d.get("reason") or d.get("role") or (", ".join(d["hidden_fields"]) if d.get("hidden_fields") else "")
            t.add_row(str(e.seq), e.kind, e.tool or "", e.actor, str(detail)[:60])
        con.print(t)
        con.print(f"[green]audit chain intact[/green]: {report.count} entries, head {report.head_hash[:16]}…"
                  if report.ok else f"[red]audit chain broken at {report.first_bad_seq}[/red]")
    summary = {"thread_id": thread_id, "steps": steps, "audit_ok": report.ok, "audit_entries": len(entries)}
    if as_json:
        import json

        print(json.dumps(summary, indent=2, default=str))
    if not report.ok:
        raise SystemExit(1)
    return summary
