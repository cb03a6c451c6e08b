"""The audit trail: appends, dedupe, queries, and verify catching every kind of tampering."""

from __future__ import annotations

from typing import Any

import pytest

from agent_kit import audit as audit_module
from agent_kit.audit import AUDIT_KINDS, GENESIS, AuditLog
from agent_kit.errors import AuditError
from agent_kit.store import Store

from ._procs import append_many, append_with_key, barrier, run_processes, store_args


def _fill(log: AuditLog, count: int) -> None:
    for n in range(1, count + 1):
        log.append("executed", actor="alice", thread_id=f"t{n % 2}", tool="refund",
                   action_hash=f"h{n}", data={"n": n, "note": "réfund ✓"})


def _raw(store: Store, sql: str, params: tuple[Any, ...] = ()) -> int:
    return store._db.execute(sql, params)


def test_append_returns_the_stored_entry_chained_to_the_previous(store: Store) -> None:
    first = store.audit.append("read", actor="agent", thread_id="t1", tool="lookup",
                               data={"fields": ["name"]}, checkpoint_id="c1", policy_version="v1")
    second = store.audit.append("approved", actor="bob", thread_id="t1", interrupt_id="i1")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    assert store.audit.get(1) == first and store.audit.get(2) == second
    assert store.audit.get(3) is None
    assert store.audit.head() == (2, second.hash)
    assert first.to_json()["data"] == {"fields": ["name"]}
    assert first.at.endswith("+00:00")


def test_empty_log_has_genesis_head_and_verifies(store: Store) -> None:
    assert store.audit.head() == (0, GENESIS)
    report = store.audit.verify()
    assert report.ok and report.count == 0 and report.head_hash == GENESIS


@pytest.mark.parametrize("kind", ["deleted", "", "Executed"])
def test_unknown_kind_is_refused(store: Store, kind: str) -> None:
    with pytest.raises(AuditError, match="unknown audit kind"):
        store.audit.append(kind, actor="agent")
    assert store.audit.head()[0] == 0


def test_every_declared_kind_is_accepted(store: Store) -> None:
    for kind in AUDIT_KINDS:
        store.audit.append(kind, actor="agent")
    assert [e.kind for e in store.audit.entries()] == list(AUDIT_KINDS)


def test_data_that_is_not_json_is_refused(store: Store) -> None:
    with pytest.raises(AuditError, match="not JSON"):
        store.audit.append("read", actor="agent", data={"x": object()})


def test_dedupe_key_makes_append_idempotent(store: Store) -> None:
    first = store.audit.append("approved", actor="bob", key="decision-1")
    again = store.audit.append("approved", actor="someone else", key="decision-1")
    other = store.audit.append("approved", actor="bob", key="decision-2")
    assert again == first
    assert other.seq == 2
    assert [e.key for e in store.audit.entries()] == ["decision-1", "decision-2"]


def test_by_keys_reads_the_entries_of_several_keys_at_once(store: Store) -> None:
    a = store.audit.append("approved", actor="bob", key="t:1:decided")
    store.audit.append("read", actor="agent")  # no key: never found by one
    b = store.audit.append("refused", actor="eve", key="t:1:refused")
    assert store.audit.by_keys(["t:1:decided", "t:1:refused", "t:1:requested"]) == {
        "t:1:decided": a, "t:1:refused": b}
    assert store.audit.by_keys([]) == {} and store.audit.by_keys(["nothing"]) == {}
    # the first entry of the chain has no head before it; a keyless append after keyed ones chains on
    assert store.audit.append("read", actor="agent").prev_hash == b.hash


def test_entries_filter_by_thread_kind_seq_and_limit(store: Store) -> None:
    _fill(store.audit, 6)
    store.audit.append("approved", actor="bob", thread_id="t1")
    assert [e.seq for e in store.audit.entries("t1")] == [1, 3, 5, 7]
    assert [e.seq for e in store.audit.entries("t1", kind="approved")] == [7]
    assert [e.seq for e in store.audit.entries(kind="executed", after_seq=2, limit=2)] == [3, 4]


def test_verify_passes_an_intact_log_and_reports_progress(store: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "_CHUNK", 7)
    _fill(store.audit, 30)
    seen: list[int] = []
    report = store.audit.verify(progress=seen.append, expected_head=store.audit.head()[1])
    assert report.ok and report.count == 30 and report.head_seq == 30
    assert report.first_bad_seq is None and report.problem is None
    assert seen == [7, 14, 21, 28, 30]


