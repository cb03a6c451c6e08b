"""Scale-out on Postgres: approvals completed per second by 1, 2 and 4 worker processes, agent_kit
against the same number of bare-LangGraph human-in-the-loop workers.

Three sides, each on a fresh Postgres schema per process count:

- ``agent_kit``: the same agent as the anchor's (the scripted model's ``pay`` call, the bare
  ``pay`` tool) under ``create_permissioned_agent`` with the benchmark policy (a payment over 10
  needs a lead), through ``AgentRuntime``: the ratio against the anchor is what the permission
  layer costs when it scales out. This is the goal's line.
- ``reference``: the reference support agent, for context (reported, no goal): "Hi, I am Jane
  Doe, 94107" then "Refund $80 on order N" (one $100 order per run in the back office
  ``shop.sqlite``; the reference policy with its refund total kept per order, so every run needs
  exactly one support lead, as in ``tests/scale/worker.py``). Its approvals do the application's
  own work besides (facts read from the back office, the refund written to its SQLite file).
- ``langgraph`` (the anchor): LangChain ``create_agent`` + ``HumanInTheLoopMiddleware`` on
  ``PostgresSaver`` pausing on the ``pay`` call.

1. Prepare (not timed): each worker drives its share of threads to a pause on a person.
2. Approve (timed, in slices): at each slice's start barrier every worker approves its share of
   the threads worker ``i+1`` prepared (each resume happens in another process than the one that
   paused it). agent_kit: ``AgentRuntime.approve`` (lease, stale check, resume validation, the
   effect through the execution ledger, audit). Anchor: ``invoke(Command(resume=approve))``. A
   slice lasts from the start barrier until the last worker is done; its rate is its approvals /
   that time; the median slice is reported.

The sides at one process count run at once, their slices interleaved (the order rotates), so
drift on a shared machine hits them alike. Workers are forked from a forkserver
that has imported the application once, so a worker costs milliseconds to start and inherits no
connection.
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

from . import Result

__all__ = ["run"]

NAME = "scale_out"
PG_URL = os.environ.get("AGENT_KIT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The server's database the benchmark works in, each run in a fresh schema it drops after."""
PROCESSES = (1, 2, 4)
SIDES = ("agent_kit", "reference", "langgraph")
FIRST_ORDER = 20_000
APPROVERS = ("lee", "sam", "morgan", "lee")
"""Who approves, by worker (the reference policy's support leads; the benchmark policy's are lee and sam)."""
PAY_APPROVERS = ("lee", "sam")


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


def _per_order_policy(home: Path) -> Path:
    """The reference policy with the refund total kept per order instead of per customer: every
    run refunds $80 on its own order of Jane's and needs exactly one support lead (the reference
    per-customer total would add the runs up past the four-eyes and escalation thresholds)."""
    source = Path(__file__).resolve().parents[1] / "policies" / "customer_service.yaml"
    text = source.read_text()
    per_customer = "customer_refunds_24h: {sum: args.amount, per: context.customer_id, within: 24h}"
    if per_customer not in text:
        raise RuntimeError("the reference refund limit changed: update bench/scale_out.py's policy copy")
    target = home / "scale_policy.yaml"
    target.write_text(text.replace(per_customer, per_customer.replace("context.customer_id", "args.order_id")))
    return target


class _OursPay:
    """An agent_kit worker running the anchor's agent (the ``pay`` call) under the benchmark policy."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        from agent_kit import AgentRuntime

        from bench._app import PAY, ours_graph

        graph, self.store = ours_graph(Path(cfg["home"]), PAY, "paid", db_url=cfg["db_url"], schema=cfg["schema"])
        self.runtime = AgentRuntime(graph, store=self.store)

    def prepare(self, thread: str, n: int) -> int:
        result, r = _retry_busy(self.runtime.send, thread, "pay ann 50")
        if result.status != "paused":
            raise RuntimeError(f"{thread} did not pause: {result.to_json()}")
        return r

    def approve(self, thread: str, approver: str) -> int:
        pending = self.runtime.pending(thread, kind="approval")
        approver = PAY_APPROVERS[APPROVERS.index(approver) % len(PAY_APPROVERS)]
        result, r = _retry_busy(self.runtime.approve, pending[0], approver=approver)
        if result.status != "replied" or result.reply != "paid":
            raise RuntimeError(f"{thread} did not finish: {result.to_json()}")
        return r

    def close(self) -> None:
        self.store.close()


class _Ours:
    """An agent_kit worker: the reference support agent on the store."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        os.environ["AGENT_KIT_HOME"] = cfg["home"]
        os.environ.pop("AGENT_KIT_DB_URL", None)
        os.environ.pop("AGENT_KIT_MODEL", None)
        from agent_kit import AgentRuntime
        from agent_kit.store import Store
        from graphs.customer_service import build_graph

        self.store = Store.open(home=cfg["home"], db_url=cfg["db_url"], schema=cfg["schema"])
        graph = build_graph(home=cfg["home"], store=self.store, policy=Path(cfg["home"]) / "scale_policy.yaml")
        self.runtime = AgentRuntime(graph, store=self.store)
        self.first_order = cfg["first_order"]

    def prepare(self, thread: str, n: int) -> int:
        _, r1 = _retry_busy(self.runtime.send, thread, "Hi, I am Jane Doe, 94107")
        result, r2 = _retry_busy(self.runtime.send, thread, f"Refund $80 on order {self.first_order + n}")
        if result.status != "paused":
            raise RuntimeError(f"{thread} did not pause: {result.to_json()}")
        return r1 + r2

    def approve(self, thread: str, approver: str) -> int:
        pending = self.runtime.pending(thread, kind="approval")
        result, r = _retry_busy(self.runtime.approve, pending[0], approver=approver)
        if result.status != "replied":
            raise RuntimeError(f"{thread} did not finish: {result.to_json()}")
        return r

    def close(self) -> None:
        self.store.close()


