"""The ``agent-kit`` command line: the operators' side of the product.

Every command takes ``--home`` / ``--db-url`` / ``--json`` / ``--graph`` before or after its name.
Exit codes: 0 done, 1 refused, a failed check, or an expected failure of the environment (the store
cannot be reached, read or written; the model server is down or answers garbage), 2 usage error.
Bad input and expected failures get one clear line on stderr naming the path or URL, never a
traceback (set ``AGENT_KIT_DEBUG=1`` to see one for an internal error).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import shutil
import sys
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

from agent_kit.errors import AgentKitError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Run, approve, audit and roll back permissioned LangGraph agents.")


class _LazyConsole:
    """A rich ``Console`` made on first use: ``--help`` never pays for importing rich."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            # No `file=`: rich then writes to whatever sys.stdout / sys.stderr are at the time (tests swap them).
            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return getattr(self._console, name)


out: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)

DEMO_MARKER = ".agent_kit_demo"
"""Marks a folder made by ``agent-kit demo``, so the demo only ever wipes its own folder."""


class _Opts:
    """The options every command shares; set by the main callback, overridden per command."""

    home: str | None = None
    db_url: str | None = None
    json: bool = False
    graph: str | None = None


opts = _Opts()
_opened: list[Any] = []  # stores opened by this command, closed when it ends


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _is_environment_failure(exc: BaseException) -> bool:
    """A storage failure that reached the command line untyped: a file that cannot be written,
    or a database error from a store (ours or the application's own)."""
    import sqlite3

    from agent_kit._db import storage_failures

    return isinstance(exc, (OSError, sqlite3.DatabaseError, *storage_failures()))


def _environment_failure(exc: BaseException) -> str:
    """One line for a storage failure that reached the command line untyped (an application's
    own database, a file it writes): what failed, where, and what it said."""
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror or exc}"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    from agent_kit._db import describe_url
    from agent_kit.store import DEFAULT_HOME

    where = f"the files under {Path(opts.home or os.environ.get('AGENT_KIT_HOME') or DEFAULT_HOME).resolve()}"
    if type(exc).__module__.startswith("psycopg") and opts.db_url:
        where = f"PostgreSQL at {describe_url(opts.db_url)}"
    from agent_kit._db import _hint

    hint = _hint(exc) or " (check free space, permissions and the server, then try again)"
    return f"a database operation on {where} failed ({type(exc).__name__}: {first}){hint}"


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# -- shared options ------------------------------------------------------------------------------
HomeOpt = Annotated[Optional[str], typer.Option("--home", metavar="DIR",  # noqa: UP045
                                                help="Home folder (default: AGENT_KIT_HOME or ./.agent_kit).")]
