"""Each reversible write has a compensation that puts the shop back as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from tools import Shop, ShopError, build_compensations, order_facts

JANE = {"customer_id": "cus_jane"}

# (tool, its arguments, the order it touches)
ACTIONS = [
    ("issue_refund", {"order_id": 1001, "amount": 40, "reason": "scratched"}, 1001),
    ("apply_discount", {"order_id": 1002, "percent": 20, "reason": "late"}, 1002),
    ("change_address", {"order_id": 1002, "line1": "1 Main St", "city": "Oakland", "zip": "94601"}, 1002),
    ("cancel_order", {"order_id": 1004, "reason": "not needed"}, 1004),
]


def _snapshot(shop: Shop, order_id: int) -> dict[str, Any]:
    order = shop.order(order_id)
    assert order is not None
    return {k: order[k] for k in ("status", "shipping_address", "refunded_total", "discounts", "paid", "shipped")}


def test_compensations_cover_the_reversible_writes() -> None:
    assert {name: comp for name, (comp, _) in build_compensations().items()} == {
        "issue_refund": "reverse_refund",
        "apply_discount": "remove_discount",
        "change_address": "restore_address",
        "cancel_order": "reinstate_order",
    }


@pytest.mark.parametrize(("name", "args", "order_id"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_compensation_restores_the_prior_state(
    shop: Shop, tools: dict[str, BaseTool], name: str, args: dict[str, Any], order_id: int
) -> None:
    before = _snapshot(shop, order_id)
    result = tools[name].invoke({**args, **JANE, "idempotency_key": "do"})
    assert _snapshot(shop, order_id) != before
    compensation, make_args = build_compensations()[name]
    comp_args = make_args(args, result)
    assert set(comp_args) <= set(tools[compensation].tool_call_schema.model_json_schema()["properties"])  # type: ignore[union-attr]
    tools[compensation].invoke({**comp_args, **JANE, "idempotency_key": "undo"})
    assert _snapshot(shop, order_id) == before


@pytest.mark.parametrize(("name", "args", "order_id"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_compensation_args_from_a_tool_message(
    tools: dict[str, BaseTool], name: str, args: dict[str, Any], order_id: int
) -> None:
    message = tools[name].invoke({"type": "tool_call", "id": "c1", "name": name, "args": {**args, **JANE}})
    assert isinstance(message, ToolMessage)
    _, make_args = build_compensations()[name]
    from_message = make_args(args, message)
    assert from_message == make_args(args, json.loads(message.content))  # type: ignore[arg-type]
    assert from_message and all(value is not None for value in from_message.values())


@pytest.mark.parametrize(("name", "args", "order_id"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_compensation_runs_once_per_key_and_refuses_a_second_undo(
    shop: Shop, tools: dict[str, BaseTool], name: str, args: dict[str, Any], order_id: int
) -> None:
    result = tools[name].invoke({**args, **JANE})
    compensation, make_args = build_compensations()[name]
    undo = {**make_args(args, result), "idempotency_key": "undo"}
    first = tools[compensation].invoke(undo)
    assert tools[compensation].invoke(undo) == first
    if name != "change_address":  # restoring an address twice is harmless, the rest is refused
        with pytest.raises(ShopError, match="nothing to"):
            tools[compensation].invoke({**make_args(args, result), "idempotency_key": "undo-again"})


def test_reverse_refund_marks_the_refund_reversed(shop: Shop) -> None:
    refund = shop.issue_refund(1001, 40, "x", **JANE)  # type: ignore[arg-type]
    reversed_ = shop.reverse_refund(refund["refund_id"], customer_id="cus_jane")
    assert reversed_ == {"refund_id": refund["refund_id"], "order_id": 1001, "amount": 40.0, "status": "reversed"}
    row = shop.refunds(1001)[0]
    assert row["status"] == "reversed" and row["reversed_at"]
    assert order_facts(shop, 1001)["order_refunded"] == 0.0


def test_remove_discount_marks_it_removed(shop: Shop) -> None:
    discount = shop.apply_discount(1002, 20, "x", **JANE)  # type: ignore[arg-type]
    assert shop.remove_discount(discount["discount_id"])["status"] == "removed"
    assert shop.discounts()[0]["status"] == "removed" and shop.discounts()[0]["removed_at"]


def test_reinstate_order_returns_to_the_previous_status(shop: Shop) -> None:
    shop.cancel_order(1004, "x", **JANE)  # type: ignore[arg-type]
    assert shop.reinstate_order(1004) == {"order_id": 1004, "status": "processed", "previous_status": "cancelled"}
    assert shop.order(1004)["status"] == "processed"  # type: ignore[index]


def test_reinstate_is_refused_after_shipping(shop: Shop, tools: dict[str, BaseTool]) -> None:
    tools["cancel_order"].invoke({"order_id": 1002, "reason": "x", **JANE})
    shop.mark_shipped(1002)  # the parcel left before the cancellation reached the warehouse
    with pytest.raises(ShopError, match="order 1002 has shipped since it was cancelled; it cannot be reinstated"):
        tools["reinstate_order"].invoke({"order_id": 1002, **JANE})
    assert shop.order(1002)["status"] == "cancelled"  # type: ignore[index]


def test_reinstate_refused_for_an_order_that_is_not_cancelled(shop: Shop) -> None:
    with pytest.raises(ShopError, match="order 1002 is pending, not cancelled"):
        shop.reinstate_order(1002)


def test_restore_address_is_refused_after_shipping(shop: Shop) -> None:
    changed = shop.change_address(1002, "1 Main St", "Oakland", "94601", **JANE)  # type: ignore[arg-type]
    shop.mark_shipped(1002)
    with pytest.raises(ShopError, match="order 1002 has already shipped"):
        shop.restore_address(1002, **changed["previous"])
    assert shop.order(1002)["shipping_address"]["city"] == "Oakland"  # type: ignore[index]


def test_compensation_checks_ownership_when_a_customer_is_given(shop: Shop) -> None:
    refund = shop.issue_refund(1001, 40, "x", **JANE)  # type: ignore[arg-type]
    with pytest.raises(ShopError, match="order 1001 does not belong to this customer"):
        shop.reverse_refund(refund["refund_id"], customer_id="cus_omar")
    assert shop.refunds()[0]["status"] == "issued"


@pytest.mark.parametrize(("call", "words"), [
    (lambda s: s.reverse_refund(99), "refund 99 does not exist"),
    (lambda s: s.remove_discount(99), "discount 99 does not exist"),
    (lambda s: s.reinstate_order(99), "order 99 does not exist"),
], ids=["refund", "discount", "order"])
def test_compensation_of_an_unknown_record_is_refused(shop: Shop, call: Any, words: str) -> None:
    with pytest.raises(ShopError, match=words):
        call(shop)


def test_order_facts(shop: Shop) -> None:
    shop.issue_refund(1003, 400, "dent", **JANE)  # type: ignore[arg-type]
    assert order_facts(shop, 1003) == {
        "order_total": 2400.0, "order_status": "delivered", "order_customer_id": "cus_jane", "order_refunded": 400.0,
    }
    assert order_facts(shop, 2001)["order_customer_id"] == "cus_omar"
    assert order_facts(shop, "1001")["order_total"] == 120.0
    assert order_facts(shop, 9999) == {}
    assert order_facts(shop, None) == {}
    assert order_facts(shop, "not a number") == {}


def test_order_facts_has_no_side_effects(shop: Shop) -> None:
    before = shop.db.execute("select total_changes()").fetchone()[0]
    order_facts(shop, 1001)
    assert shop.db.execute("select total_changes()").fetchone()[0] == before
