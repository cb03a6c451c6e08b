"""Thread leases: one holder per thread, across threads, processes and crashes."""

from __future__ import annotations

import time

import pytest

from agent_kit.errors import RunBusyError
from agent_kit.store import Store

from ._procs import barrier, hold_lease_and_die, race_for_lease, run_processes, run_to_exit, store_args


def test_acquire_then_a_second_acquire_is_busy_naming_the_owner(store: Store) -> None:
    lease = store.leases.acquire("t1", owner="worker-a")
    assert lease.held and lease.owner == "worker-a"
    with pytest.raises(RunBusyError, match=r"thread t1 is being run by another process \(owner worker-a\); try again"):
        store.leases.acquire("t1", owner="worker-b")
    other = store.leases.acquire("t2")  # other threads are free
    other.release()
    lease.release()
    assert not lease.held
    store.leases.acquire("t1", owner="worker-b").release()


def test_lease_is_released_when_the_block_raises(store: Store) -> None:
    with pytest.raises(KeyError):
        with store.leases.acquire("t1"):
            raise KeyError("boom")
    with store.leases.acquire("t1") as again:
        assert again.held


def test_release_twice_is_harmless(store: Store) -> None:
    lease = store.leases.acquire("t1")
    lease.release()
    lease.release()
    store.leases.acquire("t1").release()


def test_a_second_store_handle_sees_the_lease(open_store) -> None:  # type: ignore[no-untyped-def]
    first, second = open_store(), open_store()
    with first.leases.acquire("t1", owner="one"):
        with pytest.raises(RunBusyError):
            second.leases.acquire("t1")
        assert second.leases.holder("t1") == "one"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_expired_lease_can_be_taken_over_and_the_old_holder_cannot_renew(store: Store) -> None:
    stale = store.leases.acquire("t1", owner="crashed", ttl_s=-1)
    fresh = store.leases.acquire("t1", owner="new")
    assert store.leases.holder("t1") == "new"
    with pytest.raises(RunBusyError, match="taken over"):
        stale.renew()
    stale.release()  # must not release the new holder's lease
    with pytest.raises(RunBusyError):
        store.leases.acquire("t1")
    fresh.renew(ttl_s=60)
    assert fresh.expires_at is not None and fresh.expires_at > time.time()
    fresh.release()


@pytest.mark.parametrize("racers", [2, 8])
def test_exactly_one_of_many_processes_wins_the_lease(store: Store, racers: int) -> None:
    ready, tried = barrier(racers), barrier(racers)
    outcomes = run_processes(race_for_lease, [(store_args(store), "t1", ready, tried)] * racers)
    assert sorted(outcomes) == ["busy"] * (racers - 1) + ["won"]
    store.leases.acquire("t1").release()  # the winner released it


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_crashed_holder_frees_the_lease_on_postgres(store: Store) -> None:
    assert run_to_exit(hold_lease_and_die, (store_args(store), "t1")) == 0
    assert store.leases.holder("t1") == "doomed"
    # The server ends the dead client's session (and its advisory lock) on its own: wait for that.
    deadline = time.monotonic() + 20
    while True:
        try:
            store.leases.acquire("t1").release()
            break
        except RunBusyError:
            if time.monotonic() > deadline:
                raise