DbUrlOpt = Annotated[Optional[str], typer.Option("--db-url", metavar="URL",  # noqa: UP045
                                                 help="Postgres URL for every store (or AGENT_KIT_DB_URL).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
GraphOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--graph", metavar="MODULE:ATTR", help="module:attr or ./file.py:attr of the graph (default: langgraph.json).")]

_COMMON = [
    inspect.Parameter("common_home", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=HomeOpt),
    inspect.Parameter("common_db_url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DbUrlOpt),
    inspect.Parameter("common_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
    inspect.Parameter("common_graph", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=GraphOpt),
]


def _set_options(home: str | None, db_url: str | None, json_: bool, graph: str | None) -> None:
    if home is not None:
        opts.home = home
    if db_url is not None:
        opts.db_url = db_url
    opts.json = opts.json or json_
    if graph is not None:
        opts.graph = graph
    # The graph module opens its own resources (the back office) from the environment when it is
    # imported: point it at the same place as the store, before it is loaded.
    if opts.home:
        os.environ["AGENT_KIT_HOME"] = opts.home
    if opts.db_url:
        os.environ["AGENT_KIT_DB_URL"] = opts.db_url


def _command(fn: Callable[..., None], *, group: typer.Typer | None = None, name: str | None = None
             ) -> Callable[..., None]:
    """Register ``fn`` as a command (of ``group``, else the top level) that also takes the shared
    options after its name, and that turns every agent_kit error into one line on stderr."""
    sig = inspect.signature(fn, eval_str=True)
    params = [*sig.parameters.values(), *_COMMON]

    @functools.wraps(fn)
    def wrapper(**kw: Any) -> None:
        _set_options(kw.pop("common_home"), kw.pop("common_db_url"), kw.pop("common_json"), kw.pop("common_graph"))
        try:
            fn(**kw)
        except AgentKitError as exc:
            _fail(str(exc), 1)
        except BrokenPipeError:
            raise  # output into a closed pipe: click ends it quietly
        except Exception as exc:
            if not _is_environment_failure(exc):
                raise
            _fail(_environment_failure(exc), 1)
        finally:
            while _opened:
                try:
                    _opened.pop().close()
                except Exception:  # noqa: BLE001  (closing must not hide the command's own outcome)
                    pass

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    (group or app).command(name or fn.__name__)(wrapper)
    return fn


@app.callback()
def main_options(
    home: Annotated[Optional[str], typer.Option("--home", envvar="AGENT_KIT_HOME", metavar="DIR",  # noqa: UP045
                                                help="Home folder (default ./.agent_kit).")] = None,
    db_url: Annotated[Optional[str], typer.Option("--db-url", envvar="AGENT_KIT_DB_URL", metavar="URL",  # noqa: UP045
                                                  help="Postgres URL for every store.")] = None,
    json_: JsonOpt = False,
    graph: GraphOpt = None,
) -> None:
    opts.home, opts.db_url, opts.json, opts.graph = None, None, False, None
    _set_options(home, db_url, json_, graph)


# -- resources -----------------------------------------------------------------------------------
def _store() -> Any:
    from agent_kit.store import Store

    store = Store.open(home=opts.home, db_url=opts.db_url)
    _opened.append(store)
    return store


def _load_graph() -> Any:
    from agent_kit._loader import graph_ref, load_object

    return load_object(graph_ref(opts.graph))


def _runtime() -> Any:
    from agent_kit.runtime import AgentRuntime

    graph = _load_graph()
    return AgentRuntime(graph, store=_store())


# -- showing results -----------------------------------------------------------------------------
def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _show_turn(result: Any) -> None:
    if opts.json:
        _emit(result.to_json())
        return
    if result.reply:
        from agent_kit._cli_render import terminal_text

        out.print("[bold]agent:[/bold] ", end="")
        out.print(terminal_text(result.reply), markup=False)
    for p in result.pending:
        _show_pending_item(p)
    out.print(f"[dim]thread {result.thread_id} · {result.status}[/dim]")


def _show_pending_item(p: dict[str, Any]) -> None:
    act = p["action"]
    home = f" --home {opts.home}" if opts.home else ""
    tid, iid = p["thread_id"], p["interrupt_id"]
    out.print(f"[yellow]⏸ {p['kind']}[/yellow] thread {tid} · interrupt {iid}")
    out.print(f"  action:  {act['name']}({_args_text(act['args'])})", markup=False)
    out.print(f"  hash:    {p['action_hash']}", markup=False)
    out.print(f"  asks:    {p.get('question') or p.get('reason')}", markup=False)
    if p.get("rule"):
        out.print(f"  rule:    {p.get('rule')} · requested by {p.get('requested_by') or 'the customer'}", markup=False)
    served = p.get("served_by")
    if p["kind"] == "approval":
        need = p.get("approvals_needed") or 1
        got = len(p.get("approvals") or [])
        who = ", ".join(a.get("approver", "?") for a in p.get("approvals") or [])
        out.print(f"  acts:    a {p.get('required_role')} ({got}/{need} approvals{': ' + who if who else ''}; not "
                  f"{p.get('requested_by') or 'the requester'}) · expires {p.get('expires_at')}", markup=False)
    elif p["kind"] == "escalation":
        roles = p.get("receivers") or ([p["required_role"]] if p.get("required_role") else [])
        out.print(f"  summary: {p.get('summary')}", markup=False)
        out.print(f"  acts:    a {' or '.join(roles) or 'person'}, who resolves the case", markup=False)
    else:
        out.print(f"  acts:    the customer ({p.get('requested_by') or 'customer'}), who answers in the chat",
                  markup=False)
    if served:
        decision = {"approval": '{"type": "approve"}', "escalation": '{"type": "respond", "message": NOTE}'}.get(
            p["kind"])
        if decision is None:
            out.print("  resume:  served by LangGraph Server: the customer answers in their chat there", markup=False)
        else:
            out.print(f"  resume:  served by LangGraph Server (graph {served.get('graph_id') or '?'}): POST "
                      f"/threads/{tid}/runs with command.resume = {{\"{iid}\": {{\"decisions\": [{decision}], "
                      f"\"action_hash\": \"{p['action_hash']}\"}}}}, signed in as the approver", markup=False)
        return
    if p["kind"] == "approval":
        out.print(f"  approve: agent-kit{home} approve {tid} --interrupt {iid} --as NAME", markup=False)
        out.print(f"  reject:  agent-kit{home} reject {tid} --interrupt {iid} --as NAME --reason TEXT", markup=False)
    elif p["kind"] == "escalation":
        out.print(f"  resolve: agent-kit{home} resolve {tid} --interrupt {iid} --as NAME --note TEXT [--return]",
                  markup=False)
    else:
        out.print(f"  answer:  agent-kit{home} chat --thread {tid} --message TEXT", markup=False)


# -- commands ------------------------------------------------------------------------------------
@_command
def chat(
    thread: Annotated[Optional[str], typer.Option("--thread", metavar="THREAD",  # noqa: UP045
                                                  help="Thread id (a new one if omitted).")] = None,
    message: Annotated[Optional[str], typer.Option("--message", "-m", metavar="TEXT",  # noqa: UP045
                                                   help="One customer message; omit for a REPL.")] = None,
    as_: Annotated[str, typer.Option("--as", metavar="NAME",
                                     help="Who is writing (default: the customer).")] = "customer",
) -> None:
    """One customer turn, or a REPL without --message."""
    if message is not None and not message.strip():
        _fail("--message is empty; give the customer's text", 2)
    rt = _runtime()
    tid = thread or f"t-{uuid.uuid4().hex[:8]}"
    if opts.json:  # one JSON object a turn, never a stream
        if message is not None:
            _show_turn(rt.send(tid, message, actor=as_))
            return
        _json_repl(rt, tid, as_)
        return
    from agent_kit._cli_chat import ChatView, repl

    view = ChatView(out, rt, tid, as_, _show_pending_item)
    if message is not None:
        view.turn(message)
        return
    repl(out, err, view, history=_history_file(), show_pending=_show_pending_item,
         show_audit=lambda: _print_audit(rt.store.audit.entries(tid), tid))


def _json_repl(rt: Any, tid: str, as_: str) -> None:
    while True:
        try:
            line = input("")
        except (EOFError, KeyboardInterrupt):
            break
        if not line.strip():
            break
        try:
            _show_turn(rt.send(tid, line, actor=as_))
        except AgentKitError as exc:  # one bad turn does not end the conversation
            err.print(f"error: {exc}", markup=False)


def _history_file() -> Path | None:
    """The REPL's line history: in the home folder (None on Postgres without one)."""
    from agent_kit.store import DEFAULT_HOME

    if opts.db_url and not opts.home:
        return None
    return Path(opts.home or os.environ.get("AGENT_KIT_HOME") or DEFAULT_HOME) / "chat_history"


def _print_audit(entries: list[Any], thread: str | None) -> None:
    if not entries:
        out.print("no audit entries" + (f" for thread {thread!r}" if thread else ""))
        return
    from agent_kit._cli_render import print_audit

    print_audit(out, entries)


@_command
def pending(
    kind: Annotated[Optional[str], typer.Option("--kind", metavar="KIND",  # noqa: UP045
                                                help="approval, verification or escalation.")] = None,
    thread: Annotated[Optional[str], typer.Option("--thread", metavar="THREAD",  # noqa: UP045
                                                  help="Only this thread.")] = None,
    ids: Annotated[bool, typer.Option("--ids", help="Only the interrupt ids, one a line (for scripts).")] = False,
) -> None:
    """Runs paused on a person (from the inbox index): what each waits for, who must act and how."""
    if kind and kind not in ("approval", "verification", "escalation"):
        _fail(f"unknown kind {kind!r}; use approval, verification or escalation", 2)
    inbox = _store().inbox
    items = inbox.for_thread(thread) if thread else inbox.list(kind=kind)
    items = [i for i in items if kind is None or i.kind == kind]
    if ids:
        for i in items:
            sys.stdout.write(f"{i.interrupt_id}\n")
        return
    if opts.json:
        _emit([i.to_json() for i in items])
        return
    if not items:
        out.print("nothing pending")
        return
    for i in items:
        _show_pending_item(i.to_json())


def _check_thread(rt: Any, thread: str) -> None:
    if not rt.exists(thread):
        served = [i for i in rt.store.inbox.for_thread(thread) if i.served_by]
        if served:
            graph = served[0].served_by.get("graph_id") or "?"
            _fail(f"thread {thread!r} is run by LangGraph Server (graph {graph}), not by this command line: resume "
                  f"it there (POST /threads/{thread}/runs with command.resume; see agent-kit pending)", 1)
        _fail(f"unknown thread {thread!r}: nothing has run on it (see agent-kit pending)", 1)


def _need(value: str | None, flag: str, why: str) -> str:
    if value is None or not value.strip():
        _fail(f"missing {flag}: {why}", 2)
    return value


def _parse_edit(edit: str) -> dict[str, Any]:
    try:
        edited = json.loads(edit)
    except ValueError as exc:
        _fail(f"--edit is not valid JSON ({exc}); give an object such as '{{\"amount\": 40}}'", 2)
    if not isinstance(edited, dict):
        _fail(f"--edit must be a JSON object, got {type(edited).__name__}: {edit}", 2)
    return edited


def _edited_action(rt: Any, thread: str, interrupt: str | None, hash_: str | None,
                   edited: dict[str, Any]) -> dict[str, Any]:
    """The full edited action: ``{"name", "args"}`` as given, or bare args merged onto the named
    pending action's (``--edit '{"amount": 40}'`` changes the amount only)."""
    if "args" in edited and set(edited) <= {"name", "args"} and isinstance(edited["args"], dict) \
            and isinstance(edited.get("name"), str):
        return edited
    live = [p for p in rt.result(thread).pending if p["kind"] == "approval"
            and (interrupt is None or p["interrupt_id"] == interrupt)
            and (hash_ is None or p["action_hash"].startswith(hash_.strip().lower()))]
    if len(live) != 1:
        _fail(f"{'--interrupt ' + interrupt if interrupt else '--hash ' + str(hash_)} does not name one pending "
              f"approval on thread {thread!r} (already decided, or it changed); see agent-kit pending", 1)
    action = live[0]["action"]
    args = edited["args"] if "args" in edited and isinstance(edited["args"], dict) else edited
    return {"name": edited.get("name") or action["name"], "args": {**action["args"], **args}}


AsOpt = Annotated[str, typer.Option("--as", metavar="NAME",
                                    help="Your name as the policy lists it (its roles decide).")]
InterruptOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--interrupt", metavar="ID", help="The interrupt id `agent-kit pending` shows: the decision lands on it only.")]
HashOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--hash", metavar="HASH", help="The action hash `agent-kit pending` shows (16 or more hex digits): refused if the "
                   "pending action is no longer that one.")]


def _on_terminal() -> bool:
    return sys.stdin.isatty()


def _chosen(rt: Any, thread: str, interrupt: str | None, hash_: str | None, kind: str,
            verb: str) -> tuple[str | None, str | None]:
    """The interrupt id and action hash a decision names. Without either, the one pending item is
    shown and the operator confirms it on a terminal; with no terminal, nothing is decided."""
    if interrupt is not None or hash_ is not None:
        return interrupt, hash_
    live = [p for p in rt.result(thread).pending if p["kind"] == kind]
    if not live:
        _fail(f"thread {thread!r} has no pending {kind} (see agent-kit pending)", 1)
    if len(live) > 1:
        ids = ", ".join(f"{p['interrupt_id']} ({p['action']['name']})" for p in live)
        _fail(f"thread {thread!r} has {len(live)} pending {kind}s; name one with --interrupt: {ids}", 2)
    p = live[0]
    if not _on_terminal():
        _fail(f"name the {kind} you decide with --interrupt ID or --hash HASH as agent-kit pending shows them "
              f"(here: --interrupt {p['interrupt_id']}); without them the action is shown for you to confirm, "
              "which needs a terminal", 2)
    act = p["action"]
    err.print(f"{kind} on thread {thread}, interrupt {p['interrupt_id']}:", markup=False)
    err.print(f"  action:  {act['name']}({_args_text(act['args'])})", markup=False)
    err.print(f"  hash:    {p['action_hash']}", markup=False)
    err.print(f"  reason:  {p.get('reason')}  ·  requested by {p.get('requested_by')}", markup=False)
    if not typer.confirm(f"{verb} exactly this?", default=False, err=True):
        _fail("nothing decided", 1)
    return p["interrupt_id"], p["action_hash"]


@_command
def approve(
    thread: Annotated[str, typer.Argument(metavar="THREAD", help="The paused thread.", show_default=False)],
    *,
    as_: AsOpt,
    interrupt: InterruptOpt = None,
    hash_: HashOpt = None,
    edit: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--edit", metavar="JSON",
        help='Edit, then approve: changed args as JSON (\'{"amount": 40}\', merged onto the pending '
             'action) or a whole action (\'{"name": ..., "args": {...}}\').')] = None,
) -> None:
    """Approve (or edit and approve) the pending action named by --interrupt or --hash, and resume the run."""
    approver = _need(as_, "--as NAME", "every decision is made by an identified person")
    edited = _parse_edit(edit) if edit is not None else None
    rt = _runtime()
    _check_thread(rt, thread)
    interrupt, hash_ = _chosen(rt, thread, interrupt, hash_, "approval", "Approve")
    if edited is not None:
        edited = _edited_action(rt, thread, interrupt, hash_, edited)
    _show_turn(rt.approve(thread, approver=approver, interrupt_id=interrupt, action_hash=hash_, edit=edited))


