"""The chat REPL driven in a real pseudo-terminal, as a person types: line editing (Ctrl-A),
history (the up arrow), /help, and an operator's decision made in another process shown when it
arrives, with the agent's reply, without the person typing anything."""

from __future__ import annotations

import os
import pty
import re
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import GRAPH

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).parent / "agent-kit"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """``agent-kit chat`` on a pty: type keys, wait for text on the screen."""

    def __init__(self, home: Path, thread: str) -> None:
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k not in ("AGENT_KIT_DB_URL", "AGENT_KIT_MODEL")}
        env.update(AGENT_KIT_HOME=str(home), TERM="xterm", NO_COLOR="1", COLUMNS="160", LINES="50")
        self.proc = subprocess.Popen([str(EXE), *GRAPH, "chat", "--thread", thread], cwd=ROOT, env=env,
                                     stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self.screen = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.master, selectors.EVENT_READ)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_for(self, text: str, count: int = 1) -> str:
        """Read until ``text`` has been shown ``count`` times in all (waits on output, not on a clock;
        the 120 s bound only turns a hang into a failure)."""
        want = text.encode()
        while self.plain().count(want) < count:
            if not self._sel.select(timeout=120):
                raise AssertionError(f"{text!r} never appeared; screen:\n{self.plain().decode(errors='replace')}")
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the process ended and the pty closed
                data = b""
            if not data:
                raise AssertionError(f"{text!r} never appeared; screen:\n{self.plain().decode(errors='replace')}")
            self.screen += data
        return self.plain().decode(errors="replace")

    def plain(self) -> bytes:
        return ANSI.sub(b"", self.screen)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)
        os.close(self.master)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_the_repl_edits_lines_keeps_history_and_shows_an_operators_decision(home: Path) -> None:
    term = Terminal(home, "r1")
    try:
        term.wait_for("you> ")
        term.type("Hi, I'm Jane Doe, zip 94107\r")
        term.wait_for("thread r1 · replied")
        term.wait_for("you> ", 2)

        term.type("help\x01/\r")  # Ctrl-A: to the start of the line, then "/": "/help"
        term.wait_for("commands (anything else is sent to the agent")
        term.wait_for("you> ", 3)

        term.type("Refund $80 on order 1001\r")
        term.wait_for("thread r1 · paused")
        term.wait_for("you> ", 4)
        term.type("/thread\r")
        term.wait_for("thread r1 · paused", 2)
        term.wait_for("you> ", 5)
        term.type("\x1b[A\r")  # the up arrow brings back "/thread"
        term.wait_for("thread r1 · paused", 3)
        term.wait_for("you> ", 6)

        # An operator approves from another process; the person at the REPL types nothing.
        iid = subprocess.run([str(EXE), "--home", str(home), "pending", "--thread", "r1", "--ids"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120,
                             env={k: v for k, v in os.environ.items() if k != "AGENT_KIT_DB_URL"}).stdout.strip()
        done = subprocess.run([str(EXE), "--home", str(home), *GRAPH, "approve", "r1", "--interrupt", iid, "--as", "lee"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != "AGENT_KIT_DB_URL"})
        assert done.returncode == 0, done.stderr
        term.wait_for("approved issue_refund by lee")
        screen = term.wait_for('agent: Done. issue_refund: {"refund_id": 1, "order_id": 1001, "amount": 80.0}')
        term.wait_for("thread r1 · replied", 2)
        assert "executed issue_refund" in screen or "executed issue_refund" in term.wait_for("executed issue_refund")

        term.type("/quit\r")
        assert term.proc.wait(timeout=120) == 0
    finally:
        term.close()
    history = (home / "chat_history").read_text()
    assert "Refund $80 on order 1001" in history and "/thread" in history


def test_an_unknown_slash_command_is_named_and_the_repl_goes_on(home: Path) -> None:
    term = Terminal(home, "r2")
    try:
        term.wait_for("you> ")
        term.type("/frobnicate\r")
        term.wait_for("error: unknown command /frobnicate; /help lists them")
        term.wait_for("you> ", 2)
        term.type("\x04")  # Ctrl-D ends
        assert term.proc.wait(timeout=120) == 0
    finally:
        term.close()
