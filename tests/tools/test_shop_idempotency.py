"""Writes behave like a payments API: one key, one effect, the same response."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tools import Shop, ShopError

JANE = "cus_jane"

# (id, table written, the call with a key, the same kind of call with different arguments)
WRITES: list[tuple[str, str, Callable[[Shop, str], Any], Callable[[Shop, str], Any]]] = [
    ("issue_refund", "refunds",
     lambda s, k: s.issue_refund(1001, 20, "broken", customer_id=JANE, idempotency_key=k),
     lambda s, k: s.issue_refund(1001, 25, "broken", customer_id=JANE, idempotency_key=k)),
    ("apply_discount", "discounts",
     lambda s, k: s.apply_discount(1001, 10, "late", customer_id=JANE, idempotency_key=k),
     lambda s, k: s.apply_discount(1001, 15, "late", customer_id=JANE, idempotency_key=k)),
    ("create_ticket", "tickets",
     lambda s, k: s.create_ticket("Late parcel", "Where is it?", customer_id=JANE, idempotency_key=k),
     lambda s, k: s.create_ticket("Late parcel", "Where is it now?", customer_id=JANE, idempotency_key=k)),
    ("draft_reply", "drafts",
     lambda s, k: s.draft_reply("Your refund", "It is on its way.", customer_id=JANE, idempotency_key=k),
     lambda s, k: s.draft_reply("Your refund", "It is coming.", customer_id=JANE, idempotency_key=k)),
    ("recommend_resolution", "recommendations",
     lambda s, k: s.recommend_resolution(1001, "refund 20.00", customer_id=JANE, idempotency_key=k),
     lambda s, k: s.recommend_resolution(1001, "refund 30.00", customer_id=JANE, idempotency_key=k)),
    ("escalate", "tickets",
     lambda s, k: s.escalate("wants a person", customer_id=JANE, idempotency_key=k),
     lambda s, k: s.escalate("wants a supervisor", customer_id=JANE, idempotency_key=k)),
]


@pytest.mark.parametrize(("table", "call", "_other"), [w[1:] for w in WRITES], ids=[w[0] for w in WRITES])
def test_same_key_same_request_writes_once_and_returns_the_same_response(
    shop: Shop, table: str, call: Callable[[Shop, str], Any], _other: Any
) -> None:
    before = shop.count(table)
    first = call(shop, "key-1")
    second = call(shop, "key-1")
    assert second == first
    assert shop.count(table) == before + 1
    assert shop.lookup_idempotency("key-1") == first


@pytest.mark.parametrize(("table", "call", "other"), [w[1:] for w in WRITES], ids=[w[0] for w in WRITES])
def test_same_key_different_request_is_refused(
    shop: Shop, table: str, call: Callable[[Shop, str], Any], other: Callable[[Shop, str], Any]
) -> None:
    call(shop, "key-1")
    before = shop.count(table)
    with pytest.raises(ShopError, match="idempotency key 'key-1' was already used for a different request"):
        other(shop, "key-1")
    assert shop.count(table) == before


def test_key_reused_for_another_operation_is_refused(shop: Shop) -> None:
    shop.issue_refund(1001, 20, "broken", customer_id=JANE, idempotency_key="key-1")
    with pytest.raises(ShopError, match=r"different request \(issue_refund\)"):
        shop.cancel_order(1002, "x", customer_id=JANE, idempotency_key="key-1")
    assert shop.order(1002)["status"] == "pending"  # type: ignore[index]


def test_same_amount_written_differently_is_the_same_request(shop: Shop) -> None:
    first = shop.issue_refund(1001, 20, "broken", customer_id=JANE, idempotency_key="k")
    assert shop.issue_refund(1001, 20.0, "broken", customer_id=JANE, idempotency_key="k") == first
    assert len(shop.refunds()) == 1


def test_replay_returns_the_original_even_when_the_rule_would_now_refuse(shop: Shop) -> None:
    first = shop.cancel_order(1002, "changed my mind", customer_id=JANE, idempotency_key="k")
    assert shop.cancel_order(1002, "changed my mind", customer_id=JANE, idempotency_key="k") == first
    with pytest.raises(ShopError, match="order 1002 is cancelled"):
        shop.cancel_order(1002, "changed my mind", customer_id=JANE, idempotency_key="other")


def test_update_preferences_replay_keeps_the_first_previous_values(shop: Shop) -> None:
    first = shop.update_preferences(language="es", customer_id=JANE, idempotency_key="k")
    again = shop.update_preferences(language="es", customer_id=JANE, idempotency_key="k")
    assert again == first and first["previous"]["language"] == "en"


def test_without_a_key_each_call_writes(shop: Shop) -> None:
    shop.create_ticket("a", "b", customer_id=JANE)
    shop.create_ticket("a", "b", customer_id=JANE)
    assert shop.count("tickets") == 2
    assert shop.count("idempotency_keys") == 0


def test_a_refused_write_records_no_key(shop: Shop) -> None:
    with pytest.raises(ShopError):
        shop.issue_refund(1001, 500, "too much", customer_id=JANE, idempotency_key="k")
    assert shop.lookup_idempotency("k") is None
    assert shop.issue_refund(1001, 50, "right amount", customer_id=JANE, idempotency_key="k")["amount"] == 50.0


def test_lookup_of_an_unknown_key_is_none(shop: Shop) -> None:
    assert shop.lookup_idempotency("never-used") is None


def test_concurrent_retries_with_one_key_write_once(shop: Shop) -> None:
    def refund(_: int) -> dict[str, Any]:
        return shop.issue_refund(1003, 100, "dent", customer_id=JANE, idempotency_key="k")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(refund, range(16)))
    assert all(r == results[0] for r in results)
    assert len(shop.refunds(1003)) == 1


def test_two_shops_on_one_file_share_keys(shop: Shop) -> None:
    with Shop(shop.path) as other:
        first = shop.issue_refund(1001, 20, "broken", customer_id=JANE, idempotency_key="k")
        assert other.issue_refund(1001, 20, "broken", customer_id=JANE, idempotency_key="k") == first
        assert other.lookup_idempotency("k") == first
    assert len(shop.refunds()) == 1
