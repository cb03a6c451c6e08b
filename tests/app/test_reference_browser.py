"""The docs' screenshots of the web inbox (docs/screenshots), taken in real headless Chromium over
the reference agent: a morning's mix of its cases (automatic, approved, waiting on the customer,
escalated, needing a supervisor, rejected then asked again). The inbox's own behaviour is tested on
the fixture app in tests/web."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import SCREENSHOTS, Served, cheap_password_hashing, served, sign_in
from tests.web.test_browser import JANE, open_item

__all__ = ["cheap_password_hashing", "served", "sign_in"]  # tests/web's fixtures, on the reference agent here

pytestmark = pytest.mark.xdist_group("browser")


def page_width(page: Any) -> int:
    """The page's laid-out width once its stylesheet has loaded (measured earlier, under load, a long
    unbroken value such as the action hash is laid out without the rules that wrap it)."""
    page.wait_for_load_state("load")
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("width,suffix", [(1280, ""), (390, "-phone")], ids=["desktop", "phone"])
def test_screenshots_of_the_inbox_an_item_and_the_dashboard(sign_in: Any, served: Served, width: int,
                                                            suffix: str) -> None:
    app = served.app
    app.say("t-ann", JANE, "Refund $30 on order 1001")                      # automatic
    app.say("t-ann", "Refund $80 on order 1001")
    app.runtime.approve(app.runtime.pending("t-ann", kind="approval")[0], approver="sam")                            # approved
    app.say("t-ben", "Hi, I'm omar@example.com", "cancel order 2001")        # waits on the customer
    app.say("t-cal", JANE, "dispute the charge on 1002")                    # escalated
    app.say("t-dee", JANE, "10% discount on 1003")                          # needs a supervisor
    app.say("t-eve", JANE, "Refund $60 on order 1004")
    app.runtime.reject(app.runtime.pending("t-eve", kind="approval")[0], approver="sam", reason="Order not delivered yet")
    app.say("t-eve", "Refund $55 on order 1004")                            # needs a support_lead
    page = sign_in("lee", width=width, height=860)
    page.wait_for_selector("[data-testid=inbox]")
    assert page_width(page) <= width  # no sideways scrolling
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"inbox{suffix}.png"), full_page=True)
    open_item(page, "t-eve")
    assert page_width(page) <= width
    page.screenshot(path=str(SCREENSHOTS / f"item{suffix}.png"), full_page=True)
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_selector("svg.chart")
    assert page_width(page) <= width
    assert page.locator("[data-testid=executed-row][data-tool=issue_refund]").inner_text().split()[1:] == \
        ["1", "·", "amount", "30.00", "1", "·", "amount", "80.00"]
    page.screenshot(path=str(SCREENSHOTS / f"dashboard{suffix}.png"), full_page=True)
