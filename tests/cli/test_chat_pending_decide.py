"""chat, pending, approve, reject and resolve through the command line, and their refusals."""

from __future__ import annotations

import pytest

from tests.cli.conftest import CLI, interrupt_of, verified
from tests.fixture_app import Records

PENDING_FIELDS = {"thread_id", "interrupt_id", "kind", "action", "action_hash", "mode", "rule", "reason",
                  "required_role", "requested_at", "expires_at", "summary"}


def paused_refund(cli: CLI, thread: str = "t1", amount: int = 80) -> dict:
    verified(cli, thread)
    r = cli("chat", "--thread", thread, "--message", f"Refund ${amount} on order 1001", "--json")
    assert r.code == 0, r.stderr
    turn = r.json()
    assert turn["status"] == "paused"
    return turn["pending"][0]


def refunds(home) -> list:  # noqa: ANN001
    """The refunds in the fixture app's records: order, amount and status of each."""
    return [{k: r[k] for k in ("order_id", "amount", "status")} for r in Records.at_home(home).refunds()]


def test_chat_json_is_one_object_with_status_reply_and_pending(cli: CLI) -> None:
    verified(cli, "t1")
    r = cli("chat", "--thread", "t1", "--message", "Refund $80 on order 1001", "--json")
    turn = r.json()
    assert set(turn) >= {"thread_id", "status", "reply", "pending"}
    assert (turn["thread_id"], turn["status"]) == ("t1", "paused")
    p = turn["pending"][0]
    assert set(p) >= {"interrupt_id", "kind", "action", "action_hash", "required_role", "reason"}
    assert p["action"] == {"name": "issue_refund", "args": {"order_id": 1001, "amount": 80.0, "reason": ""}}
    assert (p["kind"], p["required_role"]) == ("approval", "support_lead")


def test_global_json_flag_before_the_command_works_too(cli: CLI) -> None:
    r = cli("--json", "chat", "--thread", "t1", "--message", "Hi, I'm Jane Doe, zip 94107")
    assert r.json()["status"] == "replied"


def test_chat_without_thread_starts_a_new_one(cli: CLI) -> None:
    r = cli("chat", "--message", "how do I return an item?", "--json")
    assert r.code == 0 and r.json()["thread_id"].startswith("t-")


def test_chat_text_output_names_thread_and_status(cli: CLI) -> None:
    r = cli("chat", "--thread", "t1", "--message", "Hi, I'm Jane Doe, zip 94107")
    assert r.code == 0 and '"verified": true, "name": "Jane Doe"' in r.stdout and "thread t1 · replied" in r.stdout


def test_pending_json_lists_every_field_an_operator_needs(cli: CLI) -> None:
    p = paused_refund(cli)
    items = cli("pending", "--json").json()
    assert len(items) == 1
    item = items[0]
    assert set(item) >= PENDING_FIELDS
    assert item["interrupt_id"] == p["interrupt_id"] and item["action_hash"] == p["action_hash"]
    assert item["action"]["name"] == "issue_refund" and item["mode"] == "execute_gated"
    assert item["rule"] == "refund_over_50" and item["expires_at"] > item["requested_at"]
    assert cli("pending", "--kind", "escalation", "--json").json() == []


def test_pending_text_shows_the_full_interrupt_id_and_the_commands(cli: CLI) -> None:
    p = paused_refund(cli)
    r = cli("pending")
    assert p["interrupt_id"] in r.stdout and f"approve t1 --interrupt {p['interrupt_id']}" in r.stdout


