"""agent-kit audit: the trail as JSON, and --verify catching edits and truncation."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from agent_kit.audit_keys import KEY_FILE
from agent_kit.store import Store
from tests.cli.conftest import CLI, verified
from tests.conftest import PG_URL, drop_schema
from tests.storage.test_audit_anchor import ATTACKS


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


def test_verify_alone_catches_a_truncated_tail_and_expect_head_still_works(cli: CLI, home: Path) -> None:
    trail(cli)
    head = cli("audit", "--verify", "--json").json()["head_hash"]
    assert cli("audit", "--verify", "--expect-head", head).code == 0
    with sqlite3.connect(home / "agent_kit.sqlite") as db:
        db.execute("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    r = cli("audit", "--verify")  # no head kept by the user: the anchor remembers
    assert r.code == 1 and "entries were removed" in r.one_error_line()
    r = cli("audit", "--verify", "--expect-head", head)
    assert r.code == 1 and "entries were removed" in r.one_error_line()


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_verify_with_no_flags_detects_each_attack_on_both_backends(cli: CLI, home: Path, backend: str,
                                                                   attack: str) -> None:
    schema = f"ak_test_{uuid.uuid4().hex[:12]}"
    url = f"{PG_URL}?options=-csearch_path%3D{schema}" if backend == "postgres" else None
    try:
        with Store.open(home, db_url=url, schema=schema if url else None) as store:
            for n in range(10):
                store.audit.append("executed", actor="agent", thread_id="t1", tool="issue_refund",
                                   action_hash=f"h{n}", data={"amount": n})
            flags = ["--db-url", url] if url else []
            assert cli(*flags, "audit", "--verify").code == 0
            ATTACKS[attack][0](store)
            r = cli(*flags, "audit", "--verify")
            assert r.code == 1
            line = r.one_error_line()
            assert "BROKEN" in line and ATTACKS[attack][1] in line
    finally:
        if url:
            drop_schema(schema)


def test_rotate_key_then_every_entry_still_verifies(cli: CLI, home: Path) -> None:
    trail(cli)
    before = (home / KEY_FILE).read_text().split()[0]
    r = cli("audit", "--rotate-key", "--json")
    assert r.code == 0 and r.json()["key_id"] != before
    cli("chat", "--thread", "t1", "--message", "Refund $10 on order 1001")
    assert cli("audit", "--verify").code == 0
    ids = {e.split(":")[0] for (e,) in sqlite3.connect(home / "agent_kit.sqlite").execute("SELECT mac FROM audit")}
    assert ids == {before, r.json()["key_id"]}


def test_audit_of_an_empty_home_says_so(cli: CLI) -> None:
    r = cli("audit")
    assert r.code == 0 and "no audit entries" in r.stdout
    assert cli("audit", "--json").json() == []
