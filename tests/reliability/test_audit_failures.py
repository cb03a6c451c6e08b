"""No effect without its entry: the audit insert fails at each point of an effect's life.

The failure is real: a trigger in the database refuses the insert of one kind of audit entry
(on SQLite and on Postgres), exactly as a full disk, a dropped connection or a value the
database refuses would. At every point, while the fault lasts:

- every effect in the system of record (each idempotency key the back office recorded) has an
  audit entry naming it (its intent, ``started``, or its outcome);
- every interrupt the checkpoint holds is listed in the inbox (nothing pending is lost);
- the chain verifies.

Once the fault is gone, the person repeats their step and the action has happened exactly once,
with its ``started`` and outcome entries, and the thread answers the next message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from agent_kit.rollback import rollback
from tests.fixture_app import App

THREAD = "t-audit-fault"
VERIFY = "Hi, I am Jane Doe, 94107"


def _approve(app: App) -> Any:
    (item,) = app.runtime.pending(THREAD, kind="approval")
    return app.runtime.approve(item, approver="lee")


def _rollback_refund(app: App) -> Any:
    (entry,) = [e for e in app.store.audit.entries(THREAD, kind="executed") if e.tool == "issue_refund"]
    return rollback(app.runtime, entry.seq, approver="lee")


Step = str | Callable[[App], Any]
SCENARIOS: dict[str, tuple[list[Step], str]] = {
    # name: (steps, the audit kind of the effect's outcome)
    "gated_refund": ([VERIFY, "Refund $80 on order 1001", _approve], "executed"),
    "limited_refund": ([VERIFY, "Refund $20 on order 1001"], "executed"),
    "draft": ([VERIFY, "draft a reply about the late delivery"], "drafted"),
    "recommendation": ([VERIFY, "what do you recommend for 1001"], "recommended"),
    "rollback": ([VERIFY, "Refund $20 on order 1001", _rollback_refund], "rolled_back"),
}
CASES = [
    ("gated_refund", "approval_requested"), ("gated_refund", "approved"), ("gated_refund", "started"),
    ("gated_refund", "executed"),
    ("limited_refund", "started"), ("limited_refund", "executed"),
    ("draft", "started"), ("draft", "drafted"),
    ("recommendation", "recommended"),
    ("rollback", "started"), ("rollback", "rolled_back"),
]


def _fail_inserts(app: App, kind: str, *, after: int = 0) -> None:
    """Make the database refuse every audit insert of ``kind`` (after the first ``after`` of them)."""
    if app.db_url is None:
        with sqlite3.connect(app.store.path) as db:
            db.execute(
                "CREATE TRIGGER fail_audit BEFORE INSERT ON audit "
                f"WHEN json_extract(NEW.body, '$.kind') = '{kind}' "
                f"AND (SELECT count(*) FROM audit WHERE kind = '{kind}') >= {after} "
                "BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END")
        return
    app.store._db.execute(
        "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF (NEW.body::jsonb ->> 'kind') = '{kind}' "
        f"AND (SELECT count(*) FROM audit WHERE kind = '{kind}') >= {after} "
        "THEN RAISE EXCEPTION 'injected audit failure'; END IF; RETURN NEW; END $$")
    app.store._db.execute("CREATE TRIGGER fail_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION fail_audit()")


def _heal(app: App) -> None:
    if app.db_url is None:
        with sqlite3.connect(app.store.path) as db:
            db.execute("DROP TRIGGER fail_audit")
        return
    app.store._db.execute("DROP TRIGGER fail_audit ON audit")


def _run(app: App, step: Step) -> Exception | None:
    try:
        if isinstance(step, str):
            app.runtime.send(THREAD, step)
        else:
            step(app)
    except Exception as exc:  # noqa: BLE001 - the injected fault surfaces here; the invariants are what count
        return exc
    return None


def _shop_keys(app: App) -> dict[str, str]:
    """Every effect the back office recorded: idempotency key -> operation."""
    return dict(app.shop.effects())


def _assert_no_effect_without_entry(app: App) -> None:
    named = {e.data.get("idempotency_key") for e in app.store.audit.entries(THREAD)}
    for key, operation in _shop_keys(app).items():
        assert key in named, f"{operation} ({key}) is in the back office with no audit entry"


def _assert_no_pending_item_lost(app: App) -> None:
    live = {i.id for i in app.runtime.state(THREAD).interrupts}
    listed = {i.interrupt_id for i in app.store.inbox.for_thread(THREAD)}
    assert live <= listed, f"pending interrupts {live - listed} are missing from the inbox"


@pytest.mark.parametrize(("scenario", "failing"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_a_failed_audit_insert_never_leaves_an_effect_without_its_entry(app: App, scenario: str, failing: str) -> None:
    steps, outcome = SCENARIOS[scenario]
    _fail_inserts(app, failing)
    errors = [_run(app, step) for step in steps]
    assert any(e is not None for e in errors), f"the injected failure of {failing!r} never fired"
    _assert_no_effect_without_entry(app)
    _assert_no_pending_item_lost(app)
    assert app.store.audit.verify().ok

    _heal(app)
    # The person repeats what they did; a run cut off by the fault is finished first.
    first_failed = next(i for i, e in enumerate(errors) if e is not None)
    app.runtime.recover(THREAD)
    for step in steps[first_failed:]:
        if isinstance(step, str) and step != steps[first_failed]:
            app.runtime.send(THREAD, step)
        elif not isinstance(step, str) and not _already_done(app, step):
            step(app)

    _assert_no_effect_without_entry(app)
    _assert_no_pending_item_lost(app)
    entries = app.store.audit.entries(THREAD)
    assert sum(1 for e in entries if e.kind == outcome) == 1, [e.kind for e in entries]
    keys = _shop_keys(app)
    if outcome != "recommended":
        ops = {"executed": "issue_refund", "drafted": "draft_reply", "rolled_back": "reverse_refund"}
        assert list(keys.values()).count(ops[outcome]) == 1, keys
        (done,) = [e for e in entries if e.kind == outcome]
        key = done.data["idempotency_key"]
        assert key in keys
        assert [e.kind for e in entries if e.data.get("idempotency_key") == key][:1] == ["started"]
        assert app.store.ledger.get(key).status == "done"  # type: ignore[union-attr]
    assert app.store.inbox.for_thread(THREAD) == [] or app.runtime.state(THREAD).interrupts
    assert app.store.audit.verify().ok
    assert app.runtime.send(THREAD, "where is order 1001").status == "replied"


def _already_done(app: App, step: Callable[[App], Any]) -> bool:
    if step is _approve:
        return not any(i.value.get("kind") == "approval" for i in app.runtime.state(THREAD).interrupts)
    if step is _rollback_refund:
        return bool(app.store.audit.entries(THREAD, kind="rolled_back"))
    return False
