"""The execution ledger: intent before the call, outcome after, one action per key."""

from __future__ import annotations

import threading

import pytest

from agent_kit.errors import LedgerError, RollbackError
from agent_kit.store import Store


def _begin(store: Store, key: str = "k1", action_hash: str = "a1", thread_id: str = "t1"):  # type: ignore[no-untyped-def]
    return store.ledger.begin(key, thread_id=thread_id, tool_call_id="call-1", tool="refund",
                              action_hash=action_hash, args={"order": "o1", "amount": 5})


def test_begin_records_intent_once(store: Store) -> None:
    record, created = _begin(store)
    assert created and record.status == "started" and record.args == {"order": "o1", "amount": 5}
    assert record.result is None and record.finished_at is None and record.rolled_back_by is None
    again, created_again = _begin(store)
    assert not created_again and again == record
    assert store.ledger.get("k1") == record and store.ledger.get("nope") is None


def test_begin_with_another_action_on_the_same_key_is_refused(store: Store) -> None:
    _begin(store)
    with pytest.raises(LedgerError, match="already used for action"):
        _begin(store, action_hash="a2")
    assert store.ledger.get("k1").action_hash == "a1"  # type: ignore[union-attr]


def test_finish_records_result_and_a_second_begin_sees_it(store: Store) -> None:
    _begin(store)
    done = store.ledger.finish("k1", result={"refund_id": "r1", "amount": 5}, duration_ms=12.5)
    assert done.status == "done" and done.result == {"refund_id": "r1", "amount": 5}
    assert done.duration_ms == 12.5 and done.finished_at is not None and done.error is None
    record, created = _begin(store)
    assert not created and record.status == "done" and record.result == done.result


def test_finish_with_error_marks_failed(store: Store) -> None:
    _begin(store)
    failed = store.ledger.finish("k1", error="card declined")
    assert failed.status == "failed" and failed.error == "card declined"


def test_finish_twice_with_the_same_outcome_is_idempotent_but_not_with_another(store: Store) -> None:
    _begin(store)
    first = store.ledger.finish("k1", result=1)
    assert store.ledger.finish("k1", result=1) == first
    with pytest.raises(LedgerError, match="already done"):
        store.ledger.finish("k1", error="boom")
    with pytest.raises(LedgerError, match="already done"):
        store.ledger.finish("k1", result=2)
    assert store.ledger.get("k1").result == 1  # type: ignore[union-attr]


def test_a_failed_call_may_be_retried_and_finished(store: Store) -> None:
    _begin(store)
    store.ledger.finish("k1", error="timeout")
    assert store.ledger.finish("k1", result={"ok": True}).status == "done"


def test_finish_of_an_unknown_key_is_refused(store: Store) -> None:
    with pytest.raises(LedgerError, match="no ledger record"):
        store.ledger.finish("missing", result=1)


def test_mark_unknown_then_reconcile(store: Store) -> None:
    _begin(store)
    assert store.ledger.mark_unknown("k1").status == "unknown"
    assert store.ledger.finish("k1", result="reconciled").status == "done"
    assert store.ledger.mark_unknown("k1").status == "done"  # a finished record stays finished
    with pytest.raises(LedgerError):
        store.ledger.mark_unknown("missing")


def test_for_thread_lists_only_that_thread_oldest_first(store: Store) -> None:
    _begin(store, key="k1")
    _begin(store, key="k2", action_hash="a2")
    _begin(store, key="k3", action_hash="a3", thread_id="t2")
    assert [r.key for r in store.ledger.for_thread("t1")] == ["k1", "k2"]
    assert [r.key for r in store.ledger.for_thread("t2")] == ["k3"]
    assert store.ledger.for_thread("t3") == []


def test_mark_rolled_back_once_only(store: Store) -> None:
    _begin(store)
    store.ledger.finish("k1", result=1)
    store.ledger.mark_rolled_back("k1", 42)
    assert store.ledger.get("k1").rolled_back_by == 42  # type: ignore[union-attr]
    with pytest.raises(RollbackError, match="already rolled back by audit entry 42"):
        store.ledger.mark_rolled_back("k1", 43)
    with pytest.raises(LedgerError):
        store.ledger.mark_rolled_back("missing", 1)


def test_concurrent_rollbacks_have_one_winner(store: Store) -> None:
    _begin(store)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def roll(seq: int) -> None:
        start.wait()
        try:
            store.ledger.mark_rolled_back("k1", seq)
            outcomes.append("won")
        except RollbackError:
            outcomes.append("refused")

    threads = [threading.Thread(target=roll, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


def test_args_that_are_not_json_are_refused(store: Store) -> None:
    with pytest.raises(LedgerError, match="not JSON"):
        store.ledger.begin("k", thread_id="t", tool_call_id="c", tool="x", action_hash="a",
                           args={"x": object()})
