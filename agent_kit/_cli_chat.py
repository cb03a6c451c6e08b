"""``agent-kit chat``: a turn streamed to the terminal, and the REPL around it.

The model's tokens are printed as they arrive, with a spinner while nothing has come yet; each
decision and effect is a dim line as its audit entry is written. The REPL has line editing and
history (readline, history kept in the home folder), slash commands (``/help``), and shows an
operator's decision on the thread as it arrives from another process, with the agent's reply.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_kit._cli_render import audit_details, terminal_text

__all__ = ["ChatView", "DecisionWatcher", "repl"]

PROMPT = "you> "
HELP = """\
commands (anything else is sent to the agent as the customer's message):
  /help      this list
  /thread    this thread's id and where it stands
  /pending   what waits on a person in this thread
  /audit     this thread's audit trail
  /quit      end (so do Ctrl-D and an empty line)
line editing and history: arrow keys, Ctrl-A / Ctrl-E, Ctrl-R to search earlier lines.
an operator's decision on this thread (agent-kit approve / reject / resolve, from anywhere) is shown
here when it arrives."""

_MARK = {"executed": "✓", "refused": "✗", "decided": "·"}


def event_line(event: Any) -> str:
    """One line for a decision, an effect or a refusal."""
    detail = audit_details(event.kind, event.data)
    who = f" by {event.actor}" if event.actor not in ("agent", "policy") else ""
    return f"  {_MARK.get(event.type, '·')} {event.kind.replace('_', ' ')} {event.tool or ''}{who}" + (
        f": {detail}" if detail else "")


class ChatView:
    """Runs one customer turn at a time on a thread and shows it as it happens."""

    def __init__(self, out: Any, rt: Any, thread_id: str, actor: str,
                 show_pending: Callable[[dict[str, Any]], None]) -> None:
        self.out = out
        self.rt = rt
        self.thread_id = thread_id
        self.actor = actor
        self.show_pending = show_pending
        self.lock = threading.Lock()
        """Held while a turn runs or the watcher prints: one writer on the terminal at a time."""
        self.last_seq = self._head()
        self.last_shown: tuple[Any, ...] | None = None

    def _head(self) -> int:
        entries = self.rt.store.audit.entries(self.thread_id)
        return entries[-1].seq if entries else 0

    def turn(self, text: str) -> Any:
        """Stream one customer message; returns the :class:`TurnResult`."""
        with self.lock:
            return self._turn(text)

    def _turn(self, text: str) -> Any:
        status = self.out.status("waiting for the agent…", spinner="dots") if self.out.is_terminal else None
        if status is not None:
            status.start()
        open_message: str | None = None
        streamed: dict[str | None, str] = {}
        shown_pending: set[str] = set()
        result = None

        def stop_spinner() -> None:
            nonlocal status
            if status is not None:
                status.stop()
                status = None

        def end_line() -> None:
            nonlocal open_message
            if open_message is not None:
                self.out.print()
                open_message = None

        try:
            for event in self.rt.stream(self.thread_id, text, actor=self.actor):
                if event.type == "token":
                    stop_spinner()
                    if open_message != (event.message_id or ""):
                        end_line()
                        self.out.print("[bold]agent:[/bold] ", end="")
                        open_message = event.message_id or ""
                    self.out.print(terminal_text(event.text), end="", markup=False)
                    streamed[event.message_id] = streamed.get(event.message_id, "") + event.text
                elif event.type == "turn_ended":
                    result = event.result
                else:
                    stop_spinner()
                    end_line()
                    if event.type == "paused":
                        shown_pending.add(event.pending["interrupt_id"])
                        self.show_pending(event.pending)
                    else:
                        self.out.print(event_line(event), style="dim", markup=False)
        finally:
            stop_spinner()
            end_line()
        assert result is not None
        if result.reply and result.reply.strip() not in (t.strip() for t in streamed.values()):
            self.out.print("[bold]agent:[/bold] ", end="")
            self.out.print(terminal_text(result.reply), markup=False)
        for item in result.pending:
            if item["interrupt_id"] not in shown_pending:
                self.show_pending(item)
        self.out.print(f"[dim]thread {result.thread_id} · {result.status}[/dim]")
        self.last_seq = self._head()
        self.last_shown = _key(result)
        return result

    def news(self) -> list[str] | None:
        """What happened on the thread since it was last shown (an operator's decision, its
        effects, the agent's reply once the run has finished), as lines; None when nothing did."""
        if not self.lock.acquire(blocking=False):
            return None  # a turn is running: it shows its own events
        try:
            entries = self.rt.store.audit.entries(self.thread_id, after_seq=self.last_seq)
            lines: list[str] = []
            from agent_kit.streaming import event_of_audit_entry

            for entry in entries:
                self.last_seq = entry.seq
                event = event_of_audit_entry(entry)
                if event is not None:
                    lines.append(event_line(event))
            snap = self.rt.state(self.thread_id)
            if snap.next and not snap.interrupts:
                return lines or None  # an operator's run is still going: its reply comes later
            result = self.rt.result(self.thread_id)
            if _key(result) != self.last_shown:
                if self.last_shown is not None or lines:
                    if result.reply:
                        lines.append(f"agent: {terminal_text(result.reply)}")
                    lines.extend(f"⏸ {p['kind']} pending · interrupt {p['interrupt_id']}" for p in result.pending)
                    lines.append(f"thread {result.thread_id} · {result.status}")
                self.last_shown = _key(result)
            return lines or None
        finally:
            self.lock.release()


def _key(result: Any) -> tuple[Any, ...]:
    return (result.status, result.reply, tuple(p["interrupt_id"] for p in result.pending))


class DecisionWatcher(threading.Thread):
    """Polls the thread while the REPL waits for input and prints what an operator did."""

    def __init__(self, view: ChatView, write: Callable[[list[str]], None], interval: float = 0.5) -> None:
        super().__init__(name="agent-kit-chat-watch", daemon=True)
        self.view = view
        self.write = write
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                lines = self.view.news()
            except Exception:  # noqa: BLE001 - a failed poll (store busy, closed at exit) shows nothing; the next one tries again
                continue
            if lines:
                self.write(lines)


def _readline(history: Path | None) -> Any:
    """readline with the history file loaded, or None where there is no terminal or no readline."""
    if not sys.stdin.isatty():
        return None
    try:
        import readline
    except ImportError:
        return None
    readline.set_history_length(1000)
    if history is not None and history.exists():
        try:
            readline.read_history_file(history)
        except OSError:
            pass
    return readline


def repl(out: Any, err: Any, view: ChatView, *, history: Path | None,
         show_pending: Callable[[dict[str, Any]], None], show_audit: Callable[[], None]) -> None:
    """The interactive chat: one customer message a line until an empty line, /quit or Ctrl-D."""
    from agent_kit.errors import AgentKitError

    rl = _readline(history)
    out.print(f"[dim]thread {view.thread_id}; /help for commands; an empty line or Ctrl-D ends[/dim]")

    def interject(lines: list[str]) -> None:
        # Printed above the prompt, which is then redrawn with what the person had typed so far.
        buffer = rl.get_line_buffer() if rl is not None else ""
        sys.stdout.write("\r\x1b[K")
        for line in lines:
            out.print(line, markup=False, style="dim" if line.startswith("  ") else None)
        sys.stdout.write(PROMPT + buffer)
        sys.stdout.flush()

    watcher = DecisionWatcher(view, interject)
    watcher.start()
    try:
        while True:
            try:
                line = input(PROMPT)
            except (EOFError, KeyboardInterrupt):
                out.print()
                break
            text = line.strip()
            if not text or text in ("/quit", "/exit"):
                break
            if text.startswith("/"):
                command = text.split()[0]
                if command == "/help":
                    out.print(HELP, markup=False)
                elif command == "/thread":
                    result = view.rt.result(view.thread_id)
                    out.print(f"thread {view.thread_id} · {result.status}", markup=False)
                elif command == "/pending":
                    items = view.rt.result(view.thread_id).pending
                    for item in items:
                        show_pending(item)
                    if not items:
                        out.print("nothing pending on this thread")
                elif command == "/audit":
                    show_audit()
                else:
                    err.print(f"error: unknown command {command}; /help lists them", markup=False)
                continue
            try:
                view.turn(line)
            except AgentKitError as exc:  # one bad turn does not end the conversation
                err.print(f"error: {exc}", markup=False)
    finally:
        watcher.stopped.set()
        watcher.join()
        if rl is not None and history is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                rl.write_history_file(history)
            except OSError:
                pass