@_command
def reject(
    thread: Annotated[str, typer.Argument(metavar="THREAD", help="The paused thread.", show_default=False)],
    *,
    as_: AsOpt,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why; the model is told.")],
    interrupt: InterruptOpt = None,
    hash_: HashOpt = None,
) -> None:
    """Reject the pending action named by --interrupt or --hash; the model is told why."""
    approver = _need(as_, "--as NAME", "every decision is made by an identified person")
    why = _need(reason, "--reason TEXT", "the model is told why the action was rejected")
    rt = _runtime()
    _check_thread(rt, thread)
    interrupt, hash_ = _chosen(rt, thread, interrupt, hash_, "approval", "Reject")
    _show_turn(rt.reject(thread, approver=approver, interrupt_id=interrupt, action_hash=hash_, reason=why))


@_command
def resolve(
    thread: Annotated[str, typer.Argument(metavar="THREAD", help="The escalated thread.", show_default=False)],
    *,
    as_: AsOpt,
    note: Annotated[str, typer.Option("--note", metavar="TEXT",
                                      help="The resolution; the customer gets it as the reply.")],
    interrupt: InterruptOpt = None,
    hash_: HashOpt = None,
    hand_back: Annotated[bool, typer.Option("--return", help="Hand the run back to the agent with the note.")] = False,
) -> None:
    """Close the escalated case named by --interrupt or --hash, or hand it back to the agent with --return."""
    approver = _need(as_, "--as NAME", "every decision is made by an identified person")
    text = _need(note, "--note TEXT", "the resolution is recorded and the customer gets it")
    rt = _runtime()
    _check_thread(rt, thread)
    interrupt, hash_ = _chosen(rt, thread, interrupt, hash_, "escalation", "Resolve")
    _show_turn(rt.resolve(thread, approver=approver, interrupt_id=interrupt, action_hash=hash_, note=text,
                          hand_back=hand_back))


