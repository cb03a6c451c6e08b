"""The LangChain tools: what the model sees, and what each call leaves in the shop's file."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from tools import Shop, ShopError, build_tools

JANE = {"customer_id": "cus_jane"}

# tool name -> the arguments the model may set (the schema it sees)
MODEL_ARGS = {
    "verify_customer": {"email", "name", "zip"},
    "get_order": {"order_id"},
    "search_help": {"query"},
    "recommend_resolution": {"order_id", "resolution", "note"},
    "draft_reply": {"subject", "body"},
    "update_preferences": {"email_opt_in", "sms_opt_in", "language"},
    "create_ticket": {"subject", "body", "priority"},
    "issue_refund": {"order_id", "amount", "reason"},
    "apply_discount": {"order_id", "percent", "reason"},
    "change_address": {"order_id", "line1", "city", "zip"},
    "cancel_order": {"order_id", "reason"},
    "request_human": {"reason"},
    "dispute_payment": {"order_id", "reason"},
    "reverse_refund": {"refund_id"},
    "remove_discount": {"discount_id"},
    "restore_address": {"order_id", "line1", "city", "zip"},
    "reinstate_order": {"order_id"},
}
INJECTED = {"customer_id", "idempotency_key"}
# tool name -> the injected arguments it takes (every write takes both)
TAKES_INJECTED = {name: INJECTED for name in MODEL_ARGS} | {
    "verify_customer": set(), "search_help": set(), "get_order": {"customer_id"}}


def _rows(shop: Shop, sql: str, *params: Any) -> list[dict[str, Any]]:
    # Read the file through a separate connection: the effect must be committed, not just cached.
    conn = sqlite3.connect(shop.path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_build_tools_names_in_a_stable_order(shop: Shop) -> None:
    names = [t.name for t in build_tools(shop)]
    assert sorted(names) == sorted(MODEL_ARGS) and len(names) == len(set(names))
    assert [t.name for t in build_tools(shop)] == names


@pytest.mark.parametrize("name", sorted(MODEL_ARGS))
def test_model_sees_only_its_own_arguments(tools: dict[str, BaseTool], name: str) -> None:
    schema = tools[name].tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert set(schema.get("properties", {})) == MODEL_ARGS[name]
    assert not INJECTED & set(schema.get("properties", {}))
    assert tools[name].description.strip()


@pytest.mark.parametrize("name", sorted(MODEL_ARGS))
def test_injected_arguments_are_accepted_from_the_graph(tools: dict[str, BaseTool], name: str) -> None:
    accepted = set(tools[name].get_input_schema().model_json_schema()["properties"])
    assert accepted == MODEL_ARGS[name] | TAKES_INJECTED[name]


def test_verify_customer_tool(tools: dict[str, BaseTool]) -> None:
    result = tools["verify_customer"].invoke({"email": "jane@example.com", "zip": "94107"})
    assert result["verified"] is True and result["customer_id"] == "cus_jane" and result["name"] == "Jane Doe"
    assert set(result) == {"verified", "customer_id", "name", "reason"}


def test_get_order_tool_returns_the_full_record(tools: dict[str, BaseTool]) -> None:
    order = tools["get_order"].invoke({"order_id": 1001, **JANE})
    assert {"order_id", "status", "items", "total", "payment", "card_number", "customer_email", "shipping_address",
            "refunded_total", "discounts"} <= set(order)
    assert order["total"] == 120.0 and order["payment"] == {"brand": "Visa", "last4": "4242"}
    assert order["card_number"] == "4242424242424242"
    assert order["customer_email"] == "jane@example.com"


def test_get_order_through_a_tool_call_gives_json(tools: dict[str, BaseTool]) -> None:
    message = tools["get_order"].invoke(
        {"type": "tool_call", "id": "call_1", "name": "get_order", "args": {"order_id": 1002, **JANE}}
    )
    assert isinstance(message, ToolMessage)
    assert json.loads(message.content)["total"] == 45.0  # type: ignore[arg-type]


def test_tool_lets_shop_error_propagate(tools: dict[str, BaseTool]) -> None:
    with pytest.raises(ShopError, match="order 2001 does not belong to this customer"):
        tools["get_order"].invoke({"order_id": 2001, **JANE})


@pytest.mark.parametrize(("query", "title"), [
    ("how do I cancel my order", "Cancelling an order"),
    ("I want to return the headphones", "Returns"),
    ("when will my refund arrive", "Refunds"),
    ("change the shipping address", "Changing the shipping address"),
    ("I was charged twice on my card", "Payments and cards"),
    ("tracking for my parcel", "Shipping times"),
])
def test_search_help_finds_the_article(tools: dict[str, BaseTool], query: str, title: str) -> None:
    articles = tools["search_help"].invoke({"query": query})["articles"]
    assert articles[0]["title"] == title and articles[0]["answer"]


def test_search_help_with_no_match(tools: dict[str, BaseTool]) -> None:
    assert tools["search_help"].invoke({"query": "quantum chromodynamics"}) == {"articles": []}


def test_recommend_resolution_records_a_row(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["recommend_resolution"].invoke(
        {"order_id": 1003, "resolution": "refund 200.00", "note": "screen scratched", **JANE}
    )
    row = _rows(shop, "select * from recommendations where id = ?", result["recommendation_id"])[0]
    assert (row["order_id"], row["resolution"], row["note"], row["customer"]) == (
        1003, "refund 200.00", "screen scratched", "cus_jane")
    assert shop.refunds() == []
    assert shop.recommendations()[0]["recommendation_id"] == result["recommendation_id"]


def test_draft_reply_saves_a_draft_and_sends_nothing(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["draft_reply"].invoke(
        {"subject": "Your order", "body": "It ships tomorrow.", **JANE, "idempotency_key": "k"}
    )
    assert result["status"] == "draft" and result["draft_id"]
    row = _rows(shop, "select * from drafts")[0]
    assert (row["id"], row["status"], row["subject"], row["customer"]) == (
        result["draft_id"], "draft", "Your order", "cus_jane")
    assert shop.drafts()[0]["body"] == "It ships tomorrow."


def test_update_preferences_changes_the_row(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["update_preferences"].invoke({"sms_opt_in": True, "language": "es", **JANE})
    assert result["preferences"] == {"email_opt_in": True, "sms_opt_in": True, "language": "es"}
    assert result["previous"] == {"email_opt_in": True, "sms_opt_in": False, "language": "en"}
    row = _rows(shop, "select * from preferences where customer = 'cus_jane'")[0]
    assert (row["sms_opt_in"], row["language"]) == (1, "es")
    assert shop.preferences("cus_omar")["language"] == "en"


def test_create_ticket_opens_a_ticket(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["create_ticket"].invoke({"subject": "Late", "body": "Parcel is late", "priority": "high", **JANE})
    row = _rows(shop, "select * from tickets where id = ?", result["ticket_id"])[0]
    assert (row["subject"], row["priority"], row["status"], row["escalated"], row["customer"]) == (
        "Late", "high", "open", 0, "cus_jane")


def test_create_ticket_priority_defaults_to_normal(tools: dict[str, BaseTool]) -> None:
    assert tools["create_ticket"].invoke({"subject": "Hi", "body": "A question"})["priority"] == "normal"


def test_issue_refund_writes_a_refund(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["issue_refund"].invoke({"order_id": 1001, "amount": 20, "reason": "scratched", **JANE})
    assert result == {"refund_id": result["refund_id"], "order_id": 1001, "amount": 20.0, "status": "issued"}
    row = _rows(shop, "select * from refunds")[0]
    assert (row["order_id"], row["amount_cents"], row["status"], row["reason"]) == (1001, 2000, "issued", "scratched")
    assert shop.get_order(1001, customer_id="cus_jane")["refunded_total"] == 20.0


def test_apply_discount_writes_a_discount(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["apply_discount"].invoke({"order_id": 1002, "percent": 15, "reason": "late", **JANE})
    assert (result["order_id"], result["percent"]) == (1002, 15.0) and result["discount_id"]
    row = _rows(shop, "select * from discounts")[0]
    assert (row["order_id"], row["percent"], row["status"]) == (1002, 15.0, "active")
    order = shop.order(1002)
    assert order is not None and order["paid"] == 38.25
    assert order["discounts"] == [{"discount_id": result["discount_id"], "percent": 15.0, "reason": "late"}]


def test_change_address_updates_the_order(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["change_address"].invoke(
        {"order_id": 1002, "line1": "1 Main St", "city": "Oakland", "zip": "94601", **JANE}
    )
    assert result["address"] == {"line1": "1 Main St", "city": "Oakland", "zip": "94601"}
    assert result["previous"] == {"line1": "500 Market St", "city": "San Francisco", "zip": "94107"}
    row = _rows(shop, "select ship_line1, ship_city, ship_zip from orders where id = 1002")[0]
    assert row == {"ship_line1": "1 Main St", "ship_city": "Oakland", "ship_zip": "94601"}


def test_cancel_order_cancels(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["cancel_order"].invoke({"order_id": 1002, "reason": "changed my mind", **JANE})
    assert result == {"order_id": 1002, "status": "cancelled", "previous_status": "pending"}
    row = _rows(shop, "select status, previous_status from orders where id = 1002")[0]
    assert row == {"status": "cancelled", "previous_status": "pending"}


def test_request_human_opens_an_escalated_ticket(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["request_human"].invoke({"reason": "wants a supervisor", **JANE})
    assert result["escalated"] is True
    row = _rows(shop, "select * from tickets")[0]
    assert (row["escalated"], row["priority"], row["body"]) == (1, "high", "wants a supervisor")


def test_dispute_payment_opens_an_escalated_ticket_on_the_order(shop: Shop, tools: dict[str, BaseTool]) -> None:
    result = tools["dispute_payment"].invoke({"order_id": 1003, "reason": "charged twice", **JANE})
    assert result["escalated"] is True and result["order_id"] == 1003
    ticket = shop.tickets()[0]
    assert ticket["order_id"] == 1003 and ticket["escalated"] is True and "1003" in ticket["subject"]
    assert shop.refunds() == []


def test_tool_passes_the_idempotency_key_through(shop: Shop, tools: dict[str, BaseTool]) -> None:
    args = {"order_id": 1001, "amount": 20, "reason": "scratched", **JANE, "idempotency_key": "ak_1"}
    first = tools["issue_refund"].invoke(args)
    assert tools["issue_refund"].invoke(args) == first
    assert len(shop.refunds()) == 1
    assert shop.lookup_idempotency("ak_1") == first


def test_write_tools_without_a_verified_customer_are_refused(tools: dict[str, BaseTool]) -> None:
    with pytest.raises(ShopError, match="verify_customer"):
        tools["issue_refund"].invoke({"order_id": 1001, "amount": 20, "reason": "x"})
