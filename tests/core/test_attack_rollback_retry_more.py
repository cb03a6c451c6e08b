"""Rollback retried more than once: two failed compensations, then a good one, reverse exactly once,
each attempt its own effect with its intent on record before it runs; retries racing each other
after a failure reverse once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agent_kit import RollbackError
from agent_kit.rollback import rollback
from tests.core.test_attack_rollback_retry import _tipped


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_failed_compensations_then_a_good_one_reverse_once(kit_on: Any, backend: str) -> None:
    kit, entry, reversals, down = _tipped(kit_on)
    for _ in range(2):
        with pytest.raises(RollbackError, match="back office down"):
            rollback(kit.runtime, entry.seq, approver="lee")
    down[0] = False
    done = rollback(kit.runtime, entry.seq, approver="lee")
    with pytest.raises(RollbackError, match="already rolled back"):
        rollback(kit.runtime, entry.seq, approver="lee")
    assert reversals == [7]
    runs = [e.kind for e in kit.store.audit.entries("t") if e.tool == "untip" or e.kind == "rolled_back"]
    assert runs == ["started", "failed", "started", "failed", "started", "rolled_back"], runs
    keys = [e.data["idempotency_key"] for e in kit.store.audit.entries("t", kind="started") if e.tool == "untip"]
    assert len(set(keys)) == 3, keys
    assert kit.store.ledger.get(entry.data["idempotency_key"]).rolled_back_by == done["audit_seq"]
    assert kit.store.audit.verify().ok


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_retries_racing_after_a_failed_compensation_reverse_once(kit_on: Any, backend: str) -> None:
    kit, entry, reversals, down = _tipped(kit_on)
    with pytest.raises(RollbackError):
        rollback(kit.runtime, entry.seq, approver="lee")
    down[0] = False
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def one(who: str) -> None:
        barrier.wait()
        try:
            rollback(kit.runtime, entry.seq, approver=who)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - busy or already rolled back
            outcomes.append(type(exc).__name__)

    workers = [threading.Thread(target=one, args=(w,)) for w in ("lee", "sam", "lee", "sam")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert reversals == [7], f"the compensation ran {len(reversals)} times ({outcomes})"
    assert outcomes.count("ok") <= 1, outcomes
    assert kit.kinds().count("rolled_back") == len(reversals)
    assert kit.store.audit.verify().ok