class _Anchor:
    """A bare-LangGraph worker: ``create_agent`` + ``HumanInTheLoopMiddleware`` on ``PostgresSaver``."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import psycopg
        from langchain.agents import create_agent
        from langchain.agents.middleware import HumanInTheLoopMiddleware
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        from bench._app import PAY, pay, scripted

        self.conn = psycopg.connect(cfg["db_url"], autocommit=True, prepare_threshold=0, row_factory=dict_row,
                                    options=f"-csearch_path={cfg['schema']}")
        self.agent = create_agent(scripted(PAY, "paid"), [pay], checkpointer=PostgresSaver(self.conn),
                                  middleware=[HumanInTheLoopMiddleware(interrupt_on={"pay": True},
                                                                       interrupt_mode="per_call")])

    def prepare(self, thread: str, n: int) -> int:
        from langchain_core.messages import HumanMessage

        out = self.agent.invoke({"messages": [HumanMessage(content="pay ann 50")]},
                                {"configurable": {"thread_id": thread}}, durability="sync")
        if not out.get("__interrupt__"):
            raise RuntimeError(f"{thread} did not pause")
        return 0

    def approve(self, thread: str, approver: str) -> int:
        from langgraph.types import Command

        out = self.agent.invoke(Command(resume={"type": "approve"}), {"configurable": {"thread_id": thread}},
                                durability="sync")
        if out["messages"][-1].content != "paid":
            raise RuntimeError(f"{thread} did not finish: {out['messages'][-1]}")
        return 0

    def close(self) -> None:
        self.conn.close()


def _worker(cfg: dict[str, Any], index: int, go: Any, done: Any, results: Any) -> None:
    """One worker: prepare its threads, then per slice wait for the go, approve its neighbour's
    share of that slice and meet the others at ``done`` (the parent times go -> done)."""
    side: Any = None
    try:
        side = {"agent_kit": _OursPay, "reference": _Ours, "langgraph": _Anchor}[cfg["side"]](cfg)
        n, per, slices = cfg["processes"], cfg["per_worker"], cfg["slices"]
        retries = 0
        for k in range(per):
            retries += side.prepare(f"w{index}-{k}", index * per + k)
        other, chunk = (index + 1) % n, per // slices
        done.wait(timeout=600)  # prepared
        for s in range(slices):
            go.wait(timeout=600)
            for k in range(s * chunk, (s + 1) * chunk):
                retries += side.approve(f"w{other}-{k}", APPROVERS[index % len(APPROVERS)])
            done.wait(timeout=600)
        results.put((index, None, {"retries": retries}))
    except BaseException:  # noqa: BLE001 - reported to the parent
        go.abort()
        done.abort()
        results.put((index, traceback.format_exc(), None))
    finally:
        if side is not None:
            side.close()


class _Group:
    """``processes`` workers of one side on one fresh Postgres schema, driven slice by slice."""

    def __init__(self, ctx: Any, side: str, processes: int, approvals: int, slices: int, root: Path) -> None:
        self.side, self.processes, self.approvals, self.slices = side, processes, approvals, slices
        self.home = root / f"{side}_{processes}p"
        self.home.mkdir()
        self.schema = f"ak_bench_{uuid.uuid4().hex[:10]}"
        if side in ("agent_kit", "reference"):
            if side == "reference":
                _add_orders(self.home, approvals)
                _per_order_policy(self.home)
            from agent_kit.store import Store

            # Made once here, so the workers' opens do not all queue on creating it.
            Store.open(home=self.home, db_url=PG_URL, schema=self.schema).close()
        else:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={self.schema}") as conn:
                PostgresSaver(conn).setup()  # type: ignore[arg-type]
        cfg = {"side": side, "home": str(self.home), "db_url": PG_URL, "schema": self.schema,
               "processes": processes, "per_worker": approvals // processes, "slices": slices,
               "first_order": FIRST_ORDER}
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
        _drop_schema(self.schema)

    def finish(self) -> dict[str, Any]:
        try:
            reports = []
            for _ in self.procs:
                index, error, report = self.results.get(timeout=600)
                if error:
                    raise RuntimeError(f"scale_out worker {index} ({self.side}, {self.processes}p) "
                                       f"failed:\n{error}")
                reports.append(report)
            if self.side == "agent_kit":
                _check_payments(self.schema, self.approvals)
        finally:
            for proc in self.procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
            _drop_schema(self.schema)
        if self.side == "reference":
            _check_refunds(self.home, self.approvals)
        rates = sorted(self.approvals / self.slices / t for t in self.times)
        return {"per_s": statistics.median(rates), "slices": rates,
                "retries": sum(r["retries"] for r in reports)}


def _measure(ctx: Any, processes: int, approvals: int, slices: int, root: Path) -> dict[str, dict[str, Any]]:
    """Every side at ``processes`` workers each, their slices interleaved (the order rotates, each
    side first as often as the others), so drift on a shared machine hits them alike."""
    groups: list[_Group] = []
    try:
        for side in SIDES:
            groups.append(_Group(ctx, side, processes, approvals, slices, root))
        for g in groups:
            g.prepared()
        for s in range(slices):
            for g in groups[s % len(groups):] + groups[:s % len(groups)]:
                g.slice()
    except BaseException:
        for g in groups:
            g.kill()
        raise
    return {g.side: g.finish() for g in groups}


def _check_refunds(home: Path, total: int) -> None:
    import sqlite3

    with sqlite3.connect(home / "shop.sqlite") as conn:
        count, orders = conn.execute("SELECT count(*), count(DISTINCT order_id) FROM refunds "
                                     "WHERE order_id >= ?", (FIRST_ORDER,)).fetchone()
    if (count, orders) != (total, total):
        raise RuntimeError(f"expected {total} refunds on {total} orders, found {count} on {orders}")


def _check_payments(schema: str, total: int) -> None:
    """Every approval paid once: ``total`` finished payments in the execution ledger."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema}") as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT thread_id) FROM ledger "
                           "WHERE tool = 'pay' AND status = 'done'").fetchone()
    if row is None or tuple(row) != (total, total):
        raise RuntimeError(f"expected {total} payments on {total} threads, found {row}")


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["agent_kit", "agent_kit.store", "graphs.customer_service", "langchain.agents",
                                "langgraph.checkpoint.postgres", "bench._app", "bench.scale_out"])
    return ctx


