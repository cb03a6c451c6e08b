"""Hostile text in a decision (a rejection reason, an escalation note, an edited argument) is
stored as it is when it is Unicode text (NUL and control characters included), or refused before
the run is resumed when no backend can store it (a lone surrogate); either way the run stays
decidable, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit.errors import DecisionInputError, InputError, ResumeError
from tests.fixture_app import App

JANE = "Hi, I'm Jane Doe, zip 94107"
REFUSED = [("lone_surrogate", "bad \ud800 text", "surrogate")]
STORED = [("nul", "stop \x00 here"), ("controls", "bell \x07 esc \x1b[2J del \x7f"), ("line_sep", "a\u2028b\u2029c"),
          ("bom_rtl", "\ufeffstart \u202eevil")]


def _pause(app: App, how: str) -> dict[str, Any]:
    if how == "resolve":
        app.say("t1", JANE, "dispute the charge on 1001")
    else:
        app.say("t1", JANE, "Refund $80 on order 1001")
    [pending] = app.runtime.result("t1").pending
    return pending


def _decide(app: App, pending: dict[str, Any], how: str, text: str) -> Any:
    if how == "reject":
        return app.runtime.reject(pending, approver="lee", reason=text)
    if how == "edit":
        return app.runtime.approve(pending, approver="lee", edit={
            "name": "issue_refund", "args": {"order_id": 1001, "amount": 40, "reason": text}})
    return app.runtime.resolve(pending, approver="lee", note=text)


@pytest.mark.parametrize("name,text,says", REFUSED, ids=[b[0] for b in REFUSED])
@pytest.mark.parametrize("how", ["reject", "edit", "resolve"])
def test_unstorable_text_in_a_decision_is_refused_and_the_run_stays_decidable(
        app: App, name: str, text: str, says: str, how: str) -> None:
    pending = _pause(app, how)
    with pytest.raises(DecisionInputError, match=says) as refused:
        _decide(app, pending, how, text)
    assert isinstance(refused.value, ResumeError) and isinstance(refused.value, InputError)
    assert [p["interrupt_id"] for p in app.runtime.result("t1").pending] == [pending["interrupt_id"]]
    assert app.store.inbox.get(pending["interrupt_id"]) is not None
    if how == "resolve":
        assert app.runtime.resolve(pending, approver="lee", note="handled").status == "closed"
    else:
        assert app.runtime.reject(pending, approver="lee", reason="no").status == "replied"
    assert app.shop.refunds(1001) == [] and app.store.audit.verify().ok


@pytest.mark.parametrize("name,text", STORED, ids=[b[0] for b in STORED])
@pytest.mark.parametrize("how", ["reject", "edit", "resolve"])
def test_odd_but_valid_text_in_a_decision_is_stored_as_it_is(app: App, name: str, text: str, how: str) -> None:
    pending = _pause(app, how)
    _decide(app, pending, how, text)
    kind = {"reject": "rejected", "edit": "edited", "resolve": "resolved"}[how]
    [entry] = [e for e in app.store.audit.entries("t1") if e.kind == kind]
    if how == "edit":
        assert entry.data["new_args"]["reason"] == text
    else:
        assert entry.data["message" if how == "reject" else "note"] == text
    assert app.store.audit.verify().ok
    assert app.runtime.send("t1", "thanks").reply
