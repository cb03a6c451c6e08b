"""A decision lands only on what its decider saw: the pending action changing between looking and
deciding never moves the decision onto the new action (on SQLite and Postgres)."""

from __future__ import annotations

import pytest

from agent_kit.errors import ResumeError, StaleInterruptError

JANE = "Hi, I am Jane Doe, 94107"


def _seen_then_replaced(app):
    """lee lists a $60 refund; sam rejects it; the customer then asks for $120."""
    app.say("t", JANE)
    app.say("t", "Refund $60 on order 1001")
    (seen,) = app.runtime.pending("t", kind="approval")
    assert seen.action["args"]["amount"] == 60.0
    app.runtime.reject(seen, approver="sam", reason="ask the customer first")
    r = app.say("t", "Refund $120 on order 1001")
    (now,) = app.runtime.pending("t", kind="approval")
    assert now.action["args"]["amount"] == 120.0 and r.status == "paused"
    assert now.interrupt_id != seen.interrupt_id and now.action_hash != seen.action_hash
    return seen, now


NAMINGS = [
    pytest.param(lambda seen: {"target": seen}, id="the-item"),
    pytest.param(lambda seen: {"target": seen.to_json()}, id="the-item-as-json"),
    pytest.param(lambda seen: {"target": "t", "interrupt_id": seen.interrupt_id}, id="interrupt-id"),
    pytest.param(lambda seen: {"target": "t", "action_hash": seen.action_hash}, id="action-hash"),
    pytest.param(lambda seen: {"target": "t", "action_hash": seen.action_hash[:16]}, id="hash-prefix"),
]


@pytest.mark.parametrize("naming", NAMINGS)
def test_an_approval_of_what_was_seen_never_pays_what_replaced_it(app, naming):
    seen, now = _seen_then_replaced(app)
    kw = naming(seen)
    with pytest.raises(StaleInterruptError):
        app.runtime.approve(kw.pop("target"), approver="lee", **kw)
    assert app.shop.refunds(1001) == []
    assert not app.store.audit.entries("t", kind="approved")
    # The new request is untouched and is decided on its own, once named.
    assert [i.interrupt_id for i in app.runtime.pending("t", kind="approval")] == [now.interrupt_id]
    app.runtime.approve(now, approver="lee")
    assert [x["amount"] for x in app.shop.refunds(1001)] == [120.0]


def test_a_decision_that_names_nothing_is_refused_and_changes_nothing(app):
    _seen_then_replaced(app)
    with pytest.raises(ResumeError, match="name the decision you make"):
        app.runtime.approve("t", approver="lee")
    assert app.shop.refunds(1001) == []
    assert len(app.runtime.pending("t", kind="approval")) == 1


def test_an_item_and_an_id_that_contradict_each_other_are_refused(app):
    seen, now = _seen_then_replaced(app)
    with pytest.raises(ResumeError, match="contradicts"):
        app.runtime.approve(now, approver="lee", interrupt_id=seen.interrupt_id)
    assert app.shop.refunds(1001) == []


def test_an_interrupt_id_with_another_actions_hash_is_refused(app):
    seen, now = _seen_then_replaced(app)
    with pytest.raises(StaleInterruptError, match="not .* which you named"):
        app.runtime.approve("t", approver="lee", interrupt_id=now.interrupt_id, action_hash=seen.action_hash)
    assert app.shop.refunds(1001) == []
