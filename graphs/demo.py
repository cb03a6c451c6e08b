"""The reference story, offline: every mode once, one approval by an operator, the audit verified.

Run it with ``agent-kit demo`` (or ``make demo``): it runs on a fresh folder, ``<home>/demo``, wiped
at the start of each run, so it can be run again and again. Approvals go through the same public
resume path an operator uses (:meth:`agent_kit.AgentRuntime.approve`); the escalated case is left
open, for you to resolve with the printed command.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from rich.console import Console

STORY: list[tuple[str, str]] = [
    ("read_only: verify the customer (name and zip, checked in the back office)", "Hi, I'm Jane Doe, zip 94107"),
    ("read_only: an order, with hidden fields", "Where is my order 1001?"),
    ("recommend_only: a recommendation, nothing runs", "What do you recommend for order 1001? It arrived damaged."),
    ("draft_only: a reply drafted, not sent", "Draft a reply about the late delivery"),
    ("execute_limited: a ticket", "Open a ticket about the damaged box"),
    ("execute_limited: a $20 refund, no person", "Refund $20 on order 1001"),
    ("execute_gated: an $80 refund waits for a support_lead", "Refund $80 on order 1001"),
    ("limits add up: $10 more, after $100 refunded today, also waits for a support_lead", "Refund $10 on order 1004"),
    ("execute_gated: cancelling needs the customer's own yes", "Cancel order 1002"),
    ("escalate: a $2,400 refund goes to a person", "Refund $2,400 on order 1003"),
]
"""(what the step shows, what the customer writes)."""


def demo(runtime: Any, *, console: Console | None = None, as_json: bool = False,
         thread_id: str = "demo-jane") -> dict[str, Any]:
    """Run the story on ``runtime``; return a JSON summary (printed instead of the story with ``as_json``).

    Raises:
        SystemExit: 1 when the audit chain does not verify at the end.
    """
    con = console or Console()

    def say(text: str, *, markup: bool = True) -> None:
        if not as_json:
            con.print(text, markup=markup)

    steps: list[dict[str, Any]] = []
    home = getattr(runtime.store, "home", None)
    cli = "agent-kit" + (f" --home {shlex.quote(str(home))}" if home else "")

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
            reads = runtime.store.audit.entries(thread_id, kind="read")
            hidden = reads[-1].data.get("hidden_fields") if reads else None
            say(f"[dim]hidden from the model: {', '.join(hidden or []) or 'nothing'}[/dim]")
        for p in result.pending:
            act = p["action"]
            args = ", ".join(f"{k}={v!r}" for k, v in act["args"].items())
            if p["kind"] == "approval":
                say("[yellow]⏸ operator inbox: waiting for approval[/yellow]")
                say(f"  {act['name']}({args})", markup=False)
                say(f"  needs role {p['required_role']} · rule {p['rule']} · hash {p['action_hash'][:16]}… "
                    f"· expires {p['expires_at']}", markup=False)
                say(f"  {cli} approve {p['thread_id']} --interrupt {p['interrupt_id']} --as lee", markup=False)
                say("[bold]operator lee (support_lead) approves[/bold]")
                result = runtime.approve(p, approver="lee")
                say(f"[bold]agent:[/bold] {result.reply}")
                steps.append({"step": "lee approves", **result.to_json()})
            elif p["kind"] == "verification":
                turn("the customer confirms", "yes")
            elif p["kind"] == "escalation":
                say("[yellow]⏸ operator inbox: escalated to a person[/yellow]")
                say(f"  {p['summary']}", markup=False)
    report = runtime.store.audit.verify()
    entries = runtime.store.audit.entries(thread_id)
    say("\n[bold]audit trail[/bold]")
    for e in entries:
        d = e.data or {}
        detail = d.get("reason") or d.get("role") or (", ".join(d["hidden_fields"]) if d.get("hidden_fields") else "")
        say(f"{e.seq:>4}  {e.kind:<22} {e.tool or '':<22} {e.actor:<9} {detail}", markup=False)
    say(f"[green]audit chain intact[/green]: {report.count} entries, head {report.head_hash}" if report.ok
        else f"[red]audit chain broken at entry {report.first_bad_seq}[/red]: {report.problem}")
    refunds = [e.seq for e in entries if e.kind == "executed" and e.tool == "issue_refund"]
    say("\n[bold]your turn, as an operator[/bold] (the demo's home is kept until the next demo run):")
    escalated = [i.interrupt_id for i in runtime.pending(thread_id, kind="escalation")]
    resolve = (f"resolve {thread_id} --interrupt {escalated[0]} --as morgan --note 'Refund approved by phone'"
               if escalated else f"resolve {thread_id} --as morgan --note 'Refund approved by phone'")
    for cmd in ("pending", resolve,
                f"audit {thread_id}", "audit --verify",
                *([f"rollback {refunds[-1]} --as lee"] if refunds else [])):
        say(f"  {cli} {cmd}", markup=False)
    summary = {"thread_id": thread_id, "home": str(home) if home else None, "steps": steps, "audit_ok": report.ok,
               "audit_entries": len(entries), "audit_head": report.head_hash}
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    if not report.ok:
        raise SystemExit(1)
    return summary
