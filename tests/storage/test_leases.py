"""Thread leases: one holder per thread, across threads, processes and crashes."""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from agent_kit.errors import RunBusyError
from agent_kit.leases import process_identity
from agent_kit.store import Store

from ._procs import barrier, hold_lease_and_die, race_for_lease, run_processes, run_to_exit, store_args


def test_acquire_then_a_second_acquire_is_busy_naming_the_owner(store: Store) -> None:
    lease = store.leases.acquire("t1", owner="worker-a")
    assert lease.held and lease.owner == f"{process_identity()} worker-a"
    with pytest.raises(RunBusyError, match=r"thread t1 is being run by another process \(owner .+:\d+.* worker-a\); try again"):
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
        assert second.leases.holder("t1") == f"{process_identity()} one"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_expired_lease_of_another_host_can_be_taken_over_and_the_old_holder_cannot_renew(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(socket, "gethostname", lambda: "other-host")
        stale = store.leases.acquire("t1", owner="crashed", ttl_s=-1)
    assert stale.owner.startswith("other-host:")
    fresh = store.leases.acquire("t1", owner="new")
    assert store.leases.holder("t1") == f"{process_identity()} new"
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


def test_a_crashed_holder_frees_the_lease_within_seconds(store: Store) -> None:
    assert run_to_exit(hold_lease_and_die, (store_args(store), "t1")) == 0
    holder = store.leases.holder("t1")
    assert holder is not None and holder.endswith(" doomed")
    assert re.match(rf"^{re.escape(socket.gethostname())}:\d+(/\d+)?:\d+ doomed$", holder)
    if store.backend == "sqlite":  # the holder's pid is gone: taken over at once
        store.leases.acquire("t1").release()
        return
    # The server ends the dead client's session (and its advisory lock) on its own: wait for that.
    wait_until_free(store, "t1", within_s=20)


def wait_until_free(store: Store, thread_id: str, within_s: float) -> None:
    """Wait (on the lease's state, polled) until the thread's lease can be taken; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            store.leases.acquire(thread_id).release()
            return
        except RunBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_live_holder_on_this_host_keeps_its_lease_past_its_expiry(store: Store) -> None:
    lease = store.leases.acquire("t1", owner="slow", ttl_s=-1)  # expired at once, never renewed
    with pytest.raises(RunBusyError, match="slow"):
        store.leases.acquire("t1")
    lease.release()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_reused_pid_is_not_mistaken_for_the_holder(store: Store) -> None:
    me = process_identity()
    host, pid_part, tid = me.split(":")
    if "/" not in pid_part:
        pytest.fail("this platform gives no process start time (/proc): pid reuse cannot be told apart")
    pid = pid_part.split("/")[0]
    forged = f"{host}:{pid}/1:{tid} from-a-dead-process-whose-pid-we-now-have"
    store._db.execute("INSERT INTO leases (thread_id, owner, token, acquired_at, expires_at) "
                      "VALUES ('t1', ?, 'x', 'now', ?)", (forged, time.time() + 3600))
    store.leases.acquire("t1").release()
    assert os.getpid() == int(pid)


@pytest.mark.parametrize("ttl", [0.5, 2.0], ids=["ttl_0.5s", "ttl_2s"])
def test_the_heartbeat_keeps_a_lease_held_longer_than_its_ttl(store: Store, ttl: float,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store.leases.ttl_s = ttl
    with store.leases.acquire("t1", owner="long-turn") as lease:
        # Held for several TTLs: wait on the renewals (state), not on the clock.
        seen = 0
        deadline = time.monotonic() + 120
        while lease.renewals < 5:
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            if lease.renewals != seen:
                seen = lease.renewals
                # Right after a renewal, a contender on another host (for which only expiry counts) is refused.
                with monkeypatch.context() as m:
                    m.setattr(socket, "gethostname", lambda: "other-host")
                    with pytest.raises(RunBusyError, match="long-turn"):
                        store.leases.acquire("t1")
            time.sleep(ttl / 10)
        assert lease.held and not lease.lost
        lease.check()
        if store.backend == "sqlite":
            assert lease.expires_at is not None and lease.expires_at > time.time()
    store.leases.acquire("t1").release()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_lease_taken_over_while_held_is_marked_lost(store: Store) -> None:
    store.leases.ttl_s = 0.3
    lease = store.leases.acquire("t1", owner="paused")
    store._db.execute("UPDATE leases SET token = 'someone-else' WHERE thread_id = 't1'")
    deadline = time.monotonic() + 60
    while not lease.lost:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(RunBusyError, match="lost"):
        lease.check()
    lease.release()  # harmless


@pytest.mark.postgres
@pytest.mark.parametrize("pooler_refuses_options", [False, True], ids=["settings-at-connect", "pooler-fallback"])
def test_a_lease_session_runs_with_its_settings_given_at_connection_or_set_after(
        pg_schema: str, tmp_path, monkeypatch: pytest.MonkeyPatch, pooler_refuses_options: bool) -> None:  # type: ignore[no-untyped-def]
    """A new lease session costs no statement of its own (its settings ride on the connection);
    behind a pooler that refuses settings at connection time it sets them instead. Either way the
    session holds a lease with them: no WAL wait on its own writes, one plan for every thread,
    keepalives, no idle timeout."""
    from agent_kit import _db
    from agent_kit.errors import StorageError

    from .conftest import PG_URL

    real = _db.Database.raw_postgres
    seen: list[object] = []

    def raw_postgres(self, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw.get("settings"))
        if pooler_refuses_options and kw.get("settings"):
            raise StorageError("cannot connect to PostgreSQL at x: unsupported startup parameter: options")
        return real(self, **kw)

    monkeypatch.setattr(_db.Database, "raw_postgres", raw_postgres)
    store = Store.open(tmp_path / "home", db_url=PG_URL, schema=pg_schema)
    try:
        with store.leases.acquire("t1", owner="turn") as lease:
            conn = lease._conn
            assert conn is not None
            shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
                "synchronous_commit", "plan_cache_mode", "tcp_keepalives_idle", "idle_session_timeout",
                "search_path")}
        assert shown["synchronous_commit"] == "off" and shown["plan_cache_mode"] == "force_generic_plan"
        assert shown["tcp_keepalives_idle"] == "5" and shown["idle_session_timeout"] == "0"
        assert pg_schema in shown["search_path"]  # the store's schema is kept beside the settings
        assert any(seen), "the lease session was opened without its settings at connection time"
        assert store.leases.holder("t1") is None  # given back
    finally:
        store.close()
