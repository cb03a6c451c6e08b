"""An inbox row says who may act the way the item page does: an approval that needs several roles
can be approved by anyone holding a role still unmet, not only the first one named."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit import Policy
from agent_kit.inbox import PendingItem
from agent_kit.web._views import list_permission

POLICY = Policy.from_dict({
    "version": 1,
    "approvers": {"lee": ["support_lead"], "sam": ["support_lead"], "morgan": ["supervisor"], "ann": ["clerk"]},
    "roles": {"supervisor": ["support_lead"]},
    "tools": {"discount": {"mode": "execute_limited"}},
})
BOTH = [{"role": "support_lead", "count": 1}, {"role": "supervisor", "count": 1}]


def _item(approvals: list[dict[str, Any]], requirements: list[dict[str, Any]] | None = BOTH,
          required_role: str = "supervisor") -> PendingItem:
    return PendingItem(thread_id="t", interrupt_id="i", kind="approval", action={"name": "discount", "args": {}},
                       action_hash="h", mode="execute_limited", required_role=required_role, approvals_needed=2,
                       approvals=approvals, requested_by="customer", requirements=requirements)


@pytest.mark.parametrize(("me", "approvals", "can"), [
    ("lee", [], True),  # a support_lead fills the support_lead requirement
    ("morgan", [], True),
    ("ann", [], False),
    ("sam", [{"approver": "lee"}], False),  # the support_lead requirement is met; a supervisor is needed
    ("morgan", [{"approver": "lee"}], True),
])
def test_a_row_lets_anyone_approve_who_holds_a_role_still_unmet(me: str, approvals: list[dict[str, Any]],
                                                                 can: bool) -> None:
    perm = list_permission(_item(approvals), me, POLICY)
    assert perm.approve is can, perm
    if not can:
        assert perm.why_not and "needs role" in perm.why_not or "holds no role" in (perm.why_not or "")


def test_an_item_listed_before_requirements_were_kept_falls_back_to_the_required_role() -> None:
    item = PendingItem.from_json({**_item([], requirements=None).to_json()})
    assert list_permission(item, "lee", POLICY).approve is False
    assert list_permission(item, "morgan", POLICY).approve is True
