"""``agent-kit approvers set-password / token / revoke``: only for the policy's approvers; the password
from stdin (never echoed on a terminal), the token printed once."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from agent_kit import credentials as credentials_module
from agent_kit.credentials import Credentials
from agent_kit.store import Store

from .conftest import CLI, GRAPH, ROOT, SCRIPT


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials_module, "SCRYPT_N", 2 ** 10)


def _with_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_set_password_reads_stdin_and_the_password_verifies(cli: CLI, home: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _with_stdin(monkeypatch, "a long enough secret\n")
    r = cli("approvers", "set-password", "lee")
    assert r.code == 0, r.stderr
    assert "password set for lee" in r.stdout
    assert "a long enough secret" not in r.stdout + r.stderr
    with Store.open(home=home) as store:
        assert Credentials(store).verify_password("lee", "a long enough secret")
        assert not Credentials(store).verify_password("lee", "a long enough secret\n")


def test_token_is_printed_once_and_verifies(cli: CLI, home: Path) -> None:
    r = cli("approvers", "token", "morgan")
    assert r.code == 0, r.stderr
    token = r.stdout.strip()
    assert len(r.stdout.splitlines()) == 1
    with Store.open(home=home) as store:
        assert Credentials(store).verify_token(token) == "morgan"
    second = cli("approvers", "token", "morgan", "--json").json()
    assert second["approver"] == "morgan" and second["token"] != token


@pytest.mark.parametrize("command", ["set-password", "token"])
@pytest.mark.parametrize("name", [
    pytest.param("mallory", id="unknown"),
    pytest.param("Lee", id="case"),
    pytest.param("lee ", id="trailing-space"),
    pytest.param("customer", id="customer"),
])
def test_a_name_the_policy_does_not_list_is_refused(cli: CLI, home: Path, monkeypatch: pytest.MonkeyPatch,
                                                   command: str, name: str) -> None:
    _with_stdin(monkeypatch, "a long enough secret\n")
    r = cli("approvers", command, name)
    assert r.code == 1
    line = r.one_error_line()
    assert repr(name) in line and "lee" in line  # names the value and who the approvers are
    with Store.open(home=home) as store:
        assert Credentials(store).names() == []


def test_a_short_password_is_refused_in_one_line(cli: CLI, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_stdin(monkeypatch, "short\n")
    r = cli("approvers", "set-password", "lee")
    assert r.code == 1
    assert "too short" in r.one_error_line()
    with Store.open(home=home) as store:
        assert not Credentials(store).has_password("lee")


def test_revoke_ends_the_tokens(cli: CLI, home: Path) -> None:
    token = cli("approvers", "token", "lee").stdout.strip()
    r = cli("approvers", "revoke", "lee")
    assert r.code == 0 and "revoked 1 token" in r.stdout
    with Store.open(home=home) as store:
        assert Credentials(store).verify_token(token) is None


@pytest.mark.slow
def test_on_a_terminal_the_password_is_asked_twice_and_never_echoed(home: Path) -> None:
    """The real console script on a pseudo-terminal: what the terminal shows never holds the password."""
    env = {k: v for k, v in os.environ.items() if k not in ("AGENT_KIT_DB_URL", "AGENT_KIT_MODEL")}
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen([str(SCRIPT), "--home", str(home), *GRAPH, "approvers", "set-password", "sam"],
                            cwd=ROOT, env=env, stdin=child_fd, stdout=child_fd, stderr=child_fd)
    os.close(child_fd)
    shown = b""

    def read_until(marker: bytes) -> None:
        nonlocal shown
        while marker not in shown:
            chunk = os.read(main_fd, 1024)
            assert chunk, shown
            shown += chunk

    read_until(b"new password for sam: ")
    os.write(main_fd, b"terminal secret 123\n")
    read_until(b"again: ")
    os.write(main_fd, b"terminal secret 123\n")
    read_until(b"password set for sam")
    assert proc.wait(timeout=60) == 0
    os.close(main_fd)
    assert b"terminal secret" not in shown
    with Store.open(home=home) as store:
        assert Credentials(store).verify_password("sam", "terminal secret 123")