def test_approve_executes_the_refund_once_and_empties_the_inbox(cli: CLI, home) -> None:  # noqa: ANN001
    p = paused_refund(cli)
    r = cli("approve", "t1", "--interrupt", p["interrupt_id"], "--as", "lee", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "replied" and '"order_id": 1001, "amount": 80.0' in r.json()["reply"]
    assert refunds(home) == [{"order_id": 1001, "amount": 80.0, "status": "issued"}]
    assert cli("pending", "--json").json() == []
    again = cli("approve", "t1", "--interrupt", p["interrupt_id"], "--as", "sam")
    assert again.code == 1 and "not pending" in again.one_error_line()
    assert len(refunds(home)) == 1


def test_an_edit_within_the_limit_executes_the_edited_action(cli: CLI, home) -> None:  # noqa: ANN001
    paused_refund(cli)
    r = cli("approve", "t1", "--interrupt", interrupt_of(cli, "t1"), "--as", "lee", "--edit", '{"amount": 40}', "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "replied"
    assert [x["amount"] for x in refunds(home)] == [40.0]


def test_an_edit_still_over_the_limit_needs_someone_else(cli: CLI, home) -> None:  # noqa: ANN001
    first = paused_refund(cli)
    r = cli("approve", "t1", "--hash", first["action_hash"], "--as", "lee", "--edit", '{"name": "issue_refund", "args": {"order_id": 1001, '
            '"amount": 60, "reason": "partial"}}', "--json")
    assert r.code == 0, r.stderr
    p = r.json()["pending"][0]
    assert p["action"]["args"]["amount"] == 60 and p["action_hash"] != first["action_hash"]
    assert refunds(home) == []
    own = cli("approve", "t1", "--hash", p["action_hash"], "--as", "lee")
    assert own.code == 1 and "cannot also decide it" in own.one_error_line()
    assert cli("approve", "t1", "--hash", p["action_hash"], "--as", "sam").code == 0
    assert [x["amount"] for x in refunds(home)] == [60.0]


def test_reject_tells_the_model_and_nothing_executes(cli: CLI, home) -> None:  # noqa: ANN001
    paused_refund(cli)
    r = cli("reject", "t1", "--interrupt", interrupt_of(cli, "t1"), "--as", "lee", "--reason", "already refunded by phone",
            "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "replied" and r.json()["pending"] == []
    assert refunds(home) == []
    kinds = [e["kind"] for e in cli("audit", "t1", "--json").json()]
    assert "rejected" in kinds and "executed" not in kinds


def test_resolve_closes_an_escalation_with_the_note(cli: CLI) -> None:
    verified(cli, "t1")
    r = cli("chat", "--thread", "t1", "--message", "I want a human", "--json")
    assert r.json()["status"] == "escalated"
    r = cli("resolve", "t1", "--interrupt", interrupt_of(cli, "t1"), "--as", "morgan", "--note",
            "Called the customer back", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "closed" and r.json()["reply"] == "Called the customer back"


def test_resolve_with_return_hands_the_run_back(cli: CLI) -> None:
    verified(cli, "t1")
    cli("chat", "--thread", "t1", "--message", "I want a human")
    r = cli("resolve", "t1", "--interrupt", interrupt_of(cli, "t1"), "--as", "lee", "--note", "carry on", "--return",
            "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] in ("replied", "paused") and r.json()["status"] != "escalated"


BAD_INPUT = [
    pytest.param(["approve", "nope", "--as", "lee"], 1, "unknown thread 'nope'", id="approve-unknown-thread"),
    pytest.param(["reject", "nope", "--as", "lee", "--reason", "x"], 1, "unknown thread", id="reject-unknown-thread"),
    pytest.param(["resolve", "nope", "--as", "lee", "--note", "x"], 1, "unknown thread", id="resolve-unknown-thread"),
    pytest.param(["approve", "t1", "--interrupt", "deadbeef", "--as", "lee"], 1, "interrupt 'deadbeef' is not pending",
                 id="unknown-interrupt"),
    pytest.param(["approve", "t1", "--interrupt", "ID", "--as", "lee", "--edit", "{amount: 60"], 2, "--edit is not valid JSON",
                 id="malformed-edit-json"),
    pytest.param(["approve", "t1", "--interrupt", "ID", "--as", "lee", "--edit", "[60]"], 2, "--edit must be a JSON object",
                 id="edit-not-an-object"),
    pytest.param(["approve", "t1", "--interrupt", "ID", "--as", "lee", "--edit", '{"amount": "lots"}'], 1, "amount",
                 id="edit-breaks-schema"),
    pytest.param(["approve", "t1", "--interrupt", "ID", "--as", "lee", "--edit", '{"bogus": 1}'], 1, "unknown argument(s) bogus",
                 id="edit-unknown-arg"),
    pytest.param(["approve", "t1", "--interrupt", "ID", "--as", "mallory"], 1, "unknown approver 'mallory'", id="unknown-approver"),
    pytest.param(["approve", "t1", "--interrupt", "ID", "--as", "customer"], 1, "customer", id="customer-cannot-approve"),
    pytest.param(["approve", "t1"], 2, "Missing option '--as'", id="approve-missing-as"),
    pytest.param(["reject", "t1", "--reason", "no"], 2, "Missing option '--as'", id="reject-missing-as"),
    pytest.param(["reject", "t1", "--as", "lee"], 2, "Missing option '--reason'", id="missing-reason"),
    pytest.param(["resolve", "t1", "--as", "lee"], 2, "Missing option '--note'", id="missing-note"),
    pytest.param(["resolve", "t1", "--as", "lee", "--note", "x"], 1, "no pending escalation", id="resolve-no-escalation"),
    pytest.param(["resolve", "t1", "--interrupt", "ID", "--as", "lee", "--note", "x"], 1, "is a pending approval, not "
                 "escalation", id="resolve-an-approval"),
    pytest.param(["approve", "t1", "--as", "lee"], 2, "name the approval you decide", id="nothing-named-no-terminal"),
    pytest.param(["reject", "t1", "--as", "lee", "--reason", "x"], 2, "name the approval you decide",
                 id="reject-nothing-named-no-terminal"),
    pytest.param(["approve", "t1", "--hash", "ab" * 8, "--as", "lee"], 1, "no pending approval", id="stale-hash"),
    pytest.param(["approve", "t1", "--hash", "abc", "--as", "lee"], 1, "at least 16 hex digits", id="short-hash"),
    pytest.param(["approve"], 2, "Missing argument", id="approve-missing-thread"),
    pytest.param(["approve", "t1", "--as", "lee", "--frobnicate"], 2, "No such option", id="unknown-option"),
    pytest.param(["pending", "--kind", "bogus"], 2, "unknown kind 'bogus'", id="pending-unknown-kind"),
    pytest.param(["chat", "--thread", "t1", "--message", "  "], 2, "--message is empty", id="chat-empty-message"),
    pytest.param(["--graph", "no_such_module:graph", "pending"], 0, None, id="pending-needs-no-graph"),
    pytest.param(["--graph", "no_such_module:graph", "approve", "t1", "--as", "lee"], 1, "cannot import the graph",
                 id="graph-not-importable"),
    pytest.param(["--graph", "tests.fixture_app.served", "approve", "t1", "--as", "lee"], 1, "must look like module:attr",
                 id="graph-ref-malformed"),
    pytest.param(["rollback", "abc", "--as", "lee"], 2, "Invalid value", id="rollback-entry-not-a-number"),
    pytest.param(["bogus-command"], 2, "No such command", id="unknown-command"),
]


@pytest.mark.parametrize(("argv", "code", "message"), BAD_INPUT)
def test_bad_input_is_one_clear_line_and_the_run_stays_paused(cli: CLI, home, argv: list[str], code: int,  # noqa: ANN001
                                                             message: str | None) -> None:
    p = paused_refund(cli)
    r = cli(*[p["interrupt_id"] if a == "ID" else a for a in argv])
    assert r.code == code, (r.stdout, r.stderr)
    if message is not None:
        assert message in r.one_error_line()
    still = cli("pending", "--json").json()
    assert [i["interrupt_id"] for i in still] == [p["interrupt_id"]]
    assert refunds(home) == []


def test_approving_a_verification_is_refused_the_customer_answers_it(cli: CLI) -> None:
    r = cli("chat", "--thread", "t2", "--message", "Refund $20 on order 1001", "--json")
    p = r.json()["pending"][0]
    assert p["kind"] == "verification"
    r = cli("approve", "t2", "--interrupt", p["interrupt_id"], "--as", "lee")
    assert r.code == 1 and "the customer answers it through the chat" in r.one_error_line()


def test_several_gated_calls_in_a_message_are_decided_one_after_another(cli: CLI) -> None:
    verified(cli, "t3")
    r = cli("chat", "--thread", "t3", "--message", "refund $60 on order 1001 and refund $70 on order 1001", "--json")
    (first,) = [p for p in r.json()["pending"] if p["kind"] == "approval"]  # one waits on a person at a time
    assert first["action"]["args"]["amount"] == 60
    r = cli("approve", "t3", "--as", "lee", "--edit", '{"amount": 55}')
    assert r.code == 2 and "name the approval you decide" in r.one_error_line()
    r = cli("approve", "t3", "--as", "lee", "--interrupt", first["interrupt_id"], "--json")
    assert r.code == 0, r.stderr
    (second,) = [p for p in r.json()["pending"] if p["kind"] == "approval"]
    assert second["interrupt_id"] != first["interrupt_id"] and second["action"]["args"]["amount"] == 70
