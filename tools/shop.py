"""The reference application's system of record: a small retail back office in one SQLite file.

A real deployment would call its CRM, order system and payment provider; this module stands in
for all three so the reference graph, the tests and the demo run offline. It is deliberately a
separate file from agent_kit's own store, as a real CRM would be a separate system.

Every write takes an ``idempotency_key`` and behaves like a payments API: the business row and
the key's record (key, request hash, response) commit in one transaction, so a retried request
returns the original response and never writes twice, and a key reused for a different request
is refused. Back-office rules (ownership, order status, amounts) raise :class:`ShopError` with a
message that names the offending value and says what to do instead.

Money is kept in integer cents; arguments and results use dollars (numbers with 2 decimals).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlite_utils import Database

__all__ = ["ORDER_STATUSES", "Shop", "ShopError"]

ORDER_STATUSES = ("pending", "processed", "delivered", "cancelled")
"""Every status an order can have, in the order an order normally moves through them."""

PRIORITIES = ("low", "normal", "high")
"""Ticket priorities."""

_SCHEMA_VERSION = "1"
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


class ShopError(ValueError):
    """A back-office rule refused the request; the message names the value and the fix."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _dollars(cents: int) -> float:
    return round(cents / 100, 2)


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _to_cents(amount: Any, field: str) -> int:
    """Dollars (a number with at most 2 decimals) to integer cents, refusing anything else."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, Decimal, str)):
        raise ShopError(f"{field} {amount!r} is not a number; give dollars such as 12.50")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ShopError(f"{field} {amount!r} is not a number; give dollars such as 12.50") from None
    if not value.is_finite():
        raise ShopError(f"{field} {amount!r} is not a finite number; give dollars such as 12.50")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ShopError(f"{field} {amount} has more than 2 decimal places; give dollars and cents such as 12.50")
    return int(cents)


def _order_id(value: Any) -> int:
    if isinstance(value, bool):
        raise ShopError(f"order id {value!r} is not an order number; give the number such as 1001")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#"))
    raise ShopError(f"order id {value!r} is not an order number; give the number such as 1001")


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ShopError(f"{field} is empty ({value!r}); give a short non-empty text")
    return value.strip()


def _request_hash(operation: str, request: dict[str, Any]) -> str:
    text = json.dumps({"operation": operation, "request": request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# Seed data: two customers, their cards, addresses, preferences and orders.
_CUSTOMERS = [
    {"id": "cus_jane", "name": "Jane Doe", "email": "jane@example.com", "zip": "94107", "tier": "gold"},
    {"id": "cus_omar", "name": "Omar Haddad", "email": "omar@example.com", "zip": "10001", "tier": "standard"},
]
_PAYMENT_METHODS = [
    {"id": "pm_jane_visa", "customer": "cus_jane", "brand": "Visa", "last4": "4242",
     "card_number": "4242424242424242", "token": "tok_visa_jane_4242"},
    {"id": "pm_omar_mc", "customer": "cus_omar", "brand": "Mastercard", "last4": "4444",
     "card_number": "5555555555554444", "token": "tok_mc_omar_4444"},
]
_ADDRESSES = [
    {"id": 1, "customer": "cus_jane", "label": "home", "line1": "500 Market St", "city": "San Francisco", "zip": "94107"},
    {"id": 2, "customer": "cus_omar", "label": "home", "line1": "350 5th Ave", "city": "New York", "zip": "10001"},
]
_JANE_HOME = {"ship_line1": "500 Market St", "ship_city": "San Francisco", "ship_zip": "94107"}
_OMAR_HOME = {"ship_line1": "350 5th Ave", "ship_city": "New York", "ship_zip": "10001"}
_ORDERS = [
    {"id": 1001, "customer": "cus_jane", "status": "delivered", "shipped": 1, "payment_method": "pm_jane_visa",
     "items": [{"sku": "HP-200", "name": "Wireless headphones", "qty": 1, "price": 120.00}],
     "total_cents": 12000, **_JANE_HOME},
    {"id": 1002, "customer": "cus_jane", "status": "pending", "shipped": 0, "payment_method": "pm_jane_visa",
     "items": [{"sku": "PC-010", "name": "Phone case", "qty": 1, "price": 45.00}],
     "total_cents": 4500, **_JANE_HOME},
    {"id": 1003, "customer": "cus_jane", "status": "delivered", "shipped": 1, "payment_method": "pm_jane_visa",
     "items": [{"sku": "LT-900", "name": "Laptop", "qty": 1, "price": 2400.00}],
     "total_cents": 240000, **_JANE_HOME},
    {"id": 1004, "customer": "cus_jane", "status": "processed", "shipped": 0, "payment_method": "pm_jane_visa",
     "items": [{"sku": "DL-030", "name": "Desk lamp", "qty": 2, "price": 30.00}],
     "total_cents": 6000, **_JANE_HOME},
    {"id": 2001, "customer": "cus_omar", "status": "pending", "shipped": 0, "payment_method": "pm_omar_mc",
     "items": [{"sku": "RS-420", "name": "Running shoes", "qty": 1, "price": 80.00}],
     "total_cents": 8000, **_OMAR_HOME},
]


class Shop:
    """The back office: customers, orders, payments, refunds, discounts, tickets and drafts.

    Open one with ``Shop(path)`` or ``Shop.at_home()``; the file is created and seeded on first
    use. Safe to share across threads (one lock around one connection) and across processes
    (WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for every write).
    """

    path: Path
    """The SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection in autocommit mode: transactions are begun explicitly, so a write and
        # its idempotency record can never be split by the driver's implicit commits.
        conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        self._lock = threading.RLock()
        self.db = Database(conn, execute_plugins=False)
        self._enable_wal()
        self._create_and_seed()

    @classmethod
    def at_home(cls, home: str | Path | None = None) -> Shop:
        """Open ``shop.sqlite`` in the agent_kit home (``home``, else ``$AGENT_KIT_HOME``, else ``./.agent_kit``)."""
        folder = Path(home if home is not None else os.environ.get("AGENT_KIT_HOME") or "./.agent_kit")
        return cls(folder / "shop.sqlite")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Shop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Shop({str(self.path)!r})"

    # -- set-up -----------------------------------------------------------------------------

    def _enable_wal(self) -> None:
        # Switching to WAL needs a moment of exclusive access; a second process opening the same
        # fresh file can hold it briefly, so retry for a bounded time before giving up.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.db.conn.execute("PRAGMA journal_mode = wal")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _transaction(self) -> Iterator[Database]:
        """One write transaction, taken with BEGIN IMMEDIATE so concurrent writers serialize."""
        with self._lock:
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise
            else:
                self.db.conn.execute("COMMIT")

    def _create_and_seed(self) -> None:
        # Tables and seed rows are made in one transaction guarded by a meta row: whichever
        # process gets the write lock first seeds; the other finds the row and does nothing.
        with self._transaction() as db:
            db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            if db["meta"].count_where("key = 'seeded_at'"):
                return
            self._create_tables(db)
            db["customers"].insert_all([{**c, "created_at": _now()} for c in _CUSTOMERS])
            db["payment_methods"].insert_all(_PAYMENT_METHODS)
            db["addresses"].insert_all(_ADDRESSES)
            now = _now()
            db["orders"].insert_all(
                [{**o, "items": json.dumps(o["items"]), "previous_status": None, "created_at": now, "updated_at": now}
                 for o in _ORDERS]
            )
            db["preferences"].insert_all(
                [{"customer": c["id"], "email_opt_in": 1, "sms_opt_in": 0, "language": "en", "updated_at": now}
                 for c in _CUSTOMERS]
            )
            db["meta"].insert_all([{"key": "schema_version", "value": _SCHEMA_VERSION}, {"key": "seeded_at", "value": now}])

    @staticmethod
    def _create_tables(db: Database) -> None:
        db["customers"].create(
            {"id": str, "name": str, "email": str, "zip": str, "tier": str, "created_at": str},
            pk="id", not_null={"name", "email"}, if_not_exists=True,
        )
        db["customers"].create_index(["email"], unique=True, if_not_exists=True)
        db["payment_methods"].create(
            {"id": str, "customer": str, "brand": str, "last4": str, "card_number": str, "token": str},
            pk="id", foreign_keys=[("customer", "customers", "id")], if_not_exists=True,
        )
        db["addresses"].create(
            {"id": int, "customer": str, "label": str, "line1": str, "city": str, "zip": str},
            pk="id", foreign_keys=[("customer", "customers", "id")], if_not_exists=True,
        )
        db["orders"].create(
            {"id": int, "customer": str, "status": str, "previous_status": str, "items": str, "total_cents": int,
             "payment_method": str, "ship_line1": str, "ship_city": str, "ship_zip": str, "shipped": int,
             "created_at": str, "updated_at": str},
            pk="id", not_null={"customer", "status", "total_cents"},
            foreign_keys=[("customer", "customers", "id"), ("payment_method", "payment_methods", "id")],
            if_not_exists=True,
        )
        db["refunds"].create(
            {"id": int, "order_id": int, "customer": str, "amount_cents": int, "reason": str, "status": str,
             "created_at": str, "reversed_at": str},
            pk="id", foreign_keys=[("order_id", "orders", "id")], if_not_exists=True,
        )
        db["discounts"].create(
            {"id": int, "order_id": int, "customer": str, "percent": float, "reason": str, "status": str,
             "created_at": str, "removed_at": str},
            pk="id", foreign_keys=[("order_id", "orders", "id")], if_not_exists=True,
        )
        db["tickets"].create(
            {"id": int, "customer": str, "order_id": int, "subject": str, "body": str, "priority": str,
             "status": str, "escalated": int, "created_at": str},
            pk="id", if_not_exists=True,
        )
        db["preferences"].create(
            {"customer": str, "email_opt_in": int, "sms_opt_in": int, "language": str, "updated_at": str},
            pk="customer", foreign_keys=[("customer", "customers", "id")], if_not_exists=True,
        )
        db["drafts"].create(
            {"id": int, "customer": str, "subject": str, "body": str, "status": str, "created_at": str},
            pk="id", if_not_exists=True,
        )
        db["recommendations"].create(
            {"id": int, "customer": str, "order_id": int, "resolution": str, "note": str, "created_at": str},
            pk="id", if_not_exists=True,
        )
        db["idempotency_keys"].create(
            {"key": str, "operation": str, "request_hash": str, "response": str, "created_at": str},
            pk="key", if_not_exists=True,
        )

    # -- the idempotent write path ----------------------------------------------------------

    def _write(
        self,
        operation: str,
        idempotency_key: str | None,
        request: dict[str, Any],
        apply: Callable[[Database], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``apply`` and record its response under ``idempotency_key`` in one transaction.

        Without a key the write simply runs (as a call made by hand would); with one, a repeat of
        the same request returns the recorded response and writes nothing.
        """
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key.strip()):
            raise ShopError(f"idempotency key {idempotency_key!r} is empty; give a non-empty string or None")
        request_hash = _request_hash(operation, request)
        with self._transaction() as db:
            if idempotency_key is not None:
                rows = list(db.query("select * from idempotency_keys where key = ?", [idempotency_key]))
                if rows:
                    if rows[0]["request_hash"] != request_hash:
                        raise ShopError(
                            f"idempotency key {idempotency_key!r} was already used for a different request "
                            f"({rows[0]['operation']}); use a new key for a new request"
                        )
                    response: dict[str, Any] = json.loads(rows[0]["response"])
                    return response
            response = apply(db)
            if idempotency_key is not None:
                db["idempotency_keys"].insert(
                    {"key": idempotency_key, "operation": operation, "request_hash": request_hash,
                     "response": json.dumps(response), "created_at": _now()}
                )
            return response

    def lookup_idempotency(self, key: str) -> dict[str, Any] | None:
        """The response recorded for ``key``, or None if no write with that key ever committed.

        Used to reconcile a call whose outcome is unknown after a crash: a recorded response means
        the write happened exactly once; None means it never did and is safe to run.
        """
        with self._lock:
            rows = list(self.db.query("select response from idempotency_keys where key = ?", [key]))
        return json.loads(rows[0]["response"]) if rows else None

    # -- rule helpers -------------------------------------------------------------------------

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def _order_row(self, order_id: Any) -> dict[str, Any]:
        oid = _order_id(order_id)
        row = self._one("select * from orders where id = ?", [oid])
        if row is None:
            raise ShopError(f"order {oid} does not exist; check the order number")
        return row

    def _owned_order(self, order_id: Any, customer_id: str | None, *, required: bool = True) -> dict[str, Any]:
        """The order, if the acting customer owns it.

        ``required=False`` is the staff path (compensations, escalations): without a customer the
        order is not scoped; with one, ownership is still enforced.
        """
        if customer_id is None and required:
            raise ShopError(
                f"no verified customer for order {order_id}: verify the customer (verify_customer) first"
            )
        order = self._order_row(order_id)
        if customer_id is not None and order["customer"] != customer_id:
            raise ShopError(
                f"order {order['id']} does not belong to this customer; only the verified customer's own "
                "orders can be viewed or changed"
            )
        return order

    def _customer(self, customer_id: str | None, *, required: bool = True) -> dict[str, Any] | None:
        if customer_id is None:
            if required:
                raise ShopError("no verified customer for this conversation: verify the customer (verify_customer) first")
            return None
        row = self._one("select * from customers where id = ?", [customer_id])
        if row is None:
            raise ShopError(f"customer {customer_id!r} does not exist; verify the customer again")
        return row

    def _refunded_cents(self, order_id: int) -> int:
        row = self._one(
            "select coalesce(sum(amount_cents), 0) as total from refunds where order_id = ? and status = 'issued'",
            [order_id],
        )
        return int(row["total"]) if row else 0

    def _active_discounts(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(
                "select * from discounts where order_id = ? and status = 'active' order by id", [order_id]
            ))

    @staticmethod
    def _discount_cents(total_cents: int, percents: list[float]) -> int:
        return sum(
            int((Decimal(total_cents) * Decimal(str(p)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            for p in percents
        )

    def _paid_cents(self, order: dict[str, Any]) -> int:
        """What the customer paid: the total less active discounts."""
        percents = [d["percent"] for d in self._active_discounts(order["id"])]
        return order["total_cents"] - self._discount_cents(order["total_cents"], percents)

    @staticmethod
    def _address(line1: Any, city: Any, zip: Any) -> dict[str, str]:
        address = {"line1": _text(line1, "line1"), "city": _text(city, "city"), "zip": str(zip).strip()}
        if not _ZIP.match(address["zip"]):
            raise ShopError(f"zip {zip!r} is not a valid ZIP code; use 5 digits such as 94107")
        return address

    @staticmethod
    def _shipping(order: dict[str, Any]) -> dict[str, str]:
        return {"line1": order["ship_line1"], "city": order["ship_city"], "zip": order["ship_zip"]}

    # -- reads --------------------------------------------------------------------------------

    def verify_customer(self, email: str | None = None, name: str | None = None, zip: str | None = None) -> dict[str, Any]:
        """Match a customer by email plus name or ZIP (or by name plus ZIP). No side effects."""
        given = {k: v.strip() for k, v in {"email": email, "name": name, "zip": zip}.items() if isinstance(v, str) and v.strip()}
        if len(given) < 2:
            # One detail is not proof: an email address is easy to know. Two must match.
            return {"verified": False, "customer_id": None, "name": None,
                    "reason": "give the account email with your full name or the ZIP code on file, "
                              "or your full name and the ZIP code"}
        with self._lock:
            customers = list(self.db.query("select * from customers"))
        for customer in customers:
            matched = [
                field for field, value in given.items()
                if (field == "zip" and value == customer["zip"])
                or (field != "zip" and value.casefold() == str(customer[field]).casefold())
            ]
            if len(matched) == len(given):
                return {"verified": True, "customer_id": customer["id"], "name": customer["name"],
                        "reason": f"{' and '.join(matched)} match the account on file"}
        return {"verified": False, "customer_id": None, "name": None,
                "reason": "the details given do not match an account on file; check them and try again"}

    def _order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        payment = self._one("select * from payment_methods where id = ?", [order["payment_method"]]) or {}
        customer = self._one("select email from customers where id = ?", [order["customer"]]) or {}
        return {
            "order_id": order["id"],
            "status": order["status"],
            "shipped": bool(order["shipped"]),
            "items": json.loads(order["items"]),
            "total": _dollars(order["total_cents"]),
            "payment": {"brand": payment.get("brand"), "last4": payment.get("last4")},
            # The full number is part of the record on purpose: the policy's visibility filter
            # must hide it from the model, and tests show that it does.
            "card_number": payment.get("card_number"),
            "customer_email": customer.get("email"),
            "shipping_address": self._shipping(order),
            "refunded_total": _dollars(self._refunded_cents(order["id"])),
            "discounts": [
                {"discount_id": d["id"], "percent": d["percent"], "reason": d["reason"]}
                for d in self._active_discounts(order["id"])
            ],
        }

    def get_order(self, order_id: int, *, customer_id: str | None) -> dict[str, Any]:
        """One of the acting customer's orders, with payment, address, refunds and discounts."""
        return self._order_view(self._owned_order(order_id, customer_id))

    # -- writes -------------------------------------------------------------------------------

    def recommend_resolution(
        self, order_id: int, resolution: str, note: str = "", *,
        customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Record a recommended resolution for a person to act on; changes nothing else."""
        order = self._owned_order(order_id, customer_id, required=False)
        resolution = _text(resolution, "resolution")
        note = note.strip() if isinstance(note, str) else ""

        def apply(db: Database) -> dict[str, Any]:
            rid = db["recommendations"].insert(
                {"customer": customer_id, "order_id": order["id"], "resolution": resolution, "note": note,
                 "created_at": _now()}
            ).last_pk
            return {"recommendation_id": rid, "order_id": order["id"], "customer_id": customer_id,
                    "resolution": resolution, "note": note, "status": "recorded"}

        request = {"customer_id": customer_id, "order_id": order["id"], "resolution": resolution, "note": note}
        return self._write("recommend_resolution", idempotency_key, request, apply)

    def draft_reply(
        self, subject: str, body: str, *, customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Save a reply as a draft (status ``draft``); nothing is ever sent from here."""
        subject, body = _text(subject, "subject"), _text(body, "body")
        self._customer(customer_id, required=False)

        def apply(db: Database) -> dict[str, Any]:
            did = db["drafts"].insert(
                {"customer": customer_id, "subject": subject, "body": body, "status": "draft", "created_at": _now()}
            ).last_pk
            return {"draft_id": did, "customer_id": customer_id, "subject": subject, "body": body, "status": "draft"}

        request = {"customer_id": customer_id, "subject": subject, "body": body}
        return self._write("draft_reply", idempotency_key, request, apply)

    def update_preferences(
        self, *, email_opt_in: bool | None = None, sms_opt_in: bool | None = None, language: str | None = None,
        customer_id: str | None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Change the customer's contact preferences; returns the new and the previous values."""
        self._customer(customer_id)
        changes: dict[str, Any] = {}
        for field, value in (("email_opt_in", email_opt_in), ("sms_opt_in", sms_opt_in)):
            if value is not None:
                if not isinstance(value, bool):
                    raise ShopError(f"{field} {value!r} is not true or false; give true or false")
                changes[field] = int(value)
        if language is not None:
            if not isinstance(language, str) or not _LANGUAGE.match(language.strip()):
                raise ShopError(f"language {language!r} is not a language code; use a code such as 'en' or 'es'")
            changes["language"] = language.strip()
        if not changes:
            raise ShopError("nothing to update: give email_opt_in, sms_opt_in or language")

        def apply(db: Database) -> dict[str, Any]:
            previous = self._preferences_of(customer_id) or {"email_opt_in": True, "sms_opt_in": False, "language": "en"}
            row = {"email_opt_in": int(previous["email_opt_in"]), "sms_opt_in": int(previous["sms_opt_in"]),
                   "language": previous["language"]}
            db["preferences"].upsert({"customer": customer_id, **row, **changes, "updated_at": _now()}, pk="customer")
            return {"customer_id": customer_id, "preferences": self._preferences_of(customer_id), "previous": previous}

        request = {"customer_id": customer_id, **changes}
        return self._write("update_preferences", idempotency_key, request, apply)

    def create_ticket(
        self, subject: str, body: str, priority: str = "normal", *, customer_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Open a support ticket for a person to handle."""
        return self._open_ticket("create_ticket", subject, body, priority, customer_id=customer_id,
                                 idempotency_key=idempotency_key)

    def escalate(
        self, reason: str, *, topic: str = "request_human", order_id: int | None = None,
        customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Open a high-priority ticket marked escalated, for a person to take over.

        ``topic`` is ``request_human`` or ``dispute_payment`` (which needs ``order_id``).
        """
        reason = _text(reason, "reason")
        if topic == "dispute_payment":
            subject = f"Payment dispute on order {_order_id(order_id)}"
        elif topic == "request_human":
            subject = "Customer asked for a person"
        else:
            raise ShopError(f"escalation topic {topic!r} is unknown; use request_human or dispute_payment")
        return self._open_ticket(topic, subject, reason, "high", customer_id=customer_id,
                                 idempotency_key=idempotency_key, order_id=order_id, escalated=True)

    def _open_ticket(
        self, operation: str, subject: str, body: str, priority: str, *, customer_id: str | None,
        idempotency_key: str | None, order_id: int | None = None, escalated: bool = False,
    ) -> dict[str, Any]:
        subject, body = _text(subject, "subject"), _text(body, "body")
        if priority not in PRIORITIES:
            raise ShopError(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}; pick one of them")
        self._customer(customer_id, required=False)
        oid = self._owned_order(order_id, customer_id, required=False)["id"] if order_id is not None else None

        def apply(db: Database) -> dict[str, Any]:
            tid = db["tickets"].insert(
                {"customer": customer_id, "order_id": oid, "subject": subject, "body": body, "priority": priority,
                 "status": "open", "escalated": int(escalated), "created_at": _now()}
            ).last_pk
            return {"ticket_id": tid, "customer_id": customer_id, "order_id": oid, "subject": subject,
                    "priority": priority, "status": "open", "escalated": escalated}

        request = {"customer_id": customer_id, "order_id": oid, "subject": subject, "body": body,
                   "priority": priority, "escalated": escalated}
        return self._write(operation, idempotency_key, request, apply)

    def issue_refund(
        self, order_id: int, amount: float, reason: str, *,
        customer_id: str | None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Refund part or all of a processed or delivered order to its original payment method."""
        cents = _to_cents(amount, "refund amount")
        if cents <= 0:
            raise ShopError(f"refund amount must be greater than 0 (got {amount}); give a positive dollar amount")
        reason = _text(reason, "reason")
        order = self._owned_order(order_id, customer_id)
        request = {"customer_id": customer_id, "order_id": order["id"], "amount_cents": cents, "reason": reason}

        def apply(db: Database) -> dict[str, Any]:
            current = self._order_row(order["id"])  # re-read inside the write lock
            if current["status"] not in ("processed", "delivered"):
                hint = " (cancel a pending order instead)" if current["status"] == "pending" else ""
                raise ShopError(
                    f"order {current['id']} is {current['status']}; refunds are only for processed or "
                    f"delivered orders{hint}"
                )
            paid, refunded = self._paid_cents(current), self._refunded_cents(current["id"])
            if refunded + cents > paid:
                raise ShopError(
                    f"refund of {_money(cents)} would bring the total refunded on order {current['id']} to "
                    f"{_money(refunded + cents)}, above the {_money(paid)} paid; at most "
                    f"{_money(max(paid - refunded, 0))} can still be refunded"
                )
            rid = db["refunds"].insert(
                {"order_id": current["id"], "customer": current["customer"], "amount_cents": cents, "reason": reason,
                 "status": "issued", "created_at": _now(), "reversed_at": None}
            ).last_pk
            return {"refund_id": rid, "order_id": current["id"], "amount": _dollars(cents), "status": "issued"}

        return self._write("issue_refund", idempotency_key, request, apply)

    def apply_discount(
        self, order_id: int, percent: float, reason: str, *,
        customer_id: str | None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Take a percentage off an order that is not cancelled."""
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not math.isfinite(percent) \
                or not 0 < percent <= 100:
            raise ShopError(
                f"discount percent must be above 0 and at most 100 (got {percent!r}); give a percentage such as 10"
            )
        percent = float(percent)
        reason = _text(reason, "reason")
        order = self._owned_order(order_id, customer_id)
        request = {"customer_id": customer_id, "order_id": order["id"], "percent": percent, "reason": reason}

        def apply(db: Database) -> dict[str, Any]:
            current = self._order_row(order["id"])
            if current["status"] == "cancelled":
                raise ShopError(
                    f"order {current['id']} is cancelled; discounts apply only to pending, processed or delivered orders"
                )
            percents = [d["percent"] for d in self._active_discounts(current["id"])]
            if sum(percents) + percent > 100:
                raise ShopError(
                    f"order {current['id']} already has {sum(percents):g}% off; at most {100 - sum(percents):g}% more "
                    f"can be applied (asked for {percent:g}%)"
                )
            paid_after = current["total_cents"] - self._discount_cents(current["total_cents"], [*percents, percent])
            refunded = self._refunded_cents(current["id"])
            if paid_after < refunded:
                raise ShopError(
                    f"a {percent:g}% discount would bring what was paid for order {current['id']} to "
                    f"{_money(paid_after)}, below the {_money(refunded)} already refunded; give a smaller percent"
                )
            did = db["discounts"].insert(
                {"order_id": current["id"], "customer": current["customer"], "percent": percent, "reason": reason,
                 "status": "active", "created_at": _now(), "removed_at": None}
            ).last_pk
            return {"discount_id": did, "order_id": current["id"], "percent": percent, "status": "active"}

        return self._write("apply_discount", idempotency_key, request, apply)

    def _set_address(
        self, operation: str, order_id: int, line1: str, city: str, zip: str,
        customer_id: str | None, idempotency_key: str | None, *, restoring: bool,
    ) -> dict[str, Any]:
        address = self._address(line1, city, zip)
        order = self._owned_order(order_id, customer_id, required=not restoring)
        request = {"customer_id": customer_id, "order_id": order["id"], **address}

        def apply(db: Database) -> dict[str, Any]:
            current = self._order_row(order["id"])
            if current["shipped"] or current["status"] == "delivered":
                raise ShopError(
                    f"order {current['id']} has already shipped; the shipping address can only change before shipping"
                )
            if current["status"] == "cancelled" and not restoring:
                raise ShopError(f"order {current['id']} is cancelled; there is no shipment to redirect")
            previous = self._shipping(current)
            db["orders"].update(
                current["id"],
                {"ship_line1": address["line1"], "ship_city": address["city"], "ship_zip": address["zip"],
                 "updated_at": _now()},
            )
            return {"order_id": current["id"], "address": address, "previous": previous}

        return self._write(operation, idempotency_key, request, apply)

    def change_address(
        self, order_id: int, line1: str, city: str, zip: str, *,
        customer_id: str | None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Change where an order that has not shipped yet will be sent."""
        return self._set_address("change_address", order_id, line1, city, zip, customer_id, idempotency_key,
                                 restoring=False)

    def cancel_order(
        self, order_id: int, reason: str, *, customer_id: str | None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Cancel a pending or processed order that has not shipped."""
        reason = _text(reason, "reason")
        order = self._owned_order(order_id, customer_id)
        request = {"customer_id": customer_id, "order_id": order["id"], "reason": reason}

        def apply(db: Database) -> dict[str, Any]:
            current = self._order_row(order["id"])
            if current["status"] not in ("pending", "processed"):
                raise ShopError(
                    f"order {current['id']} is {current['status']}; only pending or processed orders that have not "
                    "shipped can be cancelled (for a delivered order, offer a return or refund instead)"
                )
            if current["shipped"]:
                raise ShopError(f"order {current['id']} has already shipped; it can no longer be cancelled")
            db["orders"].update(
                current["id"], {"status": "cancelled", "previous_status": current["status"], "updated_at": _now()}
            )
            return {"order_id": current["id"], "status": "cancelled", "previous_status": current["status"]}

        return self._write("cancel_order", idempotency_key, request, apply)

    # -- compensations (the staff path: customer_id is optional, ownership checked when given) --

    def reverse_refund(
        self, refund_id: int, *, customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Undo an issued refund (marks it reversed); the compensation of ``issue_refund``."""
        refund = self._one("select * from refunds where id = ?", [refund_id])
        if refund is None:
            raise ShopError(f"refund {refund_id} does not exist; check the refund id")
        self._owned_order(refund["order_id"], customer_id, required=False)

        def apply(db: Database) -> dict[str, Any]:
            current = self._one("select * from refunds where id = ?", [refund_id])
            assert current is not None
            if current["status"] != "issued":
                raise ShopError(f"refund {refund_id} is already {current['status']}; there is nothing to reverse")
            db["refunds"].update(refund_id, {"status": "reversed", "reversed_at": _now()})
            return {"refund_id": refund_id, "order_id": current["order_id"], "amount": _dollars(current["amount_cents"]),
                    "status": "reversed"}

        return self._write("reverse_refund", idempotency_key, {"customer_id": customer_id, "refund_id": refund_id}, apply)

    def remove_discount(
        self, discount_id: int, *, customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Take an applied discount off its order; the compensation of ``apply_discount``."""
        discount = self._one("select * from discounts where id = ?", [discount_id])
        if discount is None:
            raise ShopError(f"discount {discount_id} does not exist; check the discount id")
        self._owned_order(discount["order_id"], customer_id, required=False)

        def apply(db: Database) -> dict[str, Any]:
            current = self._one("select * from discounts where id = ?", [discount_id])
            assert current is not None
            if current["status"] != "active":
                raise ShopError(f"discount {discount_id} is already {current['status']}; there is nothing to remove")
            db["discounts"].update(discount_id, {"status": "removed", "removed_at": _now()})
            return {"discount_id": discount_id, "order_id": current["order_id"], "percent": current["percent"],
                    "status": "removed"}

        return self._write("remove_discount", idempotency_key, {"customer_id": customer_id, "discount_id": discount_id},
                           apply)

    def restore_address(
        self, order_id: int, line1: str, city: str, zip: str, *,
        customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Put back an order's previous shipping address; the compensation of ``change_address``."""
        return self._set_address("restore_address", order_id, line1, city, zip, customer_id, idempotency_key,
                                 restoring=True)

    def reinstate_order(
        self, order_id: int, *, customer_id: str | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Return a cancelled order to the status it had, while it has not shipped."""
        order = self._owned_order(order_id, customer_id, required=False)

        def apply(db: Database) -> dict[str, Any]:
            current = self._order_row(order["id"])
            if current["status"] != "cancelled":
                raise ShopError(f"order {current['id']} is {current['status']}, not cancelled; there is nothing to reinstate")
            if current["shipped"]:
                raise ShopError(
                    f"order {current['id']} has shipped since it was cancelled; it cannot be reinstated "
                    "(open a ticket so a person can sort it out)"
                )
            restored = current["previous_status"] or "pending"
            db["orders"].update(current["id"], {"status": restored, "previous_status": None, "updated_at": _now()})
            return {"order_id": current["id"], "status": restored, "previous_status": "cancelled"}

        return self._write("reinstate_order", idempotency_key, {"customer_id": customer_id, "order_id": order["id"]},
                           apply)

    def mark_shipped(self, order_id: int) -> None:
        """The warehouse's signal that an order left the building.

        It does not check the status on purpose: a parcel can leave before a cancellation reaches
        the warehouse, and the back office must then refuse to reinstate or redirect it.
        """
        order = self._order_row(order_id)
        with self._transaction() as db:
            db["orders"].update(order["id"], {"shipped": 1, "updated_at": _now()})

    # -- queries for tests, the demo and operators ----------------------------------------------

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params or []))

    def order(self, order_id: int) -> dict[str, Any] | None:
        """An order as the back office sees it (unscoped), or None if there is no such order."""
        try:
            row = self._order_row(order_id)
        except ShopError:
            return None
        return {**self._order_view(row), "customer_id": row["customer"], "previous_status": row["previous_status"],
                "paid": _dollars(self._paid_cents(row))}

    def refunds(self, order_id: int | None = None) -> list[dict[str, Any]]:
        """Every refund (issued or reversed), oldest first, optionally for one order."""
        where, params = ("where order_id = ?", [order_id]) if order_id is not None else ("", [])
        return [
            {"refund_id": r["id"], "order_id": r["order_id"], "customer_id": r["customer"],
             "amount": _dollars(r["amount_cents"]), "reason": r["reason"], "status": r["status"],
             "created_at": r["created_at"], "reversed_at": r["reversed_at"]}
            for r in self._rows(f"select * from refunds {where} order by id", params)
        ]

    def discounts(self) -> list[dict[str, Any]]:
        """Every discount (active or removed), oldest first."""
        return [
            {"discount_id": d["id"], "order_id": d["order_id"], "customer_id": d["customer"], "percent": d["percent"],
             "reason": d["reason"], "status": d["status"], "created_at": d["created_at"], "removed_at": d["removed_at"]}
            for d in self._rows("select * from discounts order by id")
        ]

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket, oldest first."""
        return [
            {"ticket_id": t["id"], "customer_id": t["customer"], "order_id": t["order_id"], "subject": t["subject"],
             "body": t["body"], "priority": t["priority"], "status": t["status"], "escalated": bool(t["escalated"]),
             "created_at": t["created_at"]}
            for t in self._rows("select * from tickets order by id")
        ]

    def drafts(self) -> list[dict[str, Any]]:
        """Every saved draft, oldest first."""
        return [
            {"draft_id": d["id"], "customer_id": d["customer"], "subject": d["subject"], "body": d["body"],
             "status": d["status"], "created_at": d["created_at"]}
            for d in self._rows("select * from drafts order by id")
        ]

    def recommendations(self) -> list[dict[str, Any]]:
        """Every recorded recommendation, oldest first."""
        return [
            {"recommendation_id": r["id"], "customer_id": r["customer"], "order_id": r["order_id"],
             "resolution": r["resolution"], "note": r["note"], "created_at": r["created_at"]}
            for r in self._rows("select * from recommendations order by id")
        ]

    def _preferences_of(self, customer_id: str | None) -> dict[str, Any]:
        row = self._one("select * from preferences where customer = ?", [customer_id])
        if row is None:
            return {}
        return {"email_opt_in": bool(row["email_opt_in"]), "sms_opt_in": bool(row["sms_opt_in"]),
                "language": row["language"]}

    def preferences(self, customer_id: str) -> dict[str, Any]:
        """A customer's contact preferences ({} for an unknown customer)."""
        return self._preferences_of(customer_id)

    def count(self, table: str) -> int:
        """Rows in one of the shop's tables (for tests that assert nothing else was written)."""
        with self._lock:
            if table not in self.db.table_names():
                raise ShopError(f"table {table!r} does not exist; use one of {', '.join(sorted(self.db.table_names()))}")
            return self.db[table].count
