"""Splitting and accumulation: every limit of the reference policy guards a total, not one call.

Asked in one message, across turns, after a refusal, across threads of one customer, or racing:
no more is paid without a person than the limit allows, checked in the back office's own rows.
"""

from __future__ import annotations

import threading
from typing import Any


from tests.conftest import App

JANE = "Hi, I'm Jane Doe, zip 94107"


def _paid(app: App, tool: str = "issue_refund") -> tuple[float, float]:
    """(paid with nobody asked, paid in all) for a tool, from the audit trail's executed entries,
    the ledger's arguments, and checked against the back office's rows."""
    unapproved = total = 0.0
    measure = "amount" if tool == "issue_refund" else "percent"
    for e in app.store.audit.entries(kind="executed"):
        if e.tool != tool:
            continue
        value = app.store.ledger.get(e.data["idempotency_key"]).args[measure]
        total += value
        if not e.data["approvals"]:
            unapproved += value
    rows = app.shop.refunds() if tool == "issue_refund" else app.shop.discounts()
    assert round(sum(r[measure] for r in rows if r["status"] in ("issued", "active")), 2) == round(total, 2)
    return round(unapproved, 2), round(total, 2)


def _rules(result: Any) -> list[tuple[str, float]]:
    return sorted((p["rule"], p["action"]["args"].get("amount", p["action"]["args"].get("percent"))) for p in result.pending)


def test_pieces_in_one_message_after_a_rejection_each_need_the_lead(app: App):
    app.say("t", JANE)
    r = app.say("t", "Refund $120 on order 1001")
    assert _rules(r) == [("refund_over_50", 120.0)]
    app.runtime.reject("t", approver="lee", reason="not this time", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    r = app.say("t", "Refund $50 on order 1001 and $50 on order 1001 and $20 on order 1001")
    assert r.status == "paused"
    # The calls of one message wait on a person one at a time: each, in turn, needs the lead.
    seen = []
    while (pending := app.runtime.pending("t", kind="approval")):
        (item,) = pending
        seen.append((item.rule, item.action["args"]["amount"]))
        app.runtime.reject(item, approver="lee", reason="not this time")
    assert sorted(seen) == [("refund_over_50", 20.0), ("refund_over_50", 50.0), ("refund_over_50", 50.0)]
    assert _paid(app) == (0.0, 0.0) and app.shop.refunds() == []


def test_pieces_across_turns_stop_at_the_limit(app: App):
    app.say("t", JANE)
    r = app.say("t", "Refund $30 on order 1001")
    assert r.status == "replied" and r.pending == []
    r = app.say("t", "Refund $20 on order 1001")  # 50 in 24 h: still alone
    assert r.status == "replied" and r.pending == []
    r = app.say("t", "Refund $10 on order 1001")  # 60: a lead decides
    assert _rules(r) == [("refund_over_50", 10.0)]
    assert _paid(app) == (50.0, 50.0)


def test_a_rejected_refund_cannot_be_had_in_pieces_across_turns(app: App):
    app.say("t", JANE)
    app.say("t", "Refund $120 on order 1001")
    app.runtime.reject("t", approver="lee", reason="no", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    for amount in (40, 40, 40):
        app.say("t", f"Refund ${amount} on order 1001")
        if app.runtime.result("t").pending:
            app.runtime.reject("t", approver="lee", reason="no again", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    assert _paid(app) == (40.0, 40.0)


def test_four_eyes_and_escalation_thresholds_count_earlier_refunds(app: App):
    app.say("t", JANE)
    r = app.say("t", "Refund $300 on order 1003")  # a $2,400 order: a supervisor too
    assert r.status == "paused" and r.pending[0]["action"]["args"]["amount"] == 300.0
    r = app.runtime.approve("t", approver="morgan", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    assert r.status in ("paused", "replied")
    if r.status == "paused":
        r = app.runtime.approve("t", approver="lee", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    assert _paid(app) == (0.0, 300.0)
    r = app.say("t", "Refund $150 on order 1003")  # 450 in 24 h: two distinct support leads
    assert r.pending and r.pending[0]["approvals_needed"] == 2
    r = app.runtime.approve("t", approver="lee", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    assert r.status == "paused" and _paid(app) == (0.0, 300.0)
    r = app.runtime.approve("t", approver="morgan", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    assert _paid(app) == (0.0, 450.0)
    r = app.say("t", "Refund $100 on order 1003")  # 550: above $500 it escalates
    assert r.status == "escalated" and r.pending[0]["rule"] == "refund_over_500"
    assert _paid(app) == (0.0, 450.0)


def test_three_300_refunds_each_with_one_lead_do_not_pay_900(app: App):
    """The reported case: $900 at once escalates, so $300 three times must not pay $900."""
    app.say("t", JANE)
    r = app.say("t", "Refund $300 on order 1003 and $300 on order 1003 and $300 on order 1003")
    assert r.status == "escalated" or all(p["rule"] == "refund_over_500" for p in r.pending)
    assert _paid(app) == (0.0, 0.0)


def test_discounts_on_one_order_add_up(app: App):
    app.say("t", JANE)
    for _ in range(3):
        r = app.say("t", "5% discount on 1002")
        assert r.pending == [], r.reply
    r = app.say("t", "5% discount on 1002")  # 20% in total: a lead decides
    assert _rules(r) == [("discount_over_15", 5.0)]
    app.runtime.reject("t", approver="lee", reason="enough", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    for _ in range(4):
        app.say("t", "5% discount on 1002")
        if app.runtime.result("t").pending:
            app.runtime.reject("t", approver="lee", reason="enough", interrupt_id=app.runtime.result("t").pending[0]["interrupt_id"])
    assert _paid(app, "apply_discount") == (15.0, 15.0)


def test_two_threads_of_one_customer_racing_at_the_limit_pass_at_most_once(app: App):
    for t in ("a", "b"):
        app.say(t, JANE)
    app.say("a", "Refund $20 on order 1001")
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(thread: str) -> None:
        barrier.wait()
        results[thread] = app.runtime.send(thread, "Refund $30 on order 1001")

    workers = [threading.Thread(target=run, args=(t,)) for t in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(r.status for r in results.values()) in (["paused", "replied"], ["paused", "paused"])
    unapproved, total = _paid(app)
    assert unapproved <= 50.0 and total in (20.0, 50.0)
