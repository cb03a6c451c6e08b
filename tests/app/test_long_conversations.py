"""Conversations as they really go: many steps, several gated writes, one approver on shift."""

from __future__ import annotations

import pytest

from agent_kit.errors import ApprovalError

JANE = "Hi, I am Jane Doe, 94107"


def _approve_only_pending(app, thread: str, approver: str):
    (item,) = app.runtime.pending(thread, kind="approval")
    return app.runtime.approve(item, approver=approver)


def test_one_approver_approves_three_gated_writes_in_a_six_step_conversation(app):
    """Every gated call of the run is requested by the customer, so lee can approve each one."""
    steps = [
        (JANE, None),
        ("Where is my order 1001?", None),
        ("Refund $80 on order 1001", "issue_refund"),
        ("Refund $60 on order 1004", "issue_refund"),
        ("20% discount on 1002", "apply_discount"),
        ("How do I return an item?", None),
    ]
    for text, gated in steps:
        r = app.say("t", text)
        if gated is None:
            assert r.status == "replied", (text, r)
            continue
        assert r.status == "paused" and r.pending[0]["action"]["name"] == gated, (text, r)
        assert r.pending[0]["requested_by"] == "customer"
        r = _approve_only_pending(app, "t", "lee")
        assert r.status == "replied", (text, r)
    assert [x["amount"] for x in app.shop.refunds(1001)] == [80.0]
    assert [x["amount"] for x in app.shop.refunds(1004)] == [60.0]
    entries = app.store.audit.entries("t")
    approved = [e for e in entries if e.kind == "approved"]
    assert [(e.actor, e.tool) for e in approved] == [
        ("lee", "issue_refund"), ("lee", "issue_refund"), ("lee", "apply_discount")]
    assert len([e for e in entries if e.kind == "executed" and e.tool in ("issue_refund", "apply_discount")]) == 3
    assert not [e for e in entries if e.kind == "refused"]
    assert app.runtime.state("t").values["requester"] == "customer"
    assert app.store.audit.verify().ok


def test_a_call_the_model_makes_after_an_approval_is_still_the_customers(app):
    """Two gated refunds in one turn and a third after the approvals: none is lee's own request."""
    app.say("t", JANE)
    r = app.say("t", "Refund $60 on order 1001 and refund $55 on order 1004")
    assert r.status == "paused" and len(r.pending) == 1  # one waits on a person at a time
    for _ in range(2):
        (item,) = app.runtime.pending("t", kind="approval")
        assert item.requested_by == "customer"
        app.runtime.approve(item, approver="lee")
    r = app.say("t", "Refund $55 on order 1001")
    (item,) = app.runtime.pending("t", kind="approval")
    assert item.requested_by == "customer"
    app.runtime.approve(item, approver="lee")
    assert sorted(x["amount"] for o in (1001, 1004) for x in app.shop.refunds(o)) == [55.0, 55.0, 60.0]


def test_four_eyes_still_counts_distinct_approvers_for_each_action(app):
    """A refund above $300 needs two support leads (and a supervisor on a large order): one approver,
    however long the run, is not two."""
    app.say("t", JANE)
    app.say("t", "Refund $80 on order 1001")
    _approve_only_pending(app, "t", "lee")
    r = app.say("t", "Refund $350 on order 1003")
    assert r.pending[0]["approvals_needed"] == 2
    _approve_only_pending(app, "t", "lee")
    (item,) = app.runtime.pending("t", kind="approval")
    with pytest.raises(ApprovalError, match="already approved"):
        app.runtime.approve(item, approver="lee")
    assert app.shop.refunds(1003) == []
    app.runtime.approve(item, approver="morgan")
    assert [x["amount"] for x in app.shop.refunds(1003)] == [350.0]


def test_a_staff_member_who_writes_in_the_chat_is_the_requester_of_that_turn(app):
    """Who writes asks: lee starting a refund from the chat cannot approve it; sam can."""
    app.say("t", JANE)
    app.runtime.send("t", "Refund $80 on order 1001", actor="lee")
    (item,) = app.runtime.pending("t", kind="approval")
    assert item.requested_by == "lee"
    with pytest.raises(ApprovalError, match="requested this action"):
        app.runtime.approve(item, approver="lee")
    app.runtime.approve(item, approver="sam")
    assert [x["amount"] for x in app.shop.refunds(1001)] == [80.0]
