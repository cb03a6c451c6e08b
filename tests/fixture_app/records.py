"""The fixture app's system of record: one SQLite file in the test's home.

Every write commits its idempotency key in the same transaction as its business row, so the
crash tests can count effects two ways (keys and rows) and a repeated key returns the first
result instead of writing again.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FILE = "records.sqlite"

_SCHEMA = """
create table if not exists customers (id text primary key, name text, email text, zip text, emails int default 1);
create table if not exists orders (id integer primary key, customer_id text, total real, status text, address text);
create table if not exists refunds (id integer primary key, order_id int, amount real, status text default 'issued');
create table if not exists discounts (id integer primary key, order_id int, percent real);
create table if not exists tickets (id integer primary key, customer_id text, subject text);
create table if not exists drafts (id integer primary key, text text);
create table if not exists effects (key text primary key, operation text, result text);
"""
_SEED_CUSTOMERS = [("cus_jane", "Jane Doe", "jane@example.com", "94107"),
                   ("cus_omar", "Omar Haddad", "omar@example.com", "10001")]
_SEED_ORDERS = [(1001, "cus_jane", 120.0, "delivered", "500 Market St"),
                (1002, "cus_jane", 45.0, "pending", "500 Market St"),
                (2001, "cus_omar", 80.0, "pending", "9 Elm St")]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ZIP = re.compile(r"\b\d{5}\b")
_NAME = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")


def identity_details(text: str) -> dict[str, str]:
    """The email, zip code and full name a message gives (only those it gives)."""
    found = {"email": _EMAIL.search(text), "zip": _ZIP.search(text), "name": _NAME.search(text)}
    return {k: m.group(0) for k, m in found.items() if m}


class Records:
    """Customers, orders and what was done to them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            if db.execute("select count(*) from customers").fetchone()[0] == 0:
                db.executemany("insert into customers (id, name, email, zip) values (?, ?, ?, ?)", _SEED_CUSTOMERS)
                db.executemany("insert into orders values (?, ?, ?, ?, ?)", _SEED_ORDERS)

    @classmethod
    def at_home(cls, home: str | Path) -> Records:
        return cls(Path(home) / FILE)

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("begin immediate")
            yield db
            db.execute("commit")
        except BaseException:
            if db.in_transaction:
                db.execute("rollback")
            raise
        finally:
            db.close()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.path, timeout=60)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, params)]
        finally:
            db.close()

    def write(self, operation: str, key: str | None, change: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``change`` once per ``key``: its row and the key commit together; a known key
        returns the result recorded with it."""
        with self._tx() as db:
            if key is not None:
                done = db.execute("select result from effects where key = ?", (key,)).fetchone()
                if done is not None:
                    return json.loads(done[0])
            result = change(db)
            if key is not None:
                db.execute("insert into effects values (?, ?, ?)", (key, operation, json.dumps(result)))
            return result

    # -- reads ----------------------------------------------------------------------------------
    def find_customer(self, **given: str | None) -> dict[str, Any] | None:
        """The customer at least two of the given details (email, name, zip) belong to."""
        details = {k: str(v).strip().lower() for k, v in given.items() if v}
        for c in self._rows("select * from customers"):
            if sum(1 for k, v in details.items() if str(c[k]).lower() == v) >= 2:
                return c
        return None

    def order(self, order_id: int) -> dict[str, Any] | None:
        rows = self._rows("select * from orders where id = ?", (order_id,))
        return rows[0] if rows else None

    def refunds(self, order_id: int | None = None) -> list[dict[str, Any]]:
        if order_id is None:
            return self._rows("select * from refunds order by id")
        return self._rows("select * from refunds where order_id = ? order by id", (order_id,))

    def discounts(self) -> list[dict[str, Any]]:
        return self._rows("select * from discounts order by id")

    def tickets(self) -> list[dict[str, Any]]:
        return self._rows("select * from tickets order by id")

    def emails_allowed(self, customer_id: str) -> bool:
        return bool(self._rows("select emails from customers where id = ?", (customer_id,))[0]["emails"])

    def effects(self, operation: str | None = None) -> dict[str, str]:
        """Idempotency key -> operation of every committed write (of ``operation`` only, if given)."""
        rows = self._rows("select key, operation from effects order by rowid")
        return {r["key"]: r["operation"] for r in rows if operation in (None, r["operation"])}

    def add_orders(self, first: int, count: int, *, customer_id: str, total: float) -> None:
        with self._tx() as db:
            db.executemany("insert into orders values (?, ?, ?, 'delivered', '1 Test Rd')",
                           [(first + i, customer_id, total) for i in range(count)])
