"""One aggregate-limit decision over a large ledger: the customer's refunds in the last 24 h.

100,000 executed payments by 2,000 customers over the last 7 days are in the ledger (each with
its totals' rows, as the execute node writes them). A decision is ``Kernel.decide``:
the running total read from the ledger (one indexed query), then ``Policy.evaluate``. The anchor
is the policy benchmark's: Cedar's ``is_authorized`` on a parsed policy set (no totals at all).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cedarpy

from agent_kit import Mode, Policy, create_permissioned_agent, register
from agent_kit._canonical import action_hash
from agent_kit._totals import dimensions
from agent_kit.store import Store
from agent_kit.testing import ScriptedChatModel

from . import Result, median, report
from ._app import pay
from .policy_decision import _cedar_request, cedar_text

NAME = "aggregate_limit"
GOAL_US = 200.0
CUSTOMERS = 2_000

POLICY: dict[str, Any] = {
    "approvers": {"lee": ["lead"], "sam": ["lead"]},
    "tools": {"pay": {"mode": "execute_limited", "aggregates": {
        "daily": {"sum": "args.amount", "per": "context.customer_id", "within": "24h"}}, "rules": [
        {"id": "over_50", "when": {"aggregates.daily": {"gt": 50}}, "approval": {"role": "lead"}},
        {"id": "over_300", "when": {"aggregates.daily": {"gt": 300}}, "approval": {"role": "lead", "count": 2}},
        {"id": "over_500", "when": {"aggregates.daily": {"gt": 500}}, "mode": "escalate"}]}},
}


def _fill(store: Store, n: int) -> None:
    """n executed payments, spread over customers and the last 7 days, written as the ledger would."""
    rnd = random.Random(7)
    now = datetime.now(UTC)
    conn = store._db.connection()  # bulk set-up only: the real path writes one action at a time
    conn.execute("BEGIN")
    rows = []
    for i in range(n):
        cust = f"c{i % CUSTOMERS}"
        args = {"to": f"acct{rnd.randrange(10_000)}", "amount": float(rnd.randrange(1, 40))}
        at = (now - timedelta(seconds=rnd.randrange(7 * 86400))).isoformat(timespec="microseconds")
        key = f"ak_bench_{i}"
        for dim, val in dimensions(f"thread{i % (CUSTOMERS * 3)}", args, {"customer_id": cust}):
            rows.append((key, dim, val, "pay", f"thread{i}", json.dumps({"amount": args["amount"]}), at, "done"))
        if len(rows) > 50_000:
            conn.executemany("INSERT INTO ledger_totals VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            rows = []
    conn.executemany("INSERT INTO ledger_totals VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")


def run(quick: bool = False) -> Result:
    n_rows = 10_000 if quick else 100_000
    n = 500 if quick else 5_000
    with tempfile.TemporaryDirectory() as home:
        store = Store.open(home=Path(home))
        try:
            _fill(store, n_rows)
            graph = create_permissioned_agent(ScriptedChatModel(steps=[]), [register(pay, Mode.EXECUTE_LIMITED)],
                                              Policy.from_dict(POLICY), store=store)
            kernel = graph.agent_kit.kernel
            rnd = random.Random(11)
            reqs = []
            for i in range(n):
                args = {"to": "acct1", "amount": float(rnd.randrange(1, 60))}
                action = {"tool": "pay", "args": args, "tool_call_id": f"call{i}", "turn": None,
                          "hash": action_hash("pay", args), "grants": {"verified": [], "approvals": []}}
                reqs.append((action, {"customer_id": f"c{rnd.randrange(CUSTOMERS)}", "customer_verified": True}))
            pset = cedarpy.PolicySet.from_str(cedar_text())
            entities = cedarpy.Entities.from_json_str("[]")
            creqs = [_cedar_request("t1", {"amount": int(a["args"]["amount"]), "region": "us"},
                                    {"customer_verified": True}) for a, _ in reqs]
            outcomes = {kernel.decide(a, c, thread="bench").outcome for a, c in reqs[:200]}  # warm-up
            assert outcomes <= {"allow", "approve", "escalate"} and len(outcomes) > 1, outcomes
            ours_t: list[float] = []
            cedar_t: list[float] = []
            pc = time.perf_counter_ns
            for k, ((action, ctx), creq) in enumerate(zip(reqs, creqs)):
                pair = [("ours", lambda a=action, c=ctx: kernel.decide(a, c, thread="bench")),
                        ("cedar", lambda q=creq: cedarpy.is_authorized(q, pset, entities))]
                for label, fn in (pair if k % 2 == 0 else pair[::-1]):
                    t0 = pc()
                    fn()
                    (ours_t if label == "ours" else cedar_t).append((pc() - t0) / 1000)
        finally:
            store.close()
    ours_m, cedar_m = median(ours_t), median(cedar_t)
    res = Result(NAME, ours_m, cedar_m, "us", f"<={GOAL_US:g}us", ours_m <= GOAL_US,
                 "Kernel.decide with a 24 h total", "cedarpy.is_authorized (parsed PolicySet, no totals)",
                 extra={"ledger_actions": n_rows, "decisions": n,
                        "ours_p99_us": sorted(ours_t)[int(len(ours_t) * .99)]})
    return report(res, [
        f"{n_rows:,} executed actions by {CUSTOMERS:,} customers over 7 days; {n} decisions, alternating with Cedar",
        f"Kernel.decide (ledger total + evaluate) median {ours_m:7.1f} us  p99 {res.extra['ours_p99_us']:.1f} us",
        f"cedarpy.is_authorized, parsed PolicySet          median {cedar_m:7.1f} us",
    ])


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(True).to_json(), indent=1))
