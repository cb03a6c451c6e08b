"""End to end in real headless Chromium: operators decide paused runs in the web inbox, and the
system of record, the model and the audit trail show exactly what they decided (on the fixture app;
the docs' screenshots of the reference app are tests/app/test_reference_browser.py's)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from tests.web.conftest import Served

pytestmark = pytest.mark.xdist_group("browser")

JANE = "Hi, I'm Jane Doe, zip 94107"


def open_item(page: Any, thread: str) -> None:
    """From the inbox, open the (only) item of ``thread``."""
    page.locator(f"[data-testid=inbox-item][data-thread='{thread}'] a").click()
    page.wait_for_selector("[data-testid=action-hash]")
    page.wait_for_load_state("load")  # the stylesheet applied: a layout measured before it is not the page's


def executed(app: Any, thread: str) -> list[Any]:
    return [e for e in app.store.audit.entries(thread) if e.kind == "executed"]


def test_sign_in_see_a_paused_refund_approve_it_and_see_it_in_the_back_office(sign_in: Any, served: Served) -> None:
    app = served.app
    app.say("t1", JANE, "Refund $80 on order 1001")
    page = sign_in("lee")
    row = page.locator("[data-testid=inbox-item][data-thread='t1']")
    assert "issue_refund" in row.inner_text() and "you can decide" in row.inner_text()
    open_item(page, "t1")
    assert page.get_by_test_id("action-hash").inner_text() == app.runtime.result("t1").pending[0]["action_hash"]
    assert "80.0" in page.get_by_test_id("action-args").inner_text()
    assert app.shop.refunds(1001) == []
    page.get_by_test_id("approve").click()
    page.wait_for_selector("[data-testid=flash]")
    assert 'issue_refund: {"refund_id": 1, "order_id": 1001, "amount": 80.0}' in page.get_by_test_id("flash").inner_text()
    assert page.get_by_test_id("thread-status").inner_text() == "replied"
    assert [(r["amount"], r["status"]) for r in app.shop.refunds(1001)] == [(80.0, "issued")]
    approved = [e for e in app.store.audit.entries("t1") if e.kind == "approved"]
    assert [e.actor for e in approved] == ["lee"] and len(executed(app, "t1")) == 1
    assert app.store.inbox.list() == []


def test_an_edited_amount_is_a_new_action_decided_again_and_shown_as_a_diff(sign_in: Any, served: Served) -> None:
    app = served.app
    app.say("t1", JANE, "Refund $80 on order 1001")
    lee = sign_in("lee")
    open_item(lee, "t1")
    lee.get_by_text("Edit, then decide again").click()
    amount = lee.get_by_label("Amount")
    assert amount.get_attribute("type") == "number"  # the browser takes numbers only
    amount.fill("")  # required by the tool's schema: the browser refuses to submit without it
    lee.get_by_test_id("edit-preview").click()
    assert lee.evaluate("document.querySelector('#arg-amount').validity.valid") is False
    assert lee.get_by_test_id("diff").count() == 0
    amount.fill("70")
    lee.get_by_test_id("edit-preview").click()
    diff = lee.get_by_test_id("diff").inner_text()
    assert "80.0" in diff and "70" in diff
    assert app.shop.refunds(1001) == []  # a preview decides nothing
    lee.get_by_test_id("edit-confirm").click()
    lee.wait_for_selector("[data-testid=flash]")
    # $70 still needs a support_lead, and lee, who made the edit, requested it: someone else decides.
    assert app.shop.refunds(1001) == []
    lee.get_by_test_id("pending-link").click()
    assert "requested this action" in lee.get_by_test_id("readonly-note").inner_text()
    assert lee.get_by_test_id("approve").count() == 0
    assert "70" in lee.get_by_test_id("diff").inner_text()
    sam = sign_in("sam")
    open_item(sam, "t1")
    assert "70" in sam.get_by_test_id("action-args").inner_text()
    sam.get_by_test_id("approve").click()
    sam.wait_for_selector("[data-testid=flash]")
    assert [r["amount"] for r in app.shop.refunds(1001)] == [70.0]
    kinds = [e.kind for e in app.store.audit.entries("t1")]
    assert "edited" in kinds and kinds.count("executed") == 1


def test_a_rejection_reason_reaches_the_model(sign_in: Any, served: Served) -> None:
    app = served.app
    app.say("t1", JANE, "Refund $80 on order 1001")
    page = sign_in("lee")
    open_item(page, "t1")
    page.get_by_label("Reason for rejecting").fill("Already refunded by phone on Monday")
    page.get_by_test_id("reject").click()
    page.wait_for_selector("[data-testid=flash]")
    assert app.shop.refunds(1001) == []
    messages = app.runtime.state("t1").values["messages"]
    told = [m.content for m in messages if isinstance(m, ToolMessage)]
    assert any("Already refunded by phone on Monday" in str(t) and "lee" in str(t) for t in told)
    assert [e.actor for e in app.store.audit.entries("t1") if e.kind == "rejected"] == ["lee"]


def test_four_eyes_with_two_browsers_and_two_approvers(sign_in: Any, served: Served) -> None:
    app = served.app
    app.say("t1", JANE, "Refund $350 on order 1002")  # two support_lead approvals; a supervisor may give one
    lee, morgan = sign_in("lee"), sign_in("morgan")
    open_item(lee, "t1")
    open_item(morgan, "t1")  # morgan looks at the same item before lee decides
    assert morgan.get_by_test_id("approvals").inner_text().startswith("0 of 2")
    lee.get_by_test_id("approve").click()
    lee.wait_for_selector("[data-testid=flash]")
    assert app.shop.refunds(1002) == []  # one approval is not enough
    # morgan's page learns live (server-sent events) that what it shows was decided.
    morgan.wait_for_selector("[data-testid=item-changed]")
    # Approving what the page showed is refused: it names an interrupt that is no longer pending.
    morgan.get_by_test_id("approve").click()
    assert "nothing was decided" in morgan.get_by_test_id("refused").inner_text().lower()
    assert app.shop.refunds(1002) == []
    morgan.get_by_test_id("other-item").click()
    assert morgan.get_by_test_id("approvals").inner_text().startswith("1 of 2")
    # lee cannot give the second approval
    lee.goto(served.url + "/")
    open_item(lee, "t1")
    assert "already approved" in lee.get_by_test_id("readonly-note").inner_text()
    morgan.get_by_test_id("approve").click()
    morgan.wait_for_selector("[data-testid=flash]")
    assert [r["amount"] for r in app.shop.refunds(1002)] == [350.0]
    approvers = [g["approver"] for g in executed(app, "t1")[0].data["approvals"]]
    assert approvers == ["lee", "morgan"]


def test_an_approver_without_the_role_sees_the_item_read_only(sign_in: Any, served: Served) -> None:
    app = served.app
    app.say("t1", JANE, "50% discount on 1002")  # over 40%: a supervisor decides
    page = sign_in("lee")
    row = page.locator("[data-testid=inbox-item][data-thread='t1']")
    assert "read-only: needs role supervisor" in row.inner_text()
    open_item(page, "t1")
    assert "supervisor" in page.get_by_test_id("readonly-note").inner_text()
    assert page.get_by_test_id("approve").count() == 0 and page.get_by_test_id("reject").count() == 0
    # Even a hand-made POST from lee's signed-in browser is refused by the server.
    iid = app.runtime.result("t1").pending[0]["interrupt_id"]
    h = page.get_by_test_id("action-hash").inner_text()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    resp = page.request.post(f"{served.url}/items/{iid}/decide",
                             form={"csrf": csrf, "thread": "t1", "action_hash": h, "decision": "approve"})
    assert resp.status == 403 and "supervisor" in resp.text()
    assert app.shop.discounts() == [] and app.store.inbox.get(iid) is not None


@pytest.mark.parametrize("button,status", [("resolve", "closed"), ("hand-back", "replied")], ids=["close", "hand_back"])
def test_an_escalation_is_resolved_in_the_browser(sign_in: Any, served: Served, button: str, status: str) -> None:
    app = served.app
    app.say("t1", JANE, "dispute the charge on 1001")
    page = sign_in("lee")
    open_item(page, "t1")
    assert "request_human" in page.get_by_test_id("summary").inner_text()
    page.get_by_label("Resolution note").fill("Refund arranged with the bank; case closed")
    page.get_by_test_id(button).click()
    page.wait_for_selector("[data-testid=flash]")
    assert page.get_by_test_id("thread-status").inner_text() == status
    resolved = [e for e in app.store.audit.entries("t1") if e.kind == "resolved"]
    assert [(e.actor, e.data["note"]) for e in resolved] == [("lee", "Refund arranged with the bank; case closed")]


def test_roll_back_an_executed_refund_after_a_confirmation(sign_in: Any, served: Served) -> None:
    app = served.app
    app.say("t1", JANE, "Refund $30 on order 1001")  # runs alone: within the limit
    [refund] = app.shop.refunds(1001)
    page = sign_in("lee")
    page.get_by_role("link", name="Audit").click()
    assert "intact" in page.get_by_test_id("chain-status").inner_text()
    entry = page.locator("[data-testid=audit-entry][data-kind=executed]")
    entry.get_by_test_id("rollback-link").click()
    assert app.shop.refunds(1001)[0]["status"] == "issued"  # the confirmation step changes nothing
    page.get_by_test_id("rollback-confirm").click()
    page.wait_for_selector("[data-testid=flash]")
    assert [(r["id"], r["status"]) for r in app.shop.refunds(1001)] == [(refund["id"], "reversed")]
    assert [e.actor for e in app.store.audit.entries("t1") if e.kind == "rolled_back"] == ["lee"]
    assert "rolled back" in page.locator("[data-testid=audit-entry][data-kind=executed]").inner_text()
    assert app.store.audit.verify().ok


def test_the_inbox_updates_live_when_items_arrive_or_are_decided_elsewhere(sign_in: Any, served: Served) -> None:
    app = served.app
    page = sign_in("lee")
    page.wait_for_selector("[data-testid=inbox-empty]")
    app.say("t9", JANE, "Refund $80 on order 1001")  # paused by another process, as it were
    page.wait_for_selector("[data-testid=inbox-item][data-thread='t9']")
    app.runtime.approve(app.runtime.pending("t9", kind="approval")[0], approver="sam")  # decided by someone else, through the CLI's path
    page.wait_for_selector("[data-testid=inbox-empty]")
    assert [r["amount"] for r in app.shop.refunds(1001)] == [80.0]
