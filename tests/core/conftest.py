"""A tiny payments back office for library tests: its own SQLite file, so effects are real rows."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.tools import InjectedToolArg, tool

from agent_kit import AgentRuntime, Compensation, Mode, Policy, create_permissioned_agent, register
from agent_kit.store import Store
from agent_kit.testing import ScriptedChatModel

POLICY: dict[str, Any] = {
    "version": 1,
    "approvers": {"lee": ["lead"], "sam": ["lead"], "morgan": ["boss"]},
    "roles": {"boss": ["lead"]},
    "defaults": {"max_strikes": 3},
    "escalation": {"receivers": ["boss"]},
    "rules": [{"id": "angry", "when": {"context.sentiment": "angry"}, "mode": "escalate"}],
    "tools": {
        "lookup": {"mode": "read_only", "visible_fields": ["account", "balance"]},
        "pay": {
            "mode": "execute_limited",
            "rollback": {"role": "lead"},
            "rules": [
                {"id": "pay_over_10", "when": {"args.amount": {"gt": 10}}, "approval": {"role": "lead"}},
                {"id": "pay_over_100", "when": {"args.amount": {"gt": 100}}, "approval": {"role": "lead", "count": 2}},
                {"id": "pay_over_1000", "when": {"args.amount": {"gt": 1000}}, "mode": "escalate"},
            ],
        },
        "close_account": {"mode": "execute_limited", "rules": [{"id": "close_needs_boss", "approval": {"role": "boss"}}]},
        "unpay": {"mode": "execute_limited"},
        "suggest": {"mode": "recommend_only"},
        "note": {"mode": "draft_only"},
    },
}


class Bank:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute("create table if not exists payments (id integer primary key, key text unique, to_ text, amount real, reversed int default 0)")
            db.execute("create table if not exists closed (account text primary key)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def pay(self, to: str, amount: float, key: str | None) -> dict[str, Any]:
        with self._db() as db:
            row = db.execute("select id from payments where key = ?", (key,)).fetchone()
            if row is None:
                cur = db.execute("insert into payments (key, to_, amount) values (?, ?, ?)", (key, to, amount))
                return {"payment_id": cur.lastrowid, "to": to, "amount": amount}
            return {"payment_id": row[0], "to": to, "amount": amount}

    def payments(self) -> list[tuple[Any, ...]]:
        with self._db() as db:
            return db.execute("select to_, amount, reversed from payments order by id").fetchall()

    def closed(self) -> list[str]:
        with self._db() as db:
            return [r[0] for r in db.execute("select account from closed")]


def bank_specs(bank: Bank) -> list[Any]:
    @tool
    def lookup(account: str) -> dict[str, Any]:
        """Look up an account."""
        return {"account": account, "balance": 100.0, "secret": "s3cr3t", "owner": {"email": "x@example.com"}}

    @tool
    def pay(to: str, amount: float, idempotency_key: Annotated[str | None, InjectedToolArg] = None) -> dict[str, Any]:
        """Pay an amount to someone."""
        if amount <= 0:
            raise ValueError(f"amount must be positive, got {amount}")
        return bank.pay(to, amount, idempotency_key)

    @tool
    def unpay(payment_id: int) -> dict[str, Any]:
        """Reverse a payment."""
        with bank._db() as db:
            db.execute("update payments set reversed = 1 where id = ?", (payment_id,))
        return {"payment_id": payment_id, "reversed": True}

    @tool
    def close_account(account: str) -> dict[str, Any]:
        """Close an account."""
        with bank._db() as db:
            db.execute("insert or ignore into closed values (?)", (account,))
        return {"account": account, "closed": True}

    def suggest(action: str) -> str:
        """Suggest an action to staff."""
        return action

    def note(text: str) -> str:
        """Write a note to the customer."""
        return text

    return [
        register(lookup, Mode.READ_ONLY, reads=["accounts"]),
        register(pay, Mode.EXECUTE_LIMITED, changes=["payments"],
                 compensation=Compensation("unpay", lambda a, r: {"payment_id": r["payment_id"]}, "reverse it")),
        register(unpay, Mode.EXECUTE_LIMITED, changes=["payments"], irreversible=True),
        register(close_account, Mode.EXECUTE_LIMITED, changes=["accounts"], irreversible=True),
        register(suggest, Mode.RECOMMEND_ONLY),
        register(note, Mode.DRAFT_ONLY, changes=["drafts"], irreversible=True),
    ]


class Kit:
    def __init__(self, home: Path, steps: list[Any], policy: dict[str, Any] | None = None, *, store: Any = None,
                 tools: list[Any] | None = None, **kw: Any) -> None:
        self.home = home
        self.bank = Bank(home / "bank.sqlite")
        self.store = store if store is not None else Store.open(home=home)
        self.model = ScriptedChatModel(steps=steps)
        self.graph = create_permissioned_agent(
            self.model, bank_specs(self.bank) + list(tools or []), Policy.from_dict(policy or POLICY),
            store=self.store, observe=lambda text: {"sentiment": "angry" if "!!!" in text else "calm"},
            context_keys=kw.pop("context_keys", {"sentiment": str}), **kw)
        self.runtime = AgentRuntime(self.graph, store=self.store)

    def pending(self, thread: str = "t") -> list[dict[str, Any]]:
        return self.runtime.result(thread).pending

    def kinds(self, thread: str = "t") -> list[str]:
        return [e.kind for e in self.store.audit.entries(thread)]


@pytest.fixture
def kit_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Kit] = []

    def make(steps: list[Any], policy: dict[str, Any] | None = None, **kw: Any) -> Kit:
        k = Kit(tmp_path, steps, policy, **kw)
        made.append(k)
        return k

    yield make
    for k in made:
        k.store.close()


@pytest.fixture
def open_store(backend: str, tmp_path: Path) -> Iterator[Any]:
    """Opens stores on this test's backend: ``open_store("a")`` is one store (a SQLite home, or a
    fresh Postgres schema), dropped after the test."""
    import uuid

    from tests._pg import PG_URL, drop_schema

    opened: list[tuple[Any, str | None]] = []

    def open_(name: str = "main") -> Any:
        if backend == "sqlite":
            store, schema = Store.open(home=tmp_path / f"store_{name}"), None
        else:
            schema = f"ak_test_{uuid.uuid4().hex[:10]}"
            store = Store.open(db_url=PG_URL, schema=schema)
        opened.append((store, schema))
        return store

    yield open_
    for store, schema in opened:
        store.close()
        if schema:
            drop_schema(schema)


@pytest.fixture
def kit_on(open_store: Any, tmp_path: Path) -> Iterator[Any]:
    """A Kit whose store is on this test's backend (SQLite, or a fresh Postgres schema)."""

    def make(steps: list[Any], policy: dict[str, Any] | None = None, **kw: Any) -> Kit:
        return Kit(tmp_path, steps, policy, store=open_store(), **kw)

    yield make


