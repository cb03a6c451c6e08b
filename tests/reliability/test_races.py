"""One run per thread: N processes resume the same paused thread at the same moment; exactly one
executes, every other one fails with a clear error, on SQLite and on Postgres."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from agent_kit.errors import RunBusyError

from ._checks import assert_executed_exactly_once
from .worker import race

_SPAWN = multiprocessing.get_context("spawn")


def _store_args(app: Any) -> dict[str, Any]:
    return {"home": str(app.home), "db_url": app.db_url, "schema": app.schema, "durability": "sync"}


@pytest.mark.slow
@pytest.mark.parametrize("racers", [2, 4, 8], ids=lambda n: f"{n}_processes")
def test_concurrent_approvals_of_one_paused_refund_execute_it_once(app: Any, racers: int) -> None:
    thread = "race"
    paused = app.say(thread, "Hi, I am Jane Doe, 94107", "Refund $80 on order 1001")
    assert paused.status == "paused"
    (pending,) = paused.pending
    args = {**_store_args(app), "thread": thread, "approver": "lee", "interrupt_id": pending["interrupt_id"]}

    barrier = _SPAWN.Barrier(racers)  # released only when every racer has loaded and opened the store
    results = _SPAWN.Queue()
    procs = [_SPAWN.Process(target=race, args=(args, barrier, results)) for _ in range(racers)]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=180) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    assert [p.exitcode for p in procs] == [0] * racers

    ran = [o for o in outcomes if o["outcome"] == "ran"]
    lost = [o for o in outcomes if o["outcome"] == "error"]
    assert len(ran) == 1, outcomes
    assert len(lost) == racers - 1
    for o in lost:
        # busy while the winner runs, or stale once it has finished: never a silent success
        assert o["error"] in ("RunBusyError", "StaleInterruptError"), o
        if o["error"] == "RunBusyError":
            assert f"thread {thread} is being run by another process" in o["message"], o
        else:
            assert pending["interrupt_id"] in o["message"] and "not pending" in o["message"], o

    assert [r["amount"] for r in app.shop.refunds(1001)] == [80.0]
    assert_executed_exactly_once(app.store, app.home, thread, "issue_refund")
    assert [e.actor for e in app.store.audit.entries(thread, kind="approved")] == ["lee"]
    assert app.runtime.result(thread).status == "replied"


def test_a_released_lease_is_free_at_once(app: Any) -> None:
    """Back-to-back calls on one thread from one process never see their own finished call as busy
    (a lease must be free the moment it is released, not when the server gets round to it)."""
    busy = 0
    for _ in range(500):
        try:
            with app.store.leases.acquire("t"):
                pass
        except RunBusyError:
            busy += 1
    assert busy == 0, f"{busy} of 500 back-to-back acquisitions found the thread busy after a release"
