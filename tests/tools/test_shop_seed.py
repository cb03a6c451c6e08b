"""The seeded back office, and how the file is opened."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tools import Shop

SEEDED_ORDERS = {
    # order id: (customer, status, total, shipped)
    1001: ("cus_jane", "delivered", 120.00, True),
    1002: ("cus_jane", "pending", 45.00, False),
    1003: ("cus_jane", "delivered", 2400.00, True),
    1004: ("cus_jane", "processed", 60.00, False),
    2001: ("cus_omar", "pending", 80.00, False),
}


def test_seeded_customers(shop: Shop) -> None:
    rows = {r["id"]: r for r in shop.db.query("select * from customers")}
    assert set(rows) == {"cus_jane", "cus_omar"}
    jane = rows["cus_jane"]
    assert (jane["name"], jane["email"], jane["zip"], jane["tier"]) == ("Jane Doe", "jane@example.com", "94107", "gold")
    omar = rows["cus_omar"]
    assert (omar["name"], omar["email"], omar["zip"]) == ("Omar Haddad", "omar@example.com", "10001")


@pytest.mark.parametrize("order_id", sorted(SEEDED_ORDERS), ids=str)
def test_seeded_orders(shop: Shop, order_id: int) -> None:
    customer, status, total, shipped = SEEDED_ORDERS[order_id]
    order = shop.order(order_id)
    assert order is not None
    assert (order["customer_id"], order["status"], order["total"], order["shipped"]) == (customer, status, total, shipped)
    assert order["refunded_total"] == 0 and order["discounts"] == []


def test_jane_pays_with_visa_4242(shop: Shop) -> None:
    for order_id in (1001, 1002, 1003):
        order = shop.get_order(order_id, customer_id="cus_jane")
        assert order["payment"] == {"brand": "Visa", "last4": "4242"}
        assert order["card_number"] == "4242424242424242"


def test_money_is_kept_in_cents(shop: Shop) -> None:
    totals = {r["id"]: r["total_cents"] for r in shop.db.query("select id, total_cents from orders")}
    assert totals[1001] == 12000 and totals[1003] == 240000 and totals[2001] == 8000


def test_payment_token_never_leaves_the_shop(shop: Shop) -> None:
    tokens = [r["token"] for r in shop.db.query("select token from payment_methods")]
    assert all(tokens)
    seen = json.dumps([shop.get_order(1001, customer_id="cus_jane"), shop.order(2001)])
    assert not any(token in seen for token in tokens)


def test_seeded_preferences(shop: Shop) -> None:
    assert shop.preferences("cus_jane") == {"email_opt_in": True, "sms_opt_in": False, "language": "en"}
    assert shop.preferences("cus_nobody") == {}


def test_reopening_does_not_seed_again(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite"
    Shop(path).close()
    with Shop(path) as again:
        assert again.count("customers") == 2
        assert again.count("orders") == len(SEEDED_ORDERS)
        assert again.count("payment_methods") == 2


def test_changes_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite"
    with Shop(path) as first:
        first.cancel_order(1002, "changed my mind", customer_id="cus_jane", idempotency_key="k")
    with Shop(path) as second:
        assert second.order(1002)["status"] == "cancelled"  # type: ignore[index]
        assert second.lookup_idempotency("k") == {"order_id": 1002, "status": "cancelled", "previous_status": "pending"}


def test_file_uses_wal(shop: Shop) -> None:
    conn = sqlite3.connect(shop.path)
    try:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_at_home_uses_agent_kit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path / "home"))
    with Shop.at_home() as shop:
        assert shop.path == tmp_path / "home" / "shop.sqlite"
        assert shop.path.exists()
    with Shop.at_home(tmp_path / "other") as shop:
        assert shop.path == tmp_path / "other" / "shop.sqlite"


def test_at_home_defaults_to_dot_agent_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_KIT_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    with Shop.at_home() as shop:
        assert shop.path.resolve() == (tmp_path / ".agent_kit" / "shop.sqlite").resolve()
