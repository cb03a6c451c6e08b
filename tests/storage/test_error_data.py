"""Errors carry the data a caller needs to act on them, not only a message (both backends)."""

from __future__ import annotations

import pytest

from agent_kit import UsageError
from agent_kit.errors import AgentKitError, ApprovalError, RunBusyError, StaleInterruptError
from agent_kit.inbox import PendingItem
from agent_kit.store import Store

from .test_inbox import _item


def test_run_busy_names_the_thread_and_its_holder(store: Store) -> None:
    lease = store.leases.acquire("t1", owner="worker-a")
    try:
        with pytest.raises(RunBusyError) as info:
            store.leases.acquire("t1", owner="worker-b")
        assert info.value.thread_id == "t1"
        assert info.value.owner == lease.owner
        assert lease.owner is not None and lease.owner in str(info.value)
    finally:
        lease.release()


def test_stale_interrupt_names_the_interrupt(store: Store) -> None:
    with pytest.raises(StaleInterruptError) as info:
        store.inbox.add_approval("i-gone", "lee", "lead")
    assert info.value.interrupt_id == "i-gone"


def test_repeat_approval_names_the_approver_and_the_reason(store: Store) -> None:
    store.inbox.put(_item(1))
    store.inbox.add_approval("i00001", "lee", "lead")
    with pytest.raises(ApprovalError) as info:
        store.inbox.add_approval("i00001", "lee", "lead")
    assert (info.value.approver, info.value.reason) == ("lee", "repeat_approval")
    assert [a["approver"] for a in store.inbox.get("i00001").approvals] == ["lee"]  # type: ignore[union-attr]


def test_misuse_is_a_usage_error_that_plain_python_guards_also_catch() -> None:
    with pytest.raises(UsageError) as info:
        PendingItem.from_json({**_item(1).to_json(), "kind": "wish"})
    assert isinstance(info.value, AgentKitError)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert "'wish'" in str(info.value)