@_command
def audit(
    thread: Annotated[Optional[str], typer.Argument(metavar="THREAD",  # noqa: UP045
                                                    help="Only this thread.", show_default=False)] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain; exit 1 on any tampering.")] = False,
    expect_head: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--expect-head", metavar="HASH",
        help="A head hash exported earlier; implies --verify (the anchor already "
             "catches truncation: this checks against a head you kept elsewhere too).")] = None,
    rotate_key: Annotated[bool, typer.Option(
        "--rotate-key", help="Make a new audit key current (older entries keep verifying with theirs).")] = False,
) -> None:
    """The audit trail, and whether its chain is intact (hashes, MACs with the key outside the
    database, and the anchored head)."""
    log = _store().audit
    if rotate_key:
        key_id = log.keyring.rotate()
        if opts.json:
            _emit({"key_id": key_id, "keyring": log.keyring.source})
        else:
            out.print(f"new audit key {key_id} is current ({log.keyring.source}); older entries keep "
                      "verifying with their own keys", markup=False)
        return
    if verify or expect_head:
        report = log.verify(expected_head=expect_head)
        if opts.json:
            _emit(report.to_json())
        elif report.ok:
            out.print(f"audit chain intact: {report.count} entries, head {report.head_seq} {report.head_hash}")
        else:
            err.print(f"error: audit chain BROKEN at entry {report.first_bad_seq}: {report.problem}", markup=False)
        raise typer.Exit(0 if report.ok else 1)
    entries = log.entries(thread)
    if opts.json:
        _emit([e.to_json() for e in entries])
        return
    _print_audit(entries, thread)


