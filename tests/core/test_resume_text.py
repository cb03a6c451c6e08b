"""Hostile text in a decision (a rejection reason, an escalation note, an edited argument) is
refused before the run is resumed, on every backend, and the run stays decidable."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit.errors import ResumeError
from tests.conftest import App

JANE = "Hi, I'm Jane Doe, zip 94107"
BAD = [("nul", "stop \x00 here", "NUL"), ("lone_surrogate", "bad \ud800 text", "surrogate")]


@pytest.mark.parametrize("name,text,says", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("how", ["reject", "edit", "resolve"])
def test_unstorable_text_in_a_decision_is_refused_and_the_run_stays_decidable(
        app: App, name: str, text: str, says: str, how: str) -> None:
    if how == "resolve":
        app.say("t1", JANE, "dispute the charge on 1001")
    else:
        app.say("t1", JANE, "Refund $80 on order 1001")
    [pending] = app.runtime.result("t1").pending
    call: dict[str, Any] = {
        "reject": lambda: app.runtime.reject(pending, approver="lee", reason=text),
        "edit": lambda: app.runtime.approve(pending, approver="lee", edit={
            "name": "issue_refund", "args": {"order_id": 1001, "amount": 40, "reason": text}}),
        "resolve": lambda: app.runtime.resolve(pending, approver="lee", note=text),
    }
    with pytest.raises(ResumeError, match=says):
        call[how]()
    assert [p["interrupt_id"] for p in app.runtime.result("t1").pending] == [pending["interrupt_id"]]
    assert app.store.inbox.get(pending["interrupt_id"]) is not None
    if how == "resolve":
        assert app.runtime.resolve(pending, approver="lee", note="handled").status == "closed"
    else:
        assert app.runtime.reject(pending, approver="lee", reason="no").status == "replied"
    assert app.shop.refunds(1001) == [] and app.store.audit.verify().ok
