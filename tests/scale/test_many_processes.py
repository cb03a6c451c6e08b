"""Scale-out on Postgres: four OS processes serve 1,000 runs to an approval on one schema, then
race each other to approve them; every approved refund executes exactly once.

Each worker (``worker.py``) drives 250 threads of its own, each refunding its own $100 order, to
the support lead's approval; once all 1,000 wait, each worker approves the threads the *other*
three created, all in the same order, so up to three workers race for every thread. The system
of record (the fixture app's records.sqlite), the execution ledger, the audit trail and the inbox must then agree:
1,000 refunds, one per order, none twice, none lost, and the losers were told so.

``AGENT_KIT_SCALE_RUNS`` lowers the number of runs for a quick local look (a multiple of 4); CI
runs the default 1,000.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from agent_kit.store import Store
from tests._pg import PG_URL, drop_schema
from tests.fixture_app import Records

from .worker import FIRST_ORDER, WorkerArgs, add_orders, run_workers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 4
RUNS = int(os.environ.get("AGENT_KIT_SCALE_RUNS") or 1000)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"ak_scale_{uuid.uuid4().hex[:10]}"
    yield schema
    drop_schema(schema)


def _one(schema: str, sql: str) -> tuple[object, ...]:
    with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema}") as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


def test_a_thousand_runs_approved_concurrently_by_four_processes_execute_exactly_once(
        tmp_path: Path, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert RUNS % WORKERS == 0, f"AGENT_KIT_SCALE_RUNS={RUNS} must be a multiple of {WORKERS}"
    per_worker = RUNS // WORKERS
    monkeypatch.setenv("AGENT_KIT_HOME", str(tmp_path))
    monkeypatch.delenv("AGENT_KIT_DB_URL", raising=False)
    with Store.open(db_url=PG_URL, schema=pg_schema) as store:  # the fresh schema, made once up front
        assert store.backend == "postgres" and store.inbox.list() == []
    with Records.at_home(tmp_path) as shop:
        add_orders(shop, RUNS)
        refunds_before = len(shop.refunds())

    started = time.monotonic()
    reports = run_workers([WorkerArgs(index=i, workers=WORKERS, per_worker=per_worker, home=str(tmp_path),
                                      db_url=PG_URL, schema=pg_schema) for i in range(WORKERS)], timeout=900)
    wall = time.monotonic() - started

    serve_s = max(r.serve_done for r in reports) - min(r.serve_started for r in reports)
    approve_s = max(r.approve_done for r in reports) - min(r.approve_started for r in reports)
    busy, stale = sum(r.busy for r in reports), sum(r.stale for r in reports)
    print(f"\n{RUNS} runs, {WORKERS} processes: wall {wall:.1f} s; serve {serve_s:.1f} s "
          f"({RUNS / serve_s:.1f} runs/s to the approval); approve {approve_s:.1f} s "
          f"({RUNS / approve_s:.1f} approvals/s); losers: {busy} RunBusyError, {stale} StaleInterruptError; "
          f"own-thread turns retried after RunBusyError: {sum(r.setup_retries for r in reports)}; "
          f"approved per worker: {[r.approved for r in reports]}")

    # Every run reached its approval, and every approval came from a worker that did not create it.
    assert [r.paused for r in reports] == [per_worker] * WORKERS
    approved = Counter(t for r in reports for t in r.approved_threads)
    assert len(approved) == RUNS and set(approved.values()) == {1}
    for r in reports:
        assert not any(t.startswith(f"p{r.index}-") for t in r.approved_threads)
    # The workers did race: every thread had two or three contenders, and the losers were told.
    assert busy + stale > 0

    # The system of record: exactly one $80 refund per order, nothing else refunded.
    with sqlite3.connect(Records.at_home(tmp_path).path) as conn:
        count, orders, lo, hi, cents = conn.execute(
            "SELECT count(*), count(DISTINCT order_id), min(order_id), max(order_id), "
            "CAST(round(sum(amount) * 100) AS INTEGER) FROM refunds WHERE order_id >= ?", (FIRST_ORDER,)).fetchone()
        total = conn.execute("SELECT count(*) FROM refunds").fetchone()[0]
    assert (count, orders, lo, hi, cents) == (RUNS, RUNS, FIRST_ORDER, FIRST_ORDER + RUNS - 1, 8000 * RUNS)
    assert total - refunds_before == RUNS

    # The ledger and the audit trail agree with it, and nothing waits any more.
    assert _one(pg_schema, "SELECT count(*), count(DISTINCT thread_id) FROM ledger "
                           "WHERE tool = 'issue_refund' AND status = 'done'") == (RUNS, RUNS)
    assert _one(pg_schema, "SELECT count(*) FROM ledger WHERE status <> 'done'") == (0,)
    with Store.open(db_url=PG_URL, schema=pg_schema) as store:
        executed = store.audit.entries(kind="executed")
        assert len(executed) == RUNS and len({e.thread_id for e in executed}) == RUNS
        assert {e.tool for e in executed} == {"issue_refund"}
        approvals = store.audit.entries(kind="approved")
        assert len(approvals) == RUNS and len({e.thread_id for e in approvals}) == RUNS
        assert store.inbox.list() == []
        report = store.audit.verify()
        assert report.ok, report
