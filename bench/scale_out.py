"""Scale-out: approvals completed per second by 1, 2 and 4 worker processes, Postgres against SQLite.

For each backend and process count, on a fresh store (a new Postgres schema, or a new SQLite home)
with its own back office (``shop.sqlite``, one $100 order per run):

1. Prepare (not timed): each worker drives its share of threads to the support lead's approval
   ("Hi, I am Jane Doe, 94107", then "Refund $80 on order N").
2. Approve (timed, in slices): at each slice's start barrier every worker approves its share of
   the threads worker ``i+1`` prepared (each resume happens in another process than the one that
   paused it) through ``AgentRuntime.approve``: lease, stale check, resume validation, the refund
   through the execution ledger, audit. A slice lasts from the start barrier until the last
   worker is done; its rate is its approvals / that time; the median slice is reported.

The anchor of each Postgres line is SQLite with the same number of processes, measured in the
same run with its slices interleaved with Postgres's (the first alternates). Workers are forked from a forkserver that has imported the application once, so a
worker costs milliseconds to start and inherits no connection.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

__all__ = ["run"]

NAME = "scale_out"
PG_URL = os.environ.get("AGENT_KIT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The server's database the benchmark works in, each run in a fresh schema it drops after."""
PROCESSES = (1, 2, 4)
"""Postgres at n processes reaches at least half of SQLite's approvals/s at n processes on one
machine (SQLite cannot go beyond one machine; Postgres pays a network round trip per statement)."""
FIRST_ORDER = 20_000
APPROVERS = ("lee", "sam", "morgan", "lee")


def _add_orders(home: Path, count: int) -> None:
    from tools.shop import Shop

    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    items = json.dumps([{"sku": "SC-100", "name": "Bench item", "qty": 1, "price": 100.0}])
    with Shop.at_home(home) as shop, shop._transaction() as db:
        db["orders"].insert_all(
            [{"id": FIRST_ORDER + i, "customer": "cus_jane", "status": "delivered", "previous_status": None,
              "items": items, "total_cents": 10_000, "payment_method": "pm_jane_visa",
              "ship_line1": "500 Market St", "ship_city": "San Francisco", "ship_zip": "94107", "shipped": 1,
              "created_at": now, "updated_at": now} for i in range(count)], batch_size=500)


