"""agent-kit audit: the trail as JSON, and --verify catching edits and truncation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.cli.conftest import CLI, verified


def trail(cli: CLI) -> list[dict]:
    verified(cli, "t1")
    cli("chat", "--thread", "t1", "--message", "Refund $20 on order 1001")
    verified(cli, "t2")
    return cli("audit", "--json").json()


def test_audit_json_lists_entries_with_their_fields(cli: CLI) -> None:
    entries = trail(cli)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    for e in entries:
        assert {"seq", "thread_id", "kind", "tool", "action_hash", "actor", "at"} <= set(e)
    assert {e["thread_id"] for e in cli("audit", "t2", "--json").json()} == {"t2"}
    text = cli("audit", "t1")
    assert text.code == 0 and "issue_refund" in text.stdout and "executed" in text.stdout


def test_verify_passes_on_an_intact_chain(cli: CLI) -> None:
    trail(cli)
    r = cli("audit", "--verify", "--json")
    assert r.code == 0 and r.json()["ok"] is True and r.json()["first_bad_seq"] is None


def test_verify_names_the_first_altered_entry(cli: CLI, home: Path) -> None:
    trail(cli)
    with sqlite3.connect(home / "agent_kit.sqlite") as db:
        db.execute("UPDATE audit SET body = replace(body, '\"actor\":\"agent\"', '\"actor\":\"lee\"') WHERE seq = 2")
    r = cli("audit", "--verify")
    assert r.code == 1
    assert "BROKEN at entry 2" in r.one_error_line()
    assert cli("audit", "--verify", "--json").json()["first_bad_seq"] == 2


def test_expect_head_catches_a_truncated_tail(cli: CLI, home: Path) -> None:
    trail(cli)
    head = cli("audit", "--verify", "--json").json()["head_hash"]
    assert cli("audit", "--verify", "--expect-head", head).code == 0
    with sqlite3.connect(home / "agent_kit.sqlite") as db:
        db.execute("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    assert cli("audit", "--verify").code == 0  # without the head, a clean cut looks intact
    r = cli("audit", "--verify", "--expect-head", head)
    assert r.code == 1 and "truncated" in r.one_error_line()


def test_audit_of_an_empty_home_says_so(cli: CLI) -> None:
    r = cli("audit")
    assert r.code == 0 and "no audit entries" in r.stdout
    assert cli("audit", "--json").json() == []