@_command
def rollback(
    entry: Annotated[int, typer.Argument(metavar="ENTRY",
                                         help="The audit seq of the 'executed' entry to reverse.", show_default=False)],
    *,
    as_: AsOpt,
) -> None:
    """Run the registered compensation of an executed action (itself permissioned and audited)."""
    from agent_kit.rollback import rollback as do_rollback

    approver = _need(as_, "--as NAME", "a rollback is a permissioned action by an identified person")
    result = do_rollback(_runtime(), entry, approver=approver)
    if opts.json:
        _emit(result)
    else:
        out.print(f"rolled back entry {entry} with {result['compensation']}({_args_text(result['args'])}); "
                  f"audit entry {result['audit_seq']}", markup=False)


@_command
def checklist(
    policy: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--policy", metavar="FILE",
        help="Check this policy file against the graph's tools instead of the graph's own.")] = None,
) -> None:
    """The pre-deployment checklist; exit 1 where a question has no answer."""
    from agent_kit.checklist import build_checklist, to_markdown
    from agent_kit.graph import layer_of
    from agent_kit.policy import load_policy

    kernel = layer_of(_load_graph()).kernel
    # The graph found through langgraph.json is the one LangGraph Server serves: check how.
    served = Path.cwd() / "langgraph.json" if opts.graph is None else None
    report = build_checklist(kernel.registry, load_policy(policy) if policy is not None else kernel.policy,
                             kernel.context_keys, served=served if served is not None and served.exists() else None)
    if opts.json:
        _emit(report)
    else:
        out.print(to_markdown(report), markup=False, end="")
    if not report["ok"]:
        err.print(f"error: the checklist has {len(report['gaps'])} gap(s): {'; '.join(report['gaps'])}", markup=False)
        raise typer.Exit(1)


