"""Back-office rules: each violation is refused with a message naming the value and the fix, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tools import Shop, ShopError

JANE = {"customer_id": "cus_jane"}
WRITE_TABLES = ("refunds", "discounts", "tickets", "drafts", "recommendations", "idempotency_keys")


def _state(shop: Shop) -> dict[str, Any]:
    counts = {t: shop.count(t) for t in WRITE_TABLES}
    orders = list(shop.db.query("select * from orders order by id"))
    prefs = list(shop.db.query("select * from preferences order by customer"))
    return {"counts": counts, "orders": orders, "prefs": prefs}


def _ship(order_id: int) -> Callable[[Shop], None]:
    return lambda shop: shop.mark_shipped(order_id)


def _refund(order_id: int, amount: float) -> Callable[[Shop], None]:
    return lambda shop: shop.issue_refund(order_id, amount, "earlier refund", **JANE)  # type: ignore[arg-type]


def _discount(order_id: int, percent: float) -> Callable[[Shop], None]:
    return lambda shop: shop.apply_discount(order_id, percent, "earlier discount", **JANE)  # type: ignore[arg-type]


def _cancel(order_id: int) -> Callable[[Shop], None]:
    return lambda shop: shop.cancel_order(order_id, "earlier cancellation", **JANE)  # type: ignore[arg-type]


# (id, set-up, the refused call, words the message must contain)
CASES: list[tuple[str, Callable[[Shop], None] | None, Callable[[Shop], Any], list[str]]] = [
    ("get_foreign_order", None, lambda s: s.get_order(2001, **JANE),
     ["order 2001 does not belong to this customer"]),
    ("get_unknown_order", None, lambda s: s.get_order(9999, **JANE), ["order 9999 does not exist"]),
    ("get_without_customer", None, lambda s: s.get_order(1001, customer_id=None), ["verify_customer"]),
    ("order_id_not_a_number", None, lambda s: s.get_order("abc", **JANE), ["'abc'", "such as 1001"]),
    ("refund_foreign_order", None, lambda s: s.issue_refund(2001, 10, "x", **JANE),
     ["order 2001 does not belong to this customer"]),
    ("refund_pending_order", None, lambda s: s.issue_refund(1002, 10, "x", **JANE),
     ["order 1002 is pending", "processed or delivered", "cancel"]),
    ("refund_cancelled_order", _cancel(1004), lambda s: s.issue_refund(1004, 10, "x", **JANE),
     ["order 1004 is cancelled"]),
    ("refund_zero", None, lambda s: s.issue_refund(1001, 0, "x", **JANE), ["greater than 0", "got 0"]),
    ("refund_negative", None, lambda s: s.issue_refund(1001, -5, "x", **JANE), ["greater than 0", "-5"]),
    ("refund_fraction_of_cent", None, lambda s: s.issue_refund(1001, 1.005, "x", **JANE),
     ["1.005", "2 decimal places"]),
    ("refund_not_a_number", None, lambda s: s.issue_refund(1001, "lots", "x", **JANE), ["'lots'", "12.50"]),
    ("refund_above_total", None, lambda s: s.issue_refund(1001, 120.01, "x", **JANE),
     ["$120.01", "above the $120.00 paid", "at most $120.00"]),
    ("refunds_add_up_above_total", _refund(1001, 100), lambda s: s.issue_refund(1001, 30, "x", **JANE),
     ["$130.00", "above the $120.00 paid", "at most $20.00"]),
    ("refund_above_discounted_price", _discount(1001, 50), lambda s: s.issue_refund(1001, 61, "x", **JANE),
     ["above the $60.00 paid", "at most $60.00"]),
    ("refund_without_reason", None, lambda s: s.issue_refund(1001, 5, "  ", **JANE), ["reason is empty"]),
    ("discount_zero", None, lambda s: s.apply_discount(1001, 0, "x", **JANE), ["above 0 and at most 100", "got 0"]),
    ("discount_above_100", None, lambda s: s.apply_discount(1001, 150, "x", **JANE),
     ["above 0 and at most 100", "got 150"]),
    ("discount_cancelled_order", _cancel(1002), lambda s: s.apply_discount(1002, 10, "x", **JANE),
     ["order 1002 is cancelled"]),
    ("discounts_add_up_above_100", _discount(1001, 60), lambda s: s.apply_discount(1001, 50, "x", **JANE),
     ["already has 60% off", "at most 40% more"]),
    ("discount_below_refunded", _refund(1001, 100), lambda s: s.apply_discount(1001, 50, "x", **JANE),
     ["$60.00", "below the $100.00 already refunded"]),
    ("discount_foreign_order", None, lambda s: s.apply_discount(2001, 10, "x", **JANE),
     ["order 2001 does not belong to this customer"]),
    ("address_after_delivery", None, lambda s: s.change_address(1001, "1 Main St", "Oakland", "94601", **JANE),
     ["order 1001 has already shipped", "before shipping"]),
    ("address_after_shipping", _ship(1004),
     lambda s: s.change_address(1004, "1 Main St", "Oakland", "94601", **JANE), ["order 1004 has already shipped"]),
    ("address_of_cancelled_order", _cancel(1002),
     lambda s: s.change_address(1002, "1 Main St", "Oakland", "94601", **JANE), ["order 1002 is cancelled"]),
    ("address_bad_zip", None, lambda s: s.change_address(1002, "1 Main St", "Oakland", "9460", **JANE),
     ["zip '9460'", "5 digits"]),
    ("address_foreign_order", None, lambda s: s.change_address(2001, "1 Main St", "Oakland", "94601", **JANE),
     ["order 2001 does not belong to this customer"]),
    ("cancel_delivered_order", None, lambda s: s.cancel_order(1001, "x", **JANE),
     ["order 1001 is delivered", "pending or processed"]),
    ("cancel_twice", _cancel(1002), lambda s: s.cancel_order(1002, "x", **JANE), ["order 1002 is cancelled"]),
    ("cancel_after_shipping", _ship(1004), lambda s: s.cancel_order(1004, "x", **JANE),
     ["order 1004 has already shipped"]),
    ("cancel_foreign_order", None, lambda s: s.cancel_order(2001, "x", **JANE),
     ["order 2001 does not belong to this customer"]),
    ("preferences_without_customer", None, lambda s: s.update_preferences(language="es", customer_id=None),
     ["verify_customer"]),
    ("preferences_nothing_to_change", None, lambda s: s.update_preferences(**JANE), ["nothing to update"]),
    ("preferences_bad_language", None, lambda s: s.update_preferences(language="Spanish!", **JANE),
     ["'Spanish!'", "'en'"]),
    ("ticket_bad_priority", None, lambda s: s.create_ticket("s", "b", "urgent", **JANE), ["'urgent'", "low"]),
    ("ticket_empty_subject", None, lambda s: s.create_ticket("", "b", **JANE), ["subject is empty"]),
    ("draft_empty_body", None, lambda s: s.draft_reply("s", "", **JANE), ["body is empty"]),
    ("recommend_foreign_order", None, lambda s: s.recommend_resolution(2001, "refund", **JANE),
     ["order 2001 does not belong to this customer"]),
    ("dispute_foreign_order", None, lambda s: s.escalate("x", topic="dispute_payment", order_id=2001, **JANE),
     ["order 2001 does not belong to this customer"]),
    ("empty_idempotency_key", None,
     lambda s: s.issue_refund(1001, 5, "x", customer_id="cus_jane", idempotency_key=""), ["idempotency key ''"]),
]


@pytest.mark.parametrize(("setup", "call", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_violation_is_refused_and_writes_nothing(
    shop: Shop, setup: Callable[[Shop], None] | None, call: Callable[[Shop], Any], words: list[str]
) -> None:
    if setup is not None:
        setup(shop)
    before = _state(shop)
    with pytest.raises(ShopError) as raised:
        call(shop)
    for word in words:
        assert word in str(raised.value)
    assert _state(shop) == before


def test_shop_error_is_a_value_error() -> None:
    assert issubclass(ShopError, ValueError)


def test_refund_up_to_exactly_what_was_paid_is_allowed(shop: Shop) -> None:
    shop.issue_refund(1001, 100, "part", customer_id="cus_jane")
    shop.issue_refund(1001, 20, "rest", customer_id="cus_jane")
    assert shop.order(1001)["refunded_total"] == 120.0  # type: ignore[index]


def test_refund_on_processed_order_is_allowed(shop: Shop) -> None:
    assert shop.issue_refund(1004, 30, "one lamp broken", customer_id="cus_jane")["status"] == "issued"


def test_reversed_refund_frees_the_amount_again(shop: Shop) -> None:
    refund = shop.issue_refund(1001, 120, "all", customer_id="cus_jane")
    shop.reverse_refund(refund["refund_id"])
    assert shop.issue_refund(1001, 120, "all again", customer_id="cus_jane")["amount"] == 120.0


def test_full_discount_is_allowed(shop: Shop) -> None:
    assert shop.apply_discount(1002, 100, "on the house", customer_id="cus_jane")["percent"] == 100.0


def test_processed_unshipped_order_can_be_cancelled(shop: Shop) -> None:
    result = shop.cancel_order(1004, "no longer needed", customer_id="cus_jane")
    assert result == {"order_id": 1004, "status": "cancelled", "previous_status": "processed"}


def test_verify_customer_by_email_plus_name_or_zip_or_by_name_and_zip(shop: Shop) -> None:
    assert shop.verify_customer(email="jane@example.com", zip="94107")["customer_id"] == "cus_jane"
    assert shop.verify_customer(email="Jane@Example.com", name="jane doe")["verified"] is True
    assert shop.verify_customer(name="Omar Haddad", zip="10001")["customer_id"] == "cus_omar"
    email_only = shop.verify_customer(email="jane@example.com")
    assert email_only["verified"] is False and "with your full name or the ZIP code" in email_only["reason"]
    name_only = shop.verify_customer(name="Jane Doe")
    assert name_only["verified"] is False and "ZIP code" in name_only["reason"]
    wrong = shop.verify_customer(email="jane@example.com", zip="10001")
    assert wrong == {"verified": False, "customer_id": None, "name": None, "reason": wrong["reason"]}
    assert "do not match" in wrong["reason"]
    mixed = shop.verify_customer(email="jane@example.com", name="Omar Haddad")
    assert mixed["verified"] is False
