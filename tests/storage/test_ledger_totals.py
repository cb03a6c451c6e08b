"""Running totals in the ledger: what counts, and a limit decided atomically under racing writers."""

from __future__ import annotations

import threading

import pytest

from agent_kit import _effects
from agent_kit._totals import dim_value, dimensions
from agent_kit.store import Store

CUSTOMER = ("context.customer_id", dim_value("cus_jane"))


def _total(store: Store, exclude: str = "") -> float:
    return store.ledger.total(tools=["refund"], dim=CUSTOMER[0], val=CUSTOMER[1], window=86400, measure="amount",
                              exclude=exclude)


def _begin(store: Store, key: str, amount: float, check=None):  # type: ignore[no-untyped-def]
    """Start an effect as the execute node does: limits checked, ledger and audit in one transaction."""
    args = {"order_id": 1, "amount": amount}
    try:
        record, created = _effects.start(
            store, key, thread_id=f"t-{key}", tool_call_id="c", tool="refund", action_hash=f"h-{key}", args=args,
            grants=[], intent={"kind": "started", "actor": "agent", "thread_id": f"t-{key}", "key": f"{key}:started"},
            dims=dimensions(f"t-{key}", args, {"customer_id": "cus_jane"}), check=check)
    except _effects.LimitRefused as exc:
        store.ledger.release(key)
        return None, False, exc.decision
    return record, created, None


@pytest.mark.parametrize(
    ("outcome", "counted"),
    [("done", True), ("unknown", True), ("started", True), ("failed", False), ("rolled_back", False)],
    ids=["done", "unknown", "started", "failed", "rolled-back"],
)
def test_what_counts_toward_a_total(store: Store, outcome: str, counted: bool) -> None:
    _begin(store, "k1", 30)
    if outcome == "done":
        store.ledger.finish("k1", result={"ok": True})
    elif outcome == "unknown":
        store.ledger.mark_unknown("k1")
    elif outcome == "failed":
        store.ledger.finish("k1", error="card declined")
    elif outcome == "rolled_back":
        store.ledger.finish("k1", result={"ok": True})
        store.ledger.mark_rolled_back("k1", 1)
    assert _total(store) == (30.0 if counted else 0.0)
    assert _total(store, exclude="k1") == 0.0


def test_a_reservation_counts_until_released(store: Store) -> None:
    args = {"order_id": 1, "amount": 40}
    store.ledger.reserve("r1", tool="refund", thread_id="t", args=args,
                         dims=dimensions("t", args, {"customer_id": "cus_jane"}))
    assert _total(store) == 40.0 and store.ledger.counted(["r1", "zz"]) == {"r1"}
    store.ledger.release("r1")
    assert _total(store) == 0.0 and store.ledger.counted(["r1"]) == set()


def test_another_group_and_an_old_row_do_not_count(store: Store) -> None:
    args = {"order_id": 1, "amount": 25}
    store.ledger.reserve("omar", tool="refund", thread_id="t", args=args,
                         dims=dimensions("t", args, {"customer_id": "cus_omar"}))
    store.ledger.reserve("other_tool", tool="discount", thread_id="t", args=args,
                         dims=dimensions("t", args, {"customer_id": "cus_jane"}))
    assert _total(store) == 0.0


@pytest.mark.parametrize("racers", [2, 4, 8])
def test_racing_writers_at_the_limit_pass_at_most_as_often_as_the_limit_allows(store: Store, racers: int) -> None:
    """Each racer asks for 30 under a limit of 50: whatever the interleaving, one passes."""
    barrier = threading.Barrier(racers)
    passed: list[str] = []
    refused: list[str] = []

    def racer(i: int) -> None:
        key = f"race{i}"

        def check(tx):  # type: ignore[no-untyped-def]
            now = store.ledger.total(tools=["refund"], dim=CUSTOMER[0], val=CUSTOMER[1], window=86400,
                                     measure="amount", exclude=key, tx=tx)
            return None if now + 30 <= 50 else "over the limit"

        barrier.wait()
        record, _, refusal = _begin(store, key, 30, check)
        (passed if record is not None else refused).append(key)
        assert (record is None) == (refusal == "over the limit")

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(passed) == 1 and len(refused) == racers - 1
    assert _total(store) == 30.0


def _states(store: Store, key: str) -> dict[str, str]:
    rows = store._db.fetchall("SELECT dim, state FROM ledger_totals WHERE key = ?", (key,))
    return {str(dim): str(state) for dim, state in rows}


def test_a_reserved_action_that_starts_moves_every_row_of_it_and_counts_once(store: Store) -> None:
    """Rows are written in one statement; a reservation's rows (all of them, also a dimension the
    start does not name) move to ``started`` instead of being written twice."""
    args = {"order_id": 1, "amount": 40}
    dims = dimensions("t-k1", args, {"customer_id": "cus_jane"})
    store.ledger.reserve("k1", tool="refund", thread_id="t-k1", args=args, dims=[*dims, ("context.tier", "gold")])
    assert set(_states(store, "k1").values()) == {"reserved"}
    record, created, refused = _begin(store, "k1", 40)
    assert created and refused is None
    assert _states(store, "k1") == {dim: "started" for dim, _ in [*dims, ("context.tier", "gold")]}
    assert _total(store) == 40.0
    store.ledger.finish("k1", result={"ok": True})
    assert set(_states(store, "k1").values()) == {"done"} and _total(store) == 40.0


