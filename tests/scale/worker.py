"""A worker process of the scale-out test: it serves conversations, then races the others to approve.

Spawned (nothing inherited) by :func:`run_workers`; each worker opens the one Postgres schema (or
SQLite home) and the fixture app's one system of record from plain arguments, so it is what a real
deployment's worker is: an OS process with its own connections.

- Phase 1 (serve): the worker drives its own threads (``p<index>-<n>``), each refunding its own
  order, to the staff approval they pause on.
- Barrier: every worker waits until all threads of all workers are paused.
- Phase 2 (approve): the worker lists the inbox and approves every paused thread that *another*
  worker created, in the same order as everyone else, so two or three workers race for each
  thread. A loser gets :class:`RunBusyError` (the winner holds the thread's lease) or
  :class:`StaleInterruptError` (the winner has already finished); it counts it and moves on. It
  lists again until no other worker's thread is left in the inbox.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["APPROVERS", "JANE", "WorkerArgs", "WorkerReport", "add_orders", "order_id", "run_workers", "serve"]

JANE = "Hi, I am Jane Doe, 94107"
APPROVERS = ("lee", "sam", "morgan", "lee")
"""Who approves in each worker: two support leads and a supervisor (who may do what a lead may)."""
FIRST_ORDER = 10_000
"""Orders made for the test are numbered from here (the seed's are 1001..2001)."""
_CTX = multiprocessing.get_context("spawn")


def order_id(worker: int, n: int, per_worker: int) -> int:
    """The order that thread ``n`` of ``worker`` refunds (one order per run)."""
    return FIRST_ORDER + worker * per_worker + n


def add_orders(shop: Any, count: int) -> None:
    """Put ``count`` delivered $100 orders of cus_jane into the system of record, in one transaction."""
    shop.add_orders(FIRST_ORDER, count, customer_id="cus_jane", total=100.0)


@dataclass(frozen=True)
class WorkerArgs:
    """What a worker needs (plain values, so it crosses the spawn boundary)."""

    index: int
    workers: int
    per_worker: int
    home: str
    db_url: str | None = None
    schema: str | None = None
    approve_only_others: bool = True


@dataclass
class WorkerReport:
    """What one worker did, and when (epoch seconds, comparable across processes)."""

    index: int
    paused: int = 0
    approved: int = 0
    busy: int = 0
    """Approvals lost to a worker holding the thread's lease (RunBusyError)."""
    stale: int = 0
    """Approvals lost to a worker that had already finished the thread (StaleInterruptError)."""
    setup_retries: int = 0
    """Chat turns on the worker's own thread retried after RunBusyError (see the report)."""
    passes: int = 0
    serve_started: float = 0.0
    serve_done: float = 0.0
    approve_started: float = 0.0
    approve_done: float = 0.0
    approved_threads: list[str] = field(default_factory=list)


def _open(args: WorkerArgs) -> tuple[Any, Any]:
    os.environ["AGENT_KIT_HOME"] = args.home
    os.environ.pop("AGENT_KIT_DB_URL", None)
    os.environ.pop("AGENT_KIT_MODEL", None)
    from agent_kit import AgentRuntime
    from agent_kit.store import Store
    from tests.fixture_app import build_graph

    if args.db_url:
        store = Store.open(db_url=args.db_url, schema=args.schema)
    else:
        store = Store.open(home=args.home)
    graph = build_graph(home=args.home, store=store, policy=_per_order_policy(args.home))
    return AgentRuntime(graph, store=store), store


def _per_order_policy(home: str) -> Path:
    """The fixture app's policy with the refund total kept per order instead of per customer.

    Every run refunds $80 on its own order of Jane's, so each needs exactly one support lead; with
    the policy's per-customer total the thousand runs would add up past the four-eyes and
    escalation thresholds, which is what the limit tests prove, not what this test is about.
    """
    from tests.fixture_app.agent import POLICY

    text = POLICY.read_text()
    per_customer = "customer_refunds_24h: {sum: args.amount, per: context.customer_id, within: 24h}"
    assert per_customer in text, "the fixture app's refund limit changed: update this test's policy"
    target = Path(home) / f"scale_policy_{os.getpid()}.yaml"  # one a process: workers write at once
    target.write_text(text.replace(per_customer, per_customer.replace("context.customer_id", "args.order_id")))
    return target


def _own_turn(runtime: Any, thread: str, message: str, report: WorkerReport) -> Any:
    """One chat turn on this worker's own thread. Nobody else touches the thread, so a
    RunBusyError here can only be this worker's own previous lease not yet freed by the server;
    retried (bounded) and counted."""
    from agent_kit.errors import RunBusyError

    for attempt in range(200):
        try:
            return runtime.send(thread, message)
        except RunBusyError:
            report.setup_retries += 1
            time.sleep(0.002 * (attempt + 1))
    raise AssertionError(f"thread {thread} stayed busy through 200 attempts")


def serve(args: WorkerArgs, start: Any, paused: Any) -> WorkerReport:
    """Phase 1, barrier, phase 2 (see the module docstring); returns what this worker did."""
    from agent_kit.errors import RunBusyError, StaleInterruptError

    runtime, store = _open(args)
    report = WorkerReport(index=args.index)
    approver = APPROVERS[args.index % len(APPROVERS)]
    try:
        start.wait(timeout=120)  # every worker has imported and opened: serve together
        report.serve_started = time.time()
        for n in range(args.per_worker):
            thread = f"p{args.index}-{n}"
            _own_turn(runtime, thread, JANE, report)
            result = _own_turn(runtime, thread, f"Refund $80 on order {order_id(args.index, n, args.per_worker)}",
                               report)
            if result.status != "paused" or result.pending[0]["kind"] != "approval":
                raise AssertionError(f"{thread} did not pause on an approval: {result.to_json()}")
            report.paused += 1
        report.serve_done = time.time()
        paused.wait(timeout=600)  # every run of every worker waits on a person
        report.approve_started = time.time()
        mine = f"p{args.index}-"
        while True:
            items = [i for i in runtime.pending(kind="approval")
                     if not (args.approve_only_others and i.thread_id.startswith(mine))]
            if not items:
                break
            report.passes += 1
            for item in items:
                try:
                    runtime.approve(item.thread_id, approver=approver, interrupt_id=item.interrupt_id)
                except RunBusyError:
                    report.busy += 1
                except StaleInterruptError:
                    report.stale += 1
                else:
                    report.approved += 1
                    report.approved_threads.append(item.thread_id)
        report.approve_done = time.time()
    finally:
        store.close()
    return report


def _child(args: WorkerArgs, start: Any, paused: Any, results: Any) -> None:
    try:
        results.put((args.index, True, asdict(serve(args, start, paused))))
    except BaseException:  # noqa: BLE001 - reported to the parent with the child's traceback
        results.put((args.index, False, traceback.format_exc()))
        start.abort()
        paused.abort()


def run_workers(args: Sequence[WorkerArgs], timeout: float = 600) -> list[WorkerReport]:
    """Run one spawned worker per ``args`` and return their reports, in order.

    Raises:
        AssertionError: a worker failed (with its traceback) or did not finish within ``timeout``.
    """
    start, paused, results = _CTX.Barrier(len(args)), _CTX.Barrier(len(args)), _CTX.Queue()
    procs = [_CTX.Process(target=_child, args=(a, start, paused, results), name=f"scale-worker-{a.index}")
             for a in args]
    for proc in procs:
        proc.start()
    reports: dict[int, WorkerReport] = {}
    try:
        deadline = time.monotonic() + timeout
        for _ in procs:
            index, ok, value = results.get(timeout=max(1.0, deadline - time.monotonic()))
            if not ok:
                raise AssertionError(f"worker {index} failed:\n{value}")
            reports[index] = WorkerReport(**value)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return [reports[a.index] for a in args]