def _drawable(layer: Any) -> Any:
    """The graph as LangChain's drawable ``Graph``."""
    return layer.compile(checkpointer=None).get_graph()


@_command
def graph(
    png: Annotated[Optional[Path], typer.Option("--png", metavar="FILE",  # noqa: UP045
                                                help="Write a PNG here (needs pygraphviz; drawn offline).")] = None,
) -> None:
    """The graph with its permission, verification, approval, escalation and execute nodes (Mermaid, or PNG)."""
    from agent_kit.graph import layer_of

    drawable = _drawable(layer_of(_load_graph()))
    if png is None:
        sys.stdout.write(drawable.draw_mermaid())
        return
    try:
        data = drawable.draw_png()
    except ImportError:
        _fail("cannot draw a PNG offline: pygraphviz is not installed (pip install pygraphviz); "
              "use the Mermaid text of `agent-kit graph` instead", 1)
    try:
        png.write_bytes(data)
    except OSError as exc:
        _fail(f"cannot write {png}: {exc.strerror}", 1)
    out.print(f"wrote {png}")


@_command
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8700,
    secure_cookies: Annotated[bool, typer.Option(
        "--secure-cookies", help="Mark the session cookie Secure (when served over HTTPS).")] = False,
) -> None:
    """The operators' web inbox over the same store and resume path (sign in with agent-kit approvers)."""
    from agent_kit._extras import require

    for module in ("starlette", "uvicorn", "jinja2", "itsdangerous", "multipart"):
        require("web", module)
    from agent_kit.web import WebSettings, secret_key
    from agent_kit.web import serve as run_server

    rt = _runtime()
    if host not in ("127.0.0.1", "localhost", "::1") and not secure_cookies:
        err.print(f"note: serving on {host} without --secure-cookies; put it behind HTTPS before others use it",
                  markup=False)
    settings = WebSettings(secret_key=secret_key(rt.store.home), secure_cookies=secure_cookies)
    out.print(f"agent_kit web inbox on http://{host}:{port}/ ({rt.store!r}); Ctrl-C stops it")
    run_server(rt, host=host, port=port, settings=settings)


