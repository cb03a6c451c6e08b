"""Every compensation of the reference app restores the back office; a second rollback is refused."""

from __future__ import annotations

import pytest

from agent_kit import RollbackError
from agent_kit.rollback import rollback

JANE = "Hi, I am Jane Doe, 94107"


def _executed(app, tool):
    return [e for e in app.store.audit.entries("t", kind="executed") if e.tool == tool][-1]


def _refund(app):
    app.say("t", JANE, "Refund $20 on order 1001")
    return lambda: [r["status"] for r in app.shop.refunds(1001)]


def _discount(app):
    app.say("t", JANE, "10% discount on 1002")
    return lambda: [d.get("status", d.get("active")) for d in app.shop.discounts()]


def _address(app):
    before = app.shop.order(1002)["shipping_address"]
    app.say("t", JANE, "change the address of 1002 to 1 Main St, Springfield, 12345", "yes")
    assert app.shop.order(1002)["shipping_address"] != before
    return lambda: app.shop.order(1002)["shipping_address"]


def _cancel(app):
    app.say("t", JANE, "Cancel order 1002", "yes")
    return lambda: app.shop.order(1002)["status"]


CASES = {"issue_refund": _refund, "apply_discount": _discount, "change_address": _address, "cancel_order": _cancel}


@pytest.mark.parametrize("tool", list(CASES))
def test_each_compensation_restores_the_back_office_once(sqlite_app, tool):
    app = sqlite_app
    if tool == "change_address":
        original = app.shop.order(1002)["shipping_address"]
    elif tool == "cancel_order":
        original = app.shop.order(1002)["status"]
    state = CASES[tool](app)
    after_effect = state()
    entry = _executed(app, tool)
    result = rollback(app.runtime, entry.seq, approver="lee")
    restored = state()
    assert restored != after_effect
    if tool in ("change_address", "cancel_order"):
        assert restored == original
    with pytest.raises(RollbackError, match="already rolled back"):
        rollback(app.runtime, entry.seq, approver="sam")
    assert state() == restored
    kinds = [e.kind for e in app.store.audit.entries("t")]
    assert kinds.count("rolled_back") == 1
    assert result["compensation"] == app.runtime.kernel.registry[tool].compensation.tool
    assert app.store.audit.verify().ok


def test_irreversible_action_says_so(sqlite_app):
    app = sqlite_app
    app.say("t", JANE, "Open a ticket about the damaged box")
    entry = _executed(app, "create_ticket")
    with pytest.raises(RollbackError, match="irreversible"):
        rollback(app.runtime, entry.seq, approver="lee")