def test_verify_detects_an_edited_field(store: Store) -> None:
    _fill(store.audit, 10)
    _raw(store, "UPDATE audit SET body = replace(body, '\"actor\":\"alice\"', '\"actor\":\"mallory\"') "
                "WHERE seq = 5")
    assert store.audit.get(5).actor == "mallory"  # type: ignore[union-attr]
    report = store.audit.verify()
    assert not report.ok and report.first_bad_seq == 5 and "altered" in str(report.problem)
    assert report.count == 4


def test_verify_detects_an_edited_hash(store: Store) -> None:
    _fill(store.audit, 5)
    _raw(store, "UPDATE audit SET hash = ? WHERE seq = 3", ("f" * 64,))
    assert store.audit.verify().first_bad_seq == 3


def test_verify_detects_an_edit_whose_hash_was_recomputed(store: Store) -> None:
    _fill(store.audit, 6)
    import hashlib

    entry = store.audit.get(4)
    assert entry is not None
    (body,) = store._db.fetchone("SELECT body FROM audit WHERE seq = 4")  # type: ignore[misc]
    forged = body.replace('"n":4', '"n":400')
    rehashed = hashlib.sha256((entry.prev_hash + forged).encode()).hexdigest()
    _raw(store, "UPDATE audit SET body = ?, hash = ? WHERE seq = 4", (forged, rehashed))
    report = store.audit.verify()
    assert report.first_bad_seq == 4 and "not authentic" in str(report.problem)


def test_generated_columns_cannot_be_edited_on_their_own(store: Store) -> None:
    _fill(store.audit, 2)
    with pytest.raises(Exception):  # noqa: B017 - sqlite3 / psycopg raise their own error types
        _raw(store, "UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    assert store.audit.verify().ok


def test_verify_detects_a_deleted_entry(store: Store) -> None:
    _fill(store.audit, 10)
    _raw(store, "DELETE FROM audit WHERE seq = 4")
    report = store.audit.verify()
    assert not report.ok and report.first_bad_seq == 4 and "missing" in str(report.problem)


def test_verify_detects_a_deleted_first_entry(store: Store) -> None:
    _fill(store.audit, 3)
    _raw(store, "DELETE FROM audit WHERE seq = 1")
    assert store.audit.verify().first_bad_seq == 1


def test_verify_detects_two_swapped_entries(store: Store) -> None:
    _fill(store.audit, 10)
    _raw(store, "UPDATE audit SET seq = -1 WHERE seq = 3")
    _raw(store, "UPDATE audit SET seq = 3 WHERE seq = 4")
    _raw(store, "UPDATE audit SET seq = 4 WHERE seq = -1")
    report = store.audit.verify()
    assert not report.ok and report.first_bad_seq == 3 and "does not follow" in str(report.problem)


def test_verify_detects_a_truncated_tail_given_the_earlier_head(store: Store) -> None:
    store.audit.anchor = None  # no anchor: only a remembered head shows a clean cut
    _fill(store.audit, 10)
    _, earlier_head = store.audit.head()
    _raw(store, "DELETE FROM audit WHERE seq >= 8")
    assert store.audit.verify().ok  # without a remembered head or an anchor a clean cut cannot be seen
    report = store.audit.verify(expected_head=earlier_head)
    assert not report.ok and report.first_bad_seq == 8 and "truncated" in str(report.problem)


def test_verify_detects_a_truncated_tail_that_was_appended_to_again(store: Store) -> None:
    store.audit.anchor = None
    _fill(store.audit, 10)
    _, earlier_head = store.audit.head()
    _raw(store, "DELETE FROM audit WHERE seq >= 8")
    _fill(store.audit, 5)
    report = store.audit.verify(expected_head=earlier_head)
    assert not report.ok and report.first_bad_seq == 13


def test_verify_accepts_an_earlier_head_the_log_has_grown_past(store: Store) -> None:
    _fill(store.audit, 5)
    _, earlier_head = store.audit.head()
    _fill(store.audit, 5)
    assert store.audit.verify(expected_head=earlier_head).ok


def test_concurrent_appends_from_four_processes_keep_one_chain(store: Store) -> None:
    start = barrier(4)
    results = run_processes(append_many, [(store_args(store), p, 50, start) for p in range(4)])
    seqs = sorted(s for proc in results for s in proc)
    assert seqs == list(range(1, 201))
    report = store.audit.verify()
    assert report.ok and report.count == 200
    for proc in range(4):
        assert [e.data["n"] for e in store.audit.entries(f"t{proc}")] == list(range(50))


def test_concurrent_appends_with_one_key_record_one_entry(store: Store) -> None:
    start = barrier(4)
    seqs = run_processes(append_with_key, [(store_args(store), p, "once", start) for p in range(4)])
    assert seqs == [1, 1, 1, 1]
    assert len(store.audit.entries()) == 1 and store.audit.verify().ok
