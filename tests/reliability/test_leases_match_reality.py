"""Leases that match reality, end to end: a rollback SIGKILLed mid-way leaves its thread usable
within seconds, and a turn much longer than the lease TTL keeps its lease."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent_kit.errors import RunBusyError
from agent_kit.rollback import rollback
from tests.fixture_app import App
from tests.storage._procs import run_to_exit
from tests.storage.test_leases import wait_until_free

pytestmark = pytest.mark.slow

JANE = "Hi, I am Jane Doe, 94107"


def _rollback_and_get_killed(home: str, db_url: str | None, schema: str | None, entry_seq: int,
                             crash_at: str) -> None:
    """In a spawned process: roll back ``entry_seq`` and be SIGKILLed at ``crash_at``."""
    os.environ["AGENT_KIT_HOME"] = home
    os.environ["AGENT_KIT_CRASH_AT"] = crash_at
    from tests.fixture_app import make_app

    app = make_app(Path(home), db_url=db_url, schema=schema)
    rollback(app.runtime, entry_seq, approver="lee")
    os._exit(3)  # the crash point was not reached: the test sees exit code 3, not -9


@pytest.mark.parametrize("crash_at", ["rollback_before_compensation", "rollback_after_compensation"])
def test_a_rollback_sigkilled_midway_leaves_the_thread_usable_within_seconds(app: App, crash_at: str) -> None:
    app.say("t", JANE, "Refund $20 on order 1001")
    entry = [e for e in app.store.audit.entries("t", kind="executed") if e.tool == "issue_refund"][-1]
    code = run_to_exit(_rollback_and_get_killed, (str(app.home), app.db_url, app.schema, entry.seq, crash_at))
    assert code == -signal.SIGKILL
    holder = app.store.leases.holder("t")
    assert holder is not None and f"rollback of entry {entry.seq} by lee" in holder
    assert holder.startswith(f"{socket.gethostname()}:")
    if app.store.backend == "postgres":
        wait_until_free(app.store, "t", within_s=20)  # the server ends the dead session on its own
    # On SQLite the dead holder is seen at once: the very next call takes the thread.
    reply = app.runtime.send("t", "Thanks, what is the status of order 1001?")
    assert reply.status == "replied"
    # The rollback can be finished: the compensation happens once in all.
    rollback(app.runtime, entry.seq, approver="lee")
    assert [r["status"] for r in app.shop.refunds(1001)] == ["reversed"]
    assert [e.kind for e in app.store.audit.entries("t")].count("rolled_back") == 1
    assert app.store.audit.verify().ok


def test_a_turn_much_longer_than_the_lease_ttl_keeps_its_lease(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TTL of 0.5 s and a turn held until the heartbeat renewed its lease 8 times (4+ TTLs):
    the '10-minute turn', scaled down. Contenders from this host and from another host are refused
    throughout; the turn then finishes normally."""
    app.store.leases.ttl_s = 0.5
    app.say("t", JANE)
    in_turn, finish = threading.Event(), threading.Event()
    real_invoke = app.runtime._invoke

    def slow_invoke(value: Any, thread_id: str, actor: str) -> None:
        in_turn.set()
        assert finish.wait(300)
        real_invoke(value, thread_id, actor)

    monkeypatch.setattr(app.runtime, "_invoke", slow_invoke)
    outcome: dict[str, Any] = {}
    turn = threading.Thread(target=lambda: outcome.update(r=app.runtime.send("t", "Where is order 1001?")))
    turn.start()
    try:
        assert in_turn.wait(120)
        (lease,) = app.store.leases._held.values()
        seen, deadline = 0, time.monotonic() + 120
        while lease.renewals < 8:
            assert time.monotonic() < deadline, "the heartbeat never renewed the turn's lease"
            if lease.renewals != seen:
                seen = lease.renewals
                with pytest.raises(RunBusyError):
                    app.runtime.send("t", "hello?")  # this host: the holder is alive
                with monkeypatch.context() as m:  # another host: only the (renewed) expiry counts
                    m.setattr(socket, "gethostname", lambda: "other-host")
                    with pytest.raises(RunBusyError):
                        app.store.leases.acquire("t")
            time.sleep(0.02)
        assert not lease.lost
    finally:
        finish.set()
        turn.join(300)
    assert outcome["r"].status == "replied"
    app.store.leases.acquire("t").release()  # released at the end of the turn
