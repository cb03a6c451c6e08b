"""A command line that feels finished: help that imports nothing heavy and shows flags as flags,
required options marked, an audit table a person reads, errors that name the URL or the path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent_kit._cli_render import AUDIT_COLUMNS, audit_details, value_text
from agent_kit.cli import app
from tests.cli.conftest import CLI, ROOT
from tests.cli.test_chat_pending_decide import paused_refund

HEAVY = ("langgraph", "langchain_core", "langchain_openai", "openai", "langsmith", "psycopg", "sqlite_utils",
         "yaml", "agent_kit.graph", "agent_kit.runtime", "agent_kit.store", "rich.markdown", "graphs", "tools")
"""Modules whose import is what made every command slow; help needs none of them."""

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands if c.callback is not None)


def _help_in_a_fresh_process(argv: list[str]) -> tuple[str, list[str]]:
    """Run ``agent-kit <argv> --help`` in a new interpreter: its output and the heavy modules it imported."""
    probe = (
        "import io, json, sys\n"
        "from contextlib import redirect_stdout\n"
        "from agent_kit.cli import main\n"
        "buf = io.StringIO()\n"
        "with redirect_stdout(buf):\n"
        "    try:\n"
        f"        main({argv + ['--help']!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in {HEAVY!r}))\n"
        "print(json.dumps({'help': buf.getvalue(), 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    return report["help"], report["heavy"]


def test_every_command_is_covered() -> None:
    assert {"chat", "pending", "approve", "reject", "resolve", "audit", "rollback", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("argv", [[], *[[c] for c in COMMANDS]], ids=["top", *COMMANDS])
def test_help_imports_nothing_heavy_and_shows_flags_as_flags(argv: list[str]) -> None:
    text, heavy = _help_in_a_fresh_process(argv)
    assert heavy == []
    assert "Usage: agent-kit" in text and "--help" in text
    assert "<bool>" not in text
    flag_line = next(line for line in text.splitlines() if line.strip().startswith("--json"))
    assert flag_line.split()[:2] == ["--json", "Machine-readable"]  # a flag, not an option taking a value


@pytest.mark.parametrize(("command", "required"), [
    ("approve", ["--as NAME"]),
    ("reject", ["--as NAME", "--reason TEXT"]),
    ("resolve", ["--as NAME", "--note TEXT"]),
    ("rollback", ["--as NAME"]),
], ids=["approve", "reject", "resolve", "rollback"])
def test_required_options_are_marked(command: str, required: list[str]) -> None:
    text, _ = _help_in_a_fresh_process([command])
    options = text.split("Options:", 1)[1]
    blocks: dict[str, str] = {}
    current = None
    for line in options.splitlines():
        if line.startswith("  -"):
            current = line.split("  ")[1].strip()
            blocks[current] = line
        elif current is not None:
            blocks[current] += " " + line.strip()
    for name in required:
        assert name in blocks, (name, list(blocks))
        assert "[required]" in blocks[name]
    assert not any("[required]" in body for name, body in blocks.items() if name not in required)


def test_audit_is_a_table_with_headers_and_readable_details(cli: CLI) -> None:
    p = paused_refund(cli, "t1")
    assert cli("approve", "t1", "--interrupt", p["interrupt_id"], "--as", "lee").code == 0
    r = cli("audit", "t1")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["seq", "time", "(UTC)", "thread", "kind", "tool", "actor", "action", "details"]
    assert set(lines[1].strip()) == {"─"}
    body = r.stdout
    assert "hidden from the model: customer_id" in body
    assert "approved by lee (support_lead)" in body
    assert "as support_lead; approval 1 of 1" in body
    for repr_mark in ("{'", "[{", "['", "None", "True", "False"):
        assert repr_mark not in body, repr_mark
    rows = [line for line in lines[2:] if line[:5].strip().isdigit()]
    assert len(rows) == len(cli("audit", "t1", "--json").json())


@pytest.mark.parametrize(("value", "shown"), [
    ("plain", "plain"),
    ("", '""'),
    ("a\nb", "a\\nb"),
    ("nul\x00here", "nul\\x00here"),
    ("rtl\u202emark", "rtl\\u202emark"),
    ("emoji 🙂", "emoji 🙂"),
    (2**80, str(2**80)),
    (float("nan"), "NaN"),
    ({"b": [1, None], "a": True}, '{"a": true, "b": [1, null]}'),
    ("x" * 500, "x" * 119 + "…"),
], ids=["plain", "empty", "newline", "nul", "rtl-override", "emoji", "huge-int", "nan", "nested", "long"])
def test_values_are_shown_as_text_a_terminal_cannot_be_tricked_by(value: object, shown: str) -> None:
    assert value_text(value) == shown


@pytest.mark.parametrize(("kind", "data", "shown"), [
    ("read", {"hidden_fields": ["card_number", "email"], "result_hash": "ab"}, "hidden from the model: card_number, email"),
    ("approval_requested", {"reason": "rule r1: needs a lead", "rule": "r1", "required_role": "support_lead"},
     "rule r1: needs a lead; needs support_lead"),
    ("approved", {"role": "support_lead", "approvals": 1, "needed": 2, "message": None}, "as support_lead; approval 1 of 2"),
    ("rejected", {"role": "supervisor", "message": "too much"}, "as supervisor; message: too much"),
    ("executed", {"approvals": [{"approver": "lee", "role": "support_lead"}, {"approver": "morgan", "role": "supervisor"}],
                  "verified": [], "idempotency_key": "ak_1"}, "approved by lee (support_lead), morgan (supervisor)"),
    ("edited", {"role": "support_lead", "new_tool": "issue_refund", "new_args": {"amount": 40, "order_id": 1001}},
     "as support_lead; edited to issue_refund(amount=40, order_id=1001)"),
    ("resolved", {"note": "done by phone", "resolution": "close", "role": "supervisor"}, "note: done by phone; case closed"),
    ("rolled_back", {"entry": 9, "compensation": "reverse_refund", "args": {"refund_id": 3}},
     "reverse_refund(refund_id=3) reversing entry 9"),
    ("failed", {"error": "boom\nline two"}, "error: boom\\nline two"),
], ids=["read", "requested", "approved", "rejected", "executed", "edited", "resolved", "rolled-back", "failed"])
def test_audit_details_read_as_sentences(kind: str, data: dict, shown: str) -> None:
    assert audit_details(kind, data) == shown


def test_the_audit_table_has_every_column() -> None:
    assert AUDIT_COLUMNS == ("seq", "time (UTC)", "thread", "kind", "tool", "actor", "action", "details")


def test_a_model_server_that_is_down_is_named_with_its_url(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setenv("AGENT_KIT_MODEL", "openai:test-model")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    r = cli("chat", "--thread", "m1", "--message", "Hello")
    line = r.one_error_line()
    assert r.code == 1
    assert url in line and "test-model" in line and "internal error" not in line


@pytest.mark.parametrize(("argv", "named"), [
    (["--home", "/dev/null/nowhere", "pending"], "/dev/null/nowhere/agent_kit.sqlite"),
    (["--db-url", "postgresql://nobody@127.0.0.1:1/nodb", "pending"], "127.0.0.1:1/nodb"),
], ids=["sqlite-path", "postgres-url"])
def test_a_store_that_cannot_be_opened_is_named(script: CLI, argv: list[str], named: str) -> None:
    r = script(*argv, with_home=False)
    assert r.code == 1 and named in r.one_error_line()