def refused_as_forged(kit: Any, node: str) -> list[Any]:
    """The ``forged_action`` refusals audited for payloads sent by hand to ``node``."""
    return [e for e in kit.store.audit.entries("t", kind="refused")
            if e.data.get("rule") == "forged_action" and e.data.get("node") == node]


def tip_kit(make: Any, untip: Any, *, failure: Any = None) -> tuple[Any, Any]:
    """A kit (from ``make``: kit_factory or kit_on) with a ``tip`` tool whose compensation is the
    given ``untip`` tool, one tip already paid; returns the kit and the tip's ``executed`` entry."""
    from langchain_core.tools import tool

    from agent_kit import Compensation, Mode, register
    from agent_kit.testing import tool_call

    @tool
    def tip(to: str, amount: float) -> dict[str, Any]:
        """Tip someone."""
        return {"tip_id": 7, "to": to, "amount": amount}

    policy = copy.deepcopy(POLICY)
    policy["tools"]["tip"] = {"mode": "execute_limited", "rollback": {"role": "lead"}}
    policy["tools"]["untip"] = {"mode": "execute_limited"}
    tools = [register(tip, Mode.EXECUTE_LIMITED, changes=["tips"],
                      compensation=Compensation("untip", lambda a, r: {"tip_id": r["tip_id"]}, "take it back")),
             register(untip, Mode.EXECUTE_LIMITED, changes=["tips"], irreversible=True, failure=failure)]
    kit = make([tool_call("tip", {"to": "ann", "amount": 3}), "tipped"], policy, tools=tools)
    kit.runtime.send("t", "tip ann")
    return kit, kit.store.audit.entries("t", kind="executed")[0]