def _fresh_demo_home(folder: Path) -> None:
    """Empty ``folder`` for a new demo run; refuse to wipe a folder the demo did not make."""
    if folder.exists():
        if not folder.is_dir() or (any(folder.iterdir()) and not (folder / DEMO_MARKER).exists()):
            _fail(f"{folder} exists and was not made by agent-kit demo; move it away or give another --home", 1)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("made by `agent-kit demo`; wiped at the start of each demo run\n")


@_command
def demo() -> None:
    """The reference story offline on a fresh demo home (<home>/demo): every mode once, an approval, the audit
    verified."""
    from agent_kit._loader import graph_ref, load_object
    from agent_kit.store import DEFAULT_HOME

    if opts.db_url:
        err.print("note: the demo runs on SQLite in its own folder; --db-url / AGENT_KIT_DB_URL is ignored",
                  markup=False)
        opts.db_url = None
        os.environ.pop("AGENT_KIT_DB_URL", None)
    demo_home = Path(opts.home or DEFAULT_HOME).resolve() / "demo"
    _fresh_demo_home(demo_home)
    # Before the graph module is loaded: it opens the back office at AGENT_KIT_HOME.
    opts.home = str(demo_home)
    os.environ["AGENT_KIT_HOME"] = opts.home
    ref = graph_ref(opts.graph)
    story = load_object(ref.rsplit(":", 1)[0] + ":demo")
    story(_runtime(), console=out, as_json=opts.json)