def _retry_busy(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Call ``fn``; nobody else runs the thread, so a RunBusyError is a lease not yet freed."""
    from agent_kit.errors import RunBusyError

    for attempt in range(200):
        try:
            return fn(*args, **kwargs), attempt
        except RunBusyError:
            time.sleep(0.002 * (attempt + 1))
    raise RuntimeError(f"{fn.__name__}{args} stayed busy through 200 attempts")


def _worker(cfg: dict[str, Any], index: int, go: Any, done: Any, results: Any) -> None:
    """One worker: prepare its threads, then per slice wait for the go, approve its neighbour's
    share of that slice and meet the others at ``done`` (the parent times go -> done)."""
    store = None
    try:
        os.environ["AGENT_KIT_HOME"] = cfg["home"]
        os.environ.pop("AGENT_KIT_DB_URL", None)
        os.environ.pop("AGENT_KIT_MODEL", None)
        from agent_kit import AgentRuntime
        from agent_kit.store import Store
        from graphs.customer_service import build_graph

        if cfg["db_url"]:
            store = Store.open(db_url=cfg["db_url"], schema=cfg["schema"])
        else:
            store = Store.open(home=cfg["home"])
        runtime = AgentRuntime(build_graph(home=cfg["home"], store=store), store=store)
        n, per, slices = cfg["processes"], cfg["per_worker"], cfg["slices"]
        retries = 0
        for k in range(per):
            thread = f"w{index}-{k}"
            _, r1 = _retry_busy(runtime.send, thread, "Hi, I am Jane Doe, 94107")
            result, r2 = _retry_busy(runtime.send, thread, f"Refund $80 on order {FIRST_ORDER + index * per + k}")
            retries += r1 + r2
            if result.status != "paused":
                raise RuntimeError(f"{thread} did not pause: {result.to_json()}")
        other, chunk = (index + 1) % n, per // slices
        done.wait(timeout=600)  # prepared
        for s in range(slices):
            go.wait(timeout=600)
            for k in range(s * chunk, (s + 1) * chunk):
                result, r = _retry_busy(runtime.approve, f"w{other}-{k}", approver=APPROVERS[index % len(APPROVERS)])
                retries += r
                if result.status != "replied":
                    raise RuntimeError(f"w{other}-{k} did not finish: {result.to_json()}")
            done.wait(timeout=600)
        results.put((index, None, {"retries": retries}))
    except BaseException:  # noqa: BLE001 - reported to the parent
        go.abort()
        done.abort()
        results.put((index, traceback.format_exc(), None))
    finally:
        if store is not None:
            store.close()


class _Group:
    """``processes`` workers on one fresh store of one backend, driven slice by slice."""

    def __init__(self, ctx: Any, backend: str, processes: int, approvals: int, slices: int, root: Path) -> None:
        self.backend, self.processes, self.approvals, self.slices = backend, processes, approvals, slices
        self.home = root / f"{backend}_{processes}p"
        self.home.mkdir()
        self.schema = f"ak_bench_{uuid.uuid4().hex[:10]}" if backend == "postgres" else None
        _add_orders(self.home, approvals)
        if self.schema:  # made once here, so the workers' opens do not all queue on creating it
            from agent_kit.store import Store

            Store.open(db_url=PG_URL, schema=self.schema).close()
        cfg = {"home": str(self.home), "db_url": PG_URL if self.schema else None, "schema": self.schema,
               "processes": processes, "per_worker": approvals // processes, "slices": slices}
        self.go, self.done, self.results = ctx.Barrier(processes + 1), ctx.Barrier(processes + 1), ctx.Queue()
        self.procs = [ctx.Process(target=_worker, args=(cfg, i, self.go, self.done, self.results))
                      for i in range(processes)]
        for proc in self.procs:
            proc.start()
        self.times: list[float] = []

    def prepared(self) -> None:
        self._wait(self.done)

    def slice(self) -> None:
        """Run one timed slice: every worker approves its share, concurrently."""
        t0 = time.perf_counter()
        self._wait(self.go)
        self._wait(self.done)
        self.times.append(time.perf_counter() - t0)

    def _wait(self, barrier: Any) -> None:
        import threading

        try:
            barrier.wait(timeout=600)
        except threading.BrokenBarrierError:
            self.finish()  # raises with the worker's traceback
            raise

    def kill(self) -> None:
        """Stop this group's workers (after a failure elsewhere) and drop its schema."""
        self.go.abort()
        self.done.abort()
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        if self.schema:
            _drop_schema(self.schema)

    def finish(self) -> dict[str, Any]:
        try:
            reports = []
            for _ in self.procs:
                index, error, report = self.results.get(timeout=600)
                if error:
                    raise RuntimeError(f"scale_out worker {index} ({self.backend}, {self.processes}p) "
                                       f"failed:\n{error}")
                reports.append(report)
        finally:
            for proc in self.procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
            if self.schema:
                _drop_schema(self.schema)
        _check_refunds(self.home, self.approvals)
        rates = sorted(self.approvals / self.slices / t for t in self.times)
        return {"per_s": statistics.median(rates), "slices": rates,
                "retries": sum(r["retries"] for r in reports)}


def _measure(ctx: Any, processes: int, approvals: int, slices: int, root: Path) -> dict[str, dict[str, Any]]:
    """SQLite and Postgres at ``processes`` workers each, their slices interleaved (which backend
    goes first alternates), so drift on a shared machine hits both alike."""
    groups: list[_Group] = []
    try:
        for backend in ("sqlite", "postgres"):
            groups.append(_Group(ctx, backend, processes, approvals, slices, root))
        for g in groups:
            g.prepared()
        for s in range(slices):
            for g in groups if s % 2 == 0 else groups[::-1]:
                g.slice()
    except BaseException:
        for g in groups:
            g.kill()
        raise
    return {g.backend: g.finish() for g in groups}


def _check_refunds(home: Path, total: int) -> None:
    import sqlite3

    with sqlite3.connect(home / "shop.sqlite") as conn:
        count, orders = conn.execute("SELECT count(*), count(DISTINCT order_id) FROM refunds "
                                     "WHERE order_id >= ?", (FIRST_ORDER,)).fetchone()
    if (count, orders) != (total, total):
        raise RuntimeError(f"expected {total} refunds on {total} orders, found {count} on {orders}")


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["agent_kit", "agent_kit.store", "graphs.customer_service",
                                "langgraph.checkpoint.postgres", "langgraph.checkpoint.sqlite", "bench.scale_out"])
    return ctx


def run(quick: bool = False) -> list[str]:
    """Measure, print a readable table, and return the BENCH lines (one per process count)."""
    approvals, slices = (8, 2) if quick else (96, 4)  # per backend and process count
    ctx = _context()
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    root = Path(tempfile.mkdtemp(prefix="ak_scale_out_"))
    try:
        for n in PROCESSES:
            for backend, row in _measure(ctx, n, approvals, slices, root).items():
                rows[(backend, n)] = row
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"  concurrent approvals, each resumed in another process than the one that paused it; "
          f"{approvals} per backend and process count in {slices} timed slices (median slice shown), "
          f"SQLite and Postgres slices interleaved{'; quick' if quick else ''}; {os.cpu_count()} cores")
    print(f"  {'processes':>9} {'sqlite /s':>10} {'postgres /s':>12} {'pg / sqlite':>12} {'pg vs pg 1p':>12}")
    pg1 = rows[("postgres", 1)]["per_s"]
    for n in PROCESSES:
        lite, pg = rows[("sqlite", n)], rows[("postgres", n)]
        print(f"  {n:>9} {lite['per_s']:>10.1f} {pg['per_s']:>12.1f} {pg['per_s'] / lite['per_s']:>12.2f} "
              f"{pg['per_s'] / pg1:>11.2f}x")
    print("  slices (approvals/s): " + "; ".join(
        f"{b} {n}p " + " ".join(f"{x:.1f}" for x in r["slices"]) for (b, n), r in rows.items()))
    retries = sum(r["retries"] for r in rows.values())
    if retries:
        print(f"  {retries} turns retried after RunBusyError on a thread no other process was running "
              "(a Postgres lease is freed asynchronously after its connection closes)")
    lines: list[str] = []
    for n in PROCESSES:
        lite, pg = rows[("sqlite", n)], rows[("postgres", n)]
        ratio = pg["per_s"] / lite["per_s"]
        line = (f"BENCH scale_out_postgres_{n}p ours={pg['per_s']:.1f} anchor={lite['per_s']:.1f} "
                f"unit=approvals/s ratio={ratio:.2f} goal=none(reported)")
        print(line, flush=True)
        lines.append(line)
    return lines


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
