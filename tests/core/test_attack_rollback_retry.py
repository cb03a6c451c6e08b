"""A rollback runs the compensation through the ledger exactly once, also when an earlier attempt
failed and it is tried again: the retry is on record as started before the compensation runs, so a
retry cut off after the compensation is never run blindly a third time."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import tool

from agent_kit import RollbackError
from agent_kit import rollback as rollback_module
from agent_kit.rollback import rollback
from agent_kit.testing import tool_call
from tests.core.conftest import tip_kit


class Killed(BaseException):
    """Stands for the process dying at a crash point (SIGKILL): nothing after it runs."""


def _tipped(kit_on: Any) -> tuple[Any, Any, list[int], list[bool]]:
    """One tip paid; its compensation (no idempotency key: it cannot be reconciled) fails while
    ``down[0]`` and records each reversal it makes."""
    reversals: list[int] = []
    down = [True]

    @tool
    def untip(tip_id: int) -> dict:
        """Take a tip back (no idempotency key: it cannot be reconciled)."""
        if down[0]:
            raise RuntimeError("back office down")
        reversals.append(tip_id)
        return {"tip_id": tip_id, "reversed": True}

    kit, entry = tip_kit(kit_on, untip)
    return kit, entry, reversals, down


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_retried_rollback_cut_off_after_its_compensation_never_compensates_again(
        kit_on: Any, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kit, entry, reversals, down = _tipped(kit_on)

    # 1. the compensation fails: a failed rollback, nothing reversed
    with pytest.raises(RollbackError, match="back office down"):
        rollback(kit.runtime, entry.seq, approver="lee")
    assert reversals == []

    # 2. tried again once the back office is up; the process dies right after the compensation ran
    down[0] = False

    def crash_point(name: str) -> None:
        if name == "rollback_after_compensation":
            raise Killed(name)

    monkeypatch.setattr(rollback_module, "crash_point", crash_point)
    with pytest.raises(Killed):
        rollback(kit.runtime, entry.seq, approver="lee")
    assert reversals == [7]  # it ran, and its outcome was never recorded
    monkeypatch.undo()

    # 3. a third attempt must not run the compensation blindly again (as after a first attempt
    #    cut off the same way: outcome unknown, a person checks the system of record)
    try:
        rollback(kit.runtime, entry.seq, approver="lee")
    except RollbackError:
        pass
    assert reversals == [7], f"the compensation ran {len(reversals)} times"
    assert kit.store.audit.verify().ok


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_retried_rollback_audits_its_intent_before_the_compensation_runs(kit_on: Any, backend: str) -> None:
    """No effect without its entry: each run of the compensation has a ``started`` entry before it."""
    kit, entry, reversals, down = _tipped(kit_on)
    with pytest.raises(RollbackError):
        rollback(kit.runtime, entry.seq, approver="lee")
    down[0] = False
    rollback(kit.runtime, entry.seq, approver="lee")
    assert reversals == [7]
    runs = [e.kind for e in kit.store.audit.entries("t") if e.tool == "untip" or e.kind == "rolled_back"]
    # two runs of untip: each started before its outcome (failed, then rolled_back)
    assert runs == ["started", "failed", "started", "rolled_back"], runs


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize(("call", "kind"), [
    (("lookup", {"account": "a1"}), "read"),
    (("note", {"text": "hello"}), "drafted"),
    (("suggest", {"action": "refund"}), "recommended"),
])
def test_a_read_a_draft_or_a_recommendation_cannot_be_rolled_back(kit_on: Any, backend: str,
                                                                  call: tuple[str, dict[str, Any]], kind: str) -> None:
    kit = kit_on([tool_call(*call), "ok"])
    kit.runtime.send("t", "go")
    (entry,) = kit.store.audit.entries("t", kind=kind)
    before = kit.kinds()
    with pytest.raises(RollbackError, match="only 'executed' actions"):
        rollback(kit.runtime, entry.seq, approver="lee")
    assert kit.kinds() == before


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_failed_compensation_then_a_good_one_reverses_once_and_a_third_is_refused(kit_on: Any, backend: str) -> None:
    kit, entry, reversals, down = _tipped(kit_on)
    with pytest.raises(RollbackError):
        rollback(kit.runtime, entry.seq, approver="lee")
    assert kit.store.ledger.get(entry.data["idempotency_key"]).rolled_back_by is None
    down[0] = False
    rollback(kit.runtime, entry.seq, approver="lee")
    with pytest.raises(RollbackError, match="already rolled back"):
        rollback(kit.runtime, entry.seq, approver="lee")
    assert reversals == [7]
    assert kit.kinds().count("rolled_back") == 1
    assert kit.store.audit.verify().ok
