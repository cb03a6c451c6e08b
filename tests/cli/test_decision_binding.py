"""The command line decides only what its operator named or confirmed."""

from __future__ import annotations

import io
import sys

import pytest

from tests.cli.conftest import CLI, verified
from tests.cli.test_chat_pending_decide import refunds


def _seen_then_replaced(cli: CLI) -> tuple[dict, dict]:
    verified(cli, "t1")
    cli("chat", "--thread", "t1", "--message", "Refund $60 on order 1001")
    (seen,) = cli("pending", "--thread", "t1", "--json").json()
    r = cli("reject", "t1", "--interrupt", seen["interrupt_id"], "--as", "sam", "--reason", "ask first")
    assert r.code == 0, r.stderr
    cli("chat", "--thread", "t1", "--message", "Refund $120 on order 1001")
    (now,) = cli("pending", "--thread", "t1", "--json").json()
    assert now["action"]["args"]["amount"] == 120.0
    return seen, now


@pytest.mark.parametrize("flag", ["--interrupt", "--hash"])
def test_approving_what_was_seen_after_it_changed_pays_nothing(cli: CLI, home, flag: str) -> None:  # noqa: ANN001
    seen, now = _seen_then_replaced(cli)
    value = seen["interrupt_id"] if flag == "--interrupt" else seen["action_hash"]
    r = cli("approve", "t1", flag, value, "--as", "lee")
    assert r.code == 1 and ("not pending" in r.one_error_line() or "no pending approval" in r.one_error_line())
    assert refunds(home) == []
    assert [p["interrupt_id"] for p in cli("pending", "--json").json()] == [now["interrupt_id"]]


def test_without_a_name_and_without_a_terminal_nothing_is_decided(cli: CLI, home) -> None:  # noqa: ANN001
    seen, now = _seen_then_replaced(cli)
    r = cli("approve", "t1", "--as", "lee")
    assert r.code == 2 and f"--interrupt {now['interrupt_id']}" in r.one_error_line()
    assert refunds(home) == []


@pytest.mark.parametrize(("answer", "code", "paid"), [("n\n", 1, []), ("\n", 1, []), ("y\n", 0, [120.0])],
                         ids=["declined", "default-is-no", "confirmed"])
def test_on_a_terminal_the_exact_action_is_shown_and_confirmed(cli: CLI, home, monkeypatch, answer: str,  # noqa: ANN001
                                                              code: int, paid: list[float]) -> None:
    seen, now = _seen_then_replaced(cli)
    monkeypatch.setattr("agent_kit.cli._on_terminal", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    r = cli("approve", "t1", "--as", "lee")
    assert r.code == code, r.stderr
    assert "amount=120.0" in r.stderr and now["action_hash"] in r.stderr
    assert [x["amount"] for x in refunds(home)] == paid