approvers_app = typer.Typer(no_args_is_help=True,
                            help="Approvers' credentials for the web inbox and LangGraph Server auth.")
app.add_typer(approvers_app, name="approvers")


def _policy_approver(name: str) -> str:
    """``name`` if the graph's policy lists it as an approver; else a clear refusal."""
    from agent_kit.graph import layer_of

    policy = layer_of(_load_graph()).kernel.policy
    listed = sorted(policy.document.approvers)
    if name not in policy.document.approvers:
        _fail(f"{name!r} is not an approver in the policy ({policy.source or 'the graph policy'}); "
              f"approvers: {', '.join(listed) or 'none'}", 1)
    return name


def _read_password(name: str) -> str:
    """The new password: asked twice without echo on a terminal, else one line of stdin."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != first:
            _fail("the two passwords differ; nothing changed", 1)
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def approvers_set_password(
    name: Annotated[str, typer.Argument(help="The approver, as the policy lists them.")],
) -> None:
    """Set an approver's password (read from stdin; not echoed on a terminal)."""
    from agent_kit.credentials import Credentials

    who = _policy_approver(name)
    password = _read_password(who)
    Credentials(_store()).set_password(who, password)
    if opts.json:
        _emit({"approver": who, "password_set": True})
    else:
        out.print(f"password set for {who}", markup=False)


def approvers_token(
    name: Annotated[str, typer.Argument(help="The approver, as the policy lists them.")],
) -> None:
    """Issue a bearer token for an approver; it is printed this once and stored only hashed."""
    from agent_kit.credentials import Credentials

    who = _policy_approver(name)
    token = Credentials(_store()).issue_token(who)
    if opts.json:
        _emit({"approver": who, "token": token})
    else:
        sys.stdout.write(token + "\n")
        err.print(f"token for {who}: shown this once; send it as 'Authorization: Bearer <token>' or "
                  "'x-api-key: <token>'", markup=False)


def approvers_revoke(
    name: Annotated[str, typer.Argument(help="The approver whose tokens end.")],
) -> None:
    """Revoke every bearer token of an approver."""
    from agent_kit.credentials import Credentials

    count = Credentials(_store()).revoke_tokens(name)
    if opts.json:
        _emit({"approver": name, "revoked": count})
    else:
        out.print(f"revoked {count} token(s) of {name}", markup=False)


_command(approvers_set_password, group=approvers_app, name="set-password")
_command(approvers_token, group=approvers_app, name="token")
_command(approvers_revoke, group=approvers_app, name="revoke")


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run one command and exit with its code."""
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="agent-kit", standalone_mode=False)
    except typer.TyperException as exc:  # the base of every usage error typer raises
        exit_code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed already
            sys.exit(exit_code)
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err.print(f"error: {where}{message} (see --help)", markup=False)
        sys.exit(exit_code)
    except typer.Abort:
        err.print("error: aborted", markup=False)
        sys.exit(1)
    except AgentKitError as exc:  # raised outside a command (e.g. while loading options)
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("error: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001  (a bug, not bad input: one line, the traceback on request)
        if _is_environment_failure(exc) and not isinstance(exc, BrokenPipeError):
            err.print(f"error: {_environment_failure(exc)}", markup=False)
            sys.exit(1)
        if os.environ.get("AGENT_KIT_DEBUG"):
            traceback.print_exc()
        err.print(f"error: internal error: {type(exc).__name__}: {exc} (set AGENT_KIT_DEBUG=1 for the traceback)",
                  markup=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
