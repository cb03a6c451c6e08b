"""Four-eyes approval and rollback through the command line, checked in the system of record.

The fixture app's policy asks two support_lead approvals for refunds above $300 (and escalates
above $500); the test adds order 1005 ($500) for Jane to its own records.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, verified
from tests.fixture_app import Records


def add_order(home: Path, order_id: int = 1005, total: float = 500.0) -> None:
    Records.at_home(home).add_orders(order_id, 1, customer_id="cus_jane", total=total)


def refunds(home: Path) -> list[dict]:
    return Records.at_home(home).refunds()


def test_a_400_refund_needs_two_different_support_leads(cli: CLI, home: Path) -> None:
    add_order(home)
    verified(cli, "t1")
    turn = cli("chat", "--thread", "t1", "--message", "Refund $400 on order 1005", "--json").json()
    assert turn["status"] == "paused", turn
    p = turn["pending"][0]
    assert (p["kind"], p["required_role"]) == ("approval", "support_lead")
    iid = p["interrupt_id"]

    first = cli("approve", "t1", "--interrupt", iid, "--as", "lee", "--json")
    assert first.code == 0, first.stderr
    assert first.json()["status"] == "paused" and refunds(home) == []
    [item] = cli("pending", "--json").json()
    assert item["approvals_needed"] == 2 and [a["approver"] for a in item["approvals"]] == ["lee"]

    again = cli("approve", "t1", "--interrupt", item["interrupt_id"], "--as", "lee")
    assert again.code == 1 and "already approved" in again.one_error_line()
    assert refunds(home) == []

    second = cli("approve", "t1", "--interrupt", item["interrupt_id"], "--as", "sam", "--json")
    assert second.code == 0, second.stderr
    assert second.json()["status"] == "replied"
    assert [(r["order_id"], r["amount"]) for r in refunds(home)] == [(1005, 400.0)]
    assert cli("pending", "--json").json() == []
    late = cli("approve", "t1", "--interrupt", item["interrupt_id"], "--as", "morgan")
    assert late.code == 1 and len(refunds(home)) == 1
    approvals = [e["actor"] for e in cli("audit", "t1", "--json").json() if e["kind"] == "approved"]
    assert approvals == ["lee", "sam"]


def executed_refund(cli: CLI, home: Path) -> int:
    verified(cli, "t1")
    r = cli("chat", "--thread", "t1", "--message", "Refund $20 on order 1001", "--json")
    assert r.json()["status"] == "replied", r.stdout
    [seq] = [e["seq"] for e in cli("audit", "t1", "--json").json()
             if e["kind"] == "executed" and e["tool"] == "issue_refund"]
    assert [x["status"] for x in refunds(home)] == ["issued"]
    return int(seq)


def test_rollback_restores_the_back_office_once(cli: CLI, home: Path) -> None:
    seq = executed_refund(cli, home)
    r = cli("rollback", str(seq), "--as", "lee", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["compensation"] == "reverse_refund"
    assert [x["status"] for x in refunds(home)] == ["reversed"]
    again = cli("rollback", str(seq), "--as", "sam")
    assert again.code == 1 and "already rolled back" in again.one_error_line()
    assert [x["status"] for x in refunds(home)] == ["reversed"]
    kinds = [e["kind"] for e in cli("audit", "t1", "--json").json()]
    assert kinds.count("rolled_back") == 1
    assert cli("audit", "--verify").code == 0


def test_rollback_by_someone_without_the_role_is_refused(cli: CLI, home: Path) -> None:
    import yaml

    from tests.fixture_app.agent import POLICY

    # The fixture policy's approvers may all roll back; add one who may not (a billing clerk).
    doc = yaml.safe_load(POLICY.read_text())
    doc["approvers"]["ava"] = ["billing"]
    (home / "policy.yaml").write_text(yaml.safe_dump(doc))
    (home / "billing_graph.py").write_text(
        "from pathlib import Path\nfrom tests.fixture_app import build_graph\n"
        "graph = build_graph(policy=Path(__file__).with_name('policy.yaml'))\n")
    seq = executed_refund(cli, home)
    custom = ["--graph", f"{home / 'billing_graph.py'}:graph"]
    for who, says in [("ava", "'ava' (roles: billing) may not roll back issue_refund; it needs role support_lead"),
                      ("mallory", "'mallory' (roles: none) may not roll back"), ("customer", "may not roll back")]:
        r = cli(*custom, "rollback", str(seq), "--as", who)
        assert r.code == 1 and says in r.one_error_line(), r.stderr
    assert [x["status"] for x in refunds(home)] == ["issued"]


def test_rollback_refusals_name_the_problem(cli: CLI, home: Path) -> None:
    seq = executed_refund(cli, home)
    cases = [(["rollback", "999", "--as", "lee"], 1, "no audit entry 999"),
             (["rollback", "1", "--as", "lee"], 1, "only 'executed' actions"),
             (["rollback", str(seq)], 2, "Missing option '--as'")]
    for argv, code, says in cases:
        r = cli(*argv)
        assert r.code == code and says in r.one_error_line(), (argv, r.stderr)
    assert [x["status"] for x in refunds(home)] == ["issued"]