def test_a_fresh_start_writes_one_row_per_dimension_the_first_value_kept(store: Store) -> None:
    from agent_kit import _totals

    store._db.write(lambda tx: _totals.insert_rows(
        tx, "k2", tool="refund", thread_id="t", nums={"amount": 5.0}, state="started",
        dims=[("all", ""), ("thread", "t"), ("context.customer_id", "a"), ("context.customer_id", "b")]))
    rows = store._db.fetchall("SELECT dim, val, state FROM ledger_totals WHERE key = ? ORDER BY dim", ("k2",))
    assert [tuple(r) for r in rows] == [("all", "", "started"), ("context.customer_id", "a", "started"),
                                        ("thread", "t", "started")]


def test_a_failed_effect_begun_again_still_counts_nowhere(store: Store) -> None:
    """A run replayed after a crash begins the key of an effect that failed: the effect is not run
    again (the execute gate reports the recorded failure), so its total must stay out too, or a
    refund that never paid would count against the customer's limit for a day."""
    _begin(store, "k1", 40)
    store.ledger.finish("k1", error="back office down")
    assert _total(store) == 0.0
    record, created, refused = _begin(store, "k1", 40)
    assert record is not None and not created and refused is None and record.status == "failed"
    assert _total(store) == 0.0 and set(_states(store, "k1").values()) == {"failed"}


@pytest.mark.parametrize("outcome", ["started", "done"])
def test_a_reservation_made_after_the_effect_started_leaves_its_rows_as_they_are(store: Store, outcome: str) -> None:
    """A reservation arriving late (after the start committed) must not turn the effect's rows back
    into a reservation, which the release that follows would delete: the total would lose a refund
    that was paid."""
    args = {"order_id": 1, "amount": 40}
    dims = dimensions("t-k1", args, {"customer_id": "cus_jane"})
    _begin(store, "k1", 40)
    if outcome == "done":
        store.ledger.finish("k1", result={"ok": True})
    store.ledger.reserve("k1", tool="refund", thread_id="t-k1", args=args, dims=dims)
    assert set(_states(store, "k1").values()) == {outcome}
    store.ledger.release("k1")
    assert _total(store) == 40.0 and set(_states(store, "k1").values()) == {outcome}


def test_a_late_reservation_under_another_context_adds_no_row_to_a_failed_effect(store: Store) -> None:
    """The effect failed (it counts nowhere); a reservation for its key arriving late, with a
    dimension the start did not have, must not leave a counted ``reserved`` row in that group."""
    _begin(store, "k1", 40)
    store.ledger.finish("k1", error="back office down")
    args = {"order_id": 1, "amount": 40}
    dims = [*dimensions("t-k1", args, {"customer_id": "cus_jane"}), ("context.tier", "gold")]
    store.ledger.reserve("k1", tool="refund", thread_id="t-k1", args=args, dims=dims)
    assert set(_states(store, "k1").values()) == {"failed"} and "context.tier" not in _states(store, "k1")
    assert store.ledger.total(tools=["refund"], dim="context.tier", val="gold", window=86400, measure="amount",
                              exclude="") == 0.0


def test_a_reservation_racing_the_start_of_its_effect_leaves_the_started_rows(store: Store) -> None:
    """The start's rows are written but not committed when the reservation runs (it reads nothing
    yet, then waits on them): once both commit and the release follows, the paid call still
    counts. On Postgres (READ COMMITTED) a check-then-write reservation reset the rows to
    ``reserved`` here and the release deleted them; SQLite serializes the two writers."""
    args = {"order_id": 1, "amount": 40}
    dims = dimensions("t-k1", args, {"customer_id": "cus_jane"})
    errors: list[BaseException] = []

    def reserve() -> None:
        try:
            store.ledger.reserve("k1", tool="refund", thread_id="t-k1", args=args, dims=dims)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    racer = threading.Thread(target=reserve)
    with store._db.transaction(lock="audit") as tx:
        store.ledger.begin_in(tx, "k1", thread_id="t-k1", tool_call_id="c", tool="refund", action_hash="h-k1",
                              args=args, dims=dims)
        racer.start()
        racer.join(timeout=0.5)  # it waits on the uncommitted rows (Postgres) or the write lock (SQLite)
        assert racer.is_alive(), "the reservation did not wait for the start's uncommitted rows"
    racer.join(timeout=30)
    assert not errors, errors
    store.ledger.release("k1")
    assert set(_states(store, "k1").values()) == {"started"} and _total(store) == 40.0