def run(quick: bool = False) -> list[Result]:
    """Measure, print a readable table, and return one result per process count."""
    from . import _pg

    if not _pg.available():
        print(f"  no Postgres server at {_pg.PG_URL}: scale-out not measured")
        return []
    # Per side and process count; slices a multiple of the sides, so each goes first as often.
    approvals, slices = (12, 3) if quick else (48, 6)
    ctx = _context()
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    root = Path(tempfile.mkdtemp(prefix="ak_scale_out_"))
    try:
        for n in PROCESSES:
            for side, row in _measure(ctx, n, approvals, slices, root).items():
                rows[(side, n)] = row
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"  concurrent approvals on Postgres, each resumed in another process than the one that paused it; "
          f"{approvals} per side and process count in {slices} timed slices (median slice shown), "
          f"the sides' slices interleaved in rotation{'; quick' if quick else ''}; {os.cpu_count()} cores")
    print(f"  {'processes':>9} {'agent_kit /s':>13} {'langgraph /s':>13} {'ratio':>6} {'reference agent /s':>19} "
          f"{'ratio':>6}")
    for n in PROCESSES:
        ours, ref, lg = rows[("agent_kit", n)], rows[("reference", n)], rows[("langgraph", n)]
        print(f"  {n:>9} {ours['per_s']:>13.1f} {lg['per_s']:>13.1f} {ours['per_s'] / lg['per_s']:>6.2f} "
              f"{ref['per_s']:>19.1f} {ref['per_s'] / lg['per_s']:>6.2f}")
    print("  slices (approvals/s): " + "; ".join(
        f"{b} {n}p " + " ".join(f"{x:.1f}" for x in r["slices"]) for (b, n), r in rows.items()))
    retries = sum(r["retries"] for r in rows.values())
    if retries:
        print(f"  {retries} turns retried after RunBusyError on a thread no other process was running")
    results: list[Result] = []
    for n in PROCESSES:
        ours, lg = rows[("agent_kit", n)], rows[("langgraph", n)]
        ref = rows[("reference", n)]
        res = Result(f"scale_out_postgres_{n}p", ours["per_s"], lg["per_s"], "approvals/s", ">=1.0x",
                     ours["per_s"] >= lg["per_s"], f"{n} agent_kit workers (the same pay agent)",
                     f"{n} create_agent + HumanInTheLoopMiddleware workers", higher_is_better=True,
                     extra={"slices": {"agent_kit": ours["slices"], "langgraph": lg["slices"]},
                            "approvals": approvals})
        print(res.line(), flush=True)
        results.append(res)
        res = Result(f"scale_out_reference_postgres_{n}p", ref["per_s"], lg["per_s"], "approvals/s",
                     "none(reported)", True, f"{n} reference support agent workers (refund in the back office)",
                     f"{n} create_agent + HumanInTheLoopMiddleware workers", higher_is_better=True,
                     extra={"slices": {"reference": ref["slices"], "langgraph": lg["slices"]},
                            "approvals": approvals})
        print(res.line(), flush=True)
        results.append(res)
    return results


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
