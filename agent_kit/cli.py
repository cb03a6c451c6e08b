"""The ``agent-kit`` command line: the operators' side of the product.

Exit codes: 0 done, 1 refused or a failed check, 2 usage error. Bad input gets one clear line on
stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from agent_kit.errors import AgentKitError, ResumeError, StaleInterruptError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Run, approve, audit and roll back permissioned LangGraph agents.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Opts:
    home: str | None = None
    db_url: str | None = None
    json: bool = False
    graph: str | None = None


opts = _Opts()


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def main_options(
    home: str = typer.Option(None, "--home", envvar="AGENT_KIT_HOME", help="Home folder (default ./.agent_kit)."),
    db_url: str = typer.Option(None, "--db-url", envvar="AGENT_KIT_DB_URL", help="Postgres URL for every store."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
    graph: str = typer.Option(None, "--graph", help="module:attr of the graph (default: langgraph.json)."),
) -> None:
    opts.home, opts.db_url, opts.json, opts.graph = home, db_url, json_, graph
    # The graph module opens its own resources from the environment: point it at the same place.
    if home:
        os.environ["AGENT_KIT_HOME"] = home
    if db_url:
        os.environ["AGENT_KIT_DB_URL"] = db_url


def _store() -> Any:
    from agent_kit.store import Store

    return Store.open(home=opts.home, db_url=opts.db_url)


def _runtime() -> Any:
    from agent_kit._loader import graph_ref, load_object
    from agent_kit.runtime import AgentRuntime

    store = _store()
    graph = load_object(graph_ref(opts.graph))
    return AgentRuntime(graph, store=store)


def _guard(fn: Callable[[], None]) -> None:
    try:
        fn()
    except typer.Exit:
        raise
    except (ResumeError, StaleInterruptError) as exc:
        _fail(str(exc), 1)
    except AgentKitError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _show_turn(result: Any) -> None:
    if opts.json:
        _emit(result.to_json())
        return
    if result.reply:
        out.print(f"[bold]agent:[/bold] {result.reply}")
    for p in result.pending:
        _show_pending_item(p)
    out.print(f"[dim]thread {result.thread_id} · {result.status}[/dim]")


def _show_pending_item(p: dict[str, Any]) -> None:
    act = p["action"]
    args = ", ".join(f"{k}={v!r}" for k, v in act["args"].items())
    out.print(f"[yellow]⏸ {p['kind']}[/yellow] {act['name']}({args})")
    out.print(f"  reason: {p.get('reason')}  ·  rule: {p.get('rule')}")
    if p["kind"] == "approval":
        need = p.get("approvals_needed") or 1
        got = len(p.get("approvals") or [])
        out.print(f"  needs: role {p.get('required_role')} ({got}/{need} approvals) · expires {p.get('expires_at')}")
        out.print(f"  act:   agent-kit approve {p['thread_id']} --interrupt {p['interrupt_id']} --as NAME"
                  f"   |   agent-kit reject {p['thread_id']} --interrupt {p['interrupt_id']} --as NAME --reason TEXT")
    elif p["kind"] == "escalation":
        out.print(f"  summary: {p.get('summary')}")
        out.print(f"  act:   agent-kit resolve {p['thread_id']} --as NAME --note TEXT [--return]")
    else:
        out.print(f"  the customer answers in the chat: {p.get('question')}")


@app.command()
def chat(
    thread: str = typer.Option(None, "--thread", help="Thread id (new one if omitted)."),
    message: str = typer.Option(None, "--message", "-m", help="One customer message; omit for a REPL."),
    as_: str = typer.Option("customer", "--as", help="Who is writing (default: the customer)."),
) -> None:
    """One customer turn, or a REPL without --message."""

    def run() -> None:
        rt = _runtime()
        tid = thread or f"t-{uuid.uuid4().hex[:8]}"
        if message is not None:
            _show_turn(rt.send(tid, message, actor=as_))
            return
        out.print(f"[dim]thread {tid}; an empty line or Ctrl-D ends[/dim]")
        while True:
            try:
                line = input("you> ")
            except EOFError:
                break
            if not line.strip():
                break
            try:
                _show_turn(rt.send(tid, line, actor=as_))
            except AgentKitError as exc:
                err.print(f"error: {exc}", markup=False)

    _guard(run)


@app.command()
def pending(kind: str = typer.Option(None, "--kind", help="approval, verification or escalation")) -> None:
    """Runs paused on a person, from the inbox index."""

    def run() -> None:
        if kind and kind not in ("approval", "verification", "escalation"):
            _fail(f"unknown kind {kind!r}; use approval, verification or escalation", 2)
        items = _store().inbox.list(kind=kind)
        if opts.json:
            _emit([i.to_json() for i in items])
            return
        if not items:
            out.print("nothing pending")
            return
        t = Table("kind", "thread", "interrupt", "action", "hash", "needs", "reason", "expires")
        for i in items:
            args = ", ".join(f"{k}={v}" for k, v in i.action["args"].items())
            t.add_row(i.kind, i.thread_id, i.interrupt_id[:12], f"{i.action['name']}({args})", i.action_hash[:10],
                      i.required_role or "customer", i.reason or "", i.expires_at or "")
        out.print(t)

    _guard(run)


def _decide(verb: str, thread: str, interrupt: str | None, as_: str | None, **kw: Any) -> None:
    def run() -> None:
        if not as_:
            _fail("missing --as NAME: every decision is made by an identified person", 2)
        rt = _runtime()
        if not rt.exists(thread):
            _fail(f"unknown thread {thread!r}", 1)
        if verb == "approve":
            result = rt.approve(thread, approver=as_, interrupt_id=interrupt, edit=kw.get("edit"))
        elif verb == "reject":
            result = rt.reject(thread, approver=as_, interrupt_id=interrupt, reason=kw["reason"])
        else:
            result = rt.resolve(thread, approver=as_, interrupt_id=interrupt, note=kw["note"], hand_back=kw["hand_back"])
        _show_turn(result)

    _guard(run)


@app.command()
def approve(
    thread: str,
    interrupt: str = typer.Option(None, "--interrupt", help="Interrupt id (needed when several are pending)."),
    as_: str = typer.Option(None, "--as", help="Approver name (roles come from the policy)."),
    edit: str = typer.Option(None, "--edit", help='Edited action as JSON: {"name": ..., "args": {...}} or just args.'),
) -> None:
    """Approve (or edit and approve) a pending action and resume the run."""
    edited = None
    if edit is not None:
        try:
            edited = json.loads(edit)
        except ValueError as exc:
            _fail(f"--edit is not valid JSON: {exc}", 2)
        if not isinstance(edited, dict):
            _fail("--edit must be a JSON object", 2)
        if "args" not in edited:
            edited = {"name": None, "args": edited}
    if edited is not None and edited.get("name") is None:
        def fill() -> None:
            rt = _runtime()
            items = [p for p in rt.pending(thread_id=thread) if not interrupt or p.interrupt_id == interrupt]
            if not items:
                _fail(f"nothing pending on thread {thread!r}", 1)
            edited["name"] = items[0].action["name"]

        _guard(fill)
    _decide("approve", thread, interrupt, as_, edit=edited)


@app.command()
def reject(
    thread: str,
    interrupt: str = typer.Option(None, "--interrupt"),
    as_: str = typer.Option(None, "--as"),
    reason: str = typer.Option(None, "--reason", help="Why; the model is told."),
) -> None:
    """Reject a pending action; the model is told why."""
    if not reason:
        _fail("missing --reason TEXT: the model is told why", 2)
    _decide("reject", thread, interrupt, as_, reason=reason)


@app.command()
def resolve(
    thread: str,
    interrupt: str = typer.Option(None, "--interrupt"),
    as_: str = typer.Option(None, "--as"),
    note: str = typer.Option(None, "--note", help="The resolution; the customer gets it as the reply."),
    hand_back: bool = typer.Option(False, "--return", help="Hand the run back to the agent with the note."),
) -> None:
    """Close an escalated case, or hand it back to the agent with --return."""
    if not note:
        _fail("missing --note TEXT", 2)
    _decide("resolve", thread, interrupt, as_, note=note, hand_back=hand_back)


@app.command()
def audit(
    thread: str = typer.Argument(None),
    verify: bool = typer.Option(False, "--verify", help="Check the hash chain; exit 1 on any tampering."),
    expect_head: str = typer.Option(None, "--expect-head", help="A head hash exported earlier (catches truncation)."),
) -> None:
    """The audit trail, and whether its chain is intact."""

    def run() -> None:
        log = _store().audit
        if verify:
            report = log.verify(expected_head=expect_head)
            data = {"ok": report.ok, "count": report.count, "head_seq": report.head_seq, "head_hash": report.head_hash,
                    "first_bad_seq": report.first_bad_seq, "problem": report.problem}
            if opts.json:
                _emit(data)
            elif report.ok:
                out.print(f"audit chain intact: {report.count} entries, head {report.head_seq} {report.head_hash}")
            else:
                err.print(f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem}", markup=False)
            raise typer.Exit(0 if report.ok else 1)
        entries = log.entries(thread)
        if opts.json:
            _emit([e.to_json() for e in entries])
            return
        t = Table("seq", "at", "thread", "kind", "tool", "actor", "hash", "detail")
        for e in entries:
            detail = ", ".join(f"{k}={v}" for k, v in (e.data or {}).items() if k in ("reason", "role", "note", "error", "message", "hidden_fields", "approvals"))
            t.add_row(str(e.seq), e.at[11:19], e.thread_id or "", e.kind, e.tool or "", e.actor,
                      (e.action_hash or "")[:10], detail[:80])
        out.print(t)

    _guard(run)


@app.command()
def rollback(entry: int, as_: str = typer.Option(None, "--as")) -> None:
    """Run the registered compensation of an executed action (itself permissioned and audited)."""

    def run() -> None:
        if not as_:
            _fail("missing --as NAME", 2)
        from agent_kit.rollback import rollback as do_rollback

        result = do_rollback(_runtime(), entry, approver=as_)
        if opts.json:
            _emit(result)
        else:
            out.print(f"rolled back entry {entry} with {result['compensation']} (audit entry {result['audit_seq']})")

    _guard(run)


@app.command()
def checklist() -> None:
    """The pre-deployment checklist; exit 1 where a question has no answer."""

    def run() -> None:
        from agent_kit.checklist import build_checklist, to_markdown

        rt = _runtime()
        report = build_checklist(rt.layer.registry, rt.layer.policy)
        if opts.json:
            _emit(report)
        else:
            out.print(to_markdown(report), markup=False)
        raise typer.Exit(0 if report["ok"] else 1)

    _guard(run)


@app.command()
def graph(png: Path = typer.Option(None, "--png", help="Write a PNG here (where it can be drawn offline).")) -> None:
    """The graph with its permission nodes, as Mermaid text (or a PNG)."""

    def run() -> None:
        from agent_kit._loader import graph_ref, load_object
        from agent_kit.graph import layer_of

        g = layer_of(load_object(graph_ref(opts.graph))).compile(checkpointer=None).get_graph()
        if png is not None:
            try:
                png.write_bytes(g.draw_png())
            except ImportError as exc:
                _fail(f"cannot draw a PNG offline here ({exc}); use the Mermaid text", 1)
            out.print(f"wrote {png}")
            return
        sys.stdout.write(g.draw_mermaid())

    _guard(run)


@app.command()
def demo() -> None:
    """The reference story offline: every mode once, one approval, the audit verified."""

    def run() -> None:
        from agent_kit._loader import graph_ref, load_object

        ref = graph_ref(opts.graph)
        story = load_object(ref.rsplit(":", 1)[0] + ":demo")
        story(_runtime(), console=out, as_json=opts.json)

    _guard(run)


def main() -> None:
    try:
        app()
    except AgentKitError as exc:  # anything that escaped a command's guard
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
