"""What the reliability tests assert: effects in the system of record against ledger and audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_kit.store import Store
from tests.fixture_app import Records

WORKER = Path(__file__).resolve().parent / "worker.py"
THREAD = "t-reliability"
JANE_ID = "cus_jane"


def run_worker(home: Path, scenario: str, step: str, *, durability: str = "sync", crash_at: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one step of ``scenario`` in a new OS process; ``crash_at`` names where it must die."""
    args = _args(home, scenario, step, durability)
    return subprocess.run([sys.executable, str(WORKER), json.dumps(args)], env={**_clean_env(), **_crash_env(crash_at)},
                          capture_output=True, text=True, timeout=timeout, check=False)


class ForkServer:
    """Runs worker steps as forked children of one pre-imported server process (``worker.py --serve``)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.jobs = 0
        self.proc = subprocess.Popen([sys.executable, str(WORKER), "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=_clean_env())

    def run(self, home: Path, scenario: str, step: str, *, durability: str = "sync",
            crash_at: str | None = None, db_url: str | None = None, schema: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Like :func:`run_worker`, in a new forked process (on Postgres when ``db_url`` is given;
        ``env`` adds variables for the step, such as ``RELIABILITY_SLOW_PUT``)."""
        self.jobs += 1
        out, err = self.scratch / f"{self.jobs}.out", self.scratch / f"{self.jobs}.err"
        args = {**_args(home, scenario, step, durability), "db_url": db_url, "schema": schema}
        job = {"args": args, "env": {**_crash_env(crash_at), **(env or {})},
               "out": str(out), "err": str(err)}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the fork server died (exit {self.proc.poll()})"
        return subprocess.CompletedProcess(job["args"], json.loads(line)["returncode"],
                                           out.read_text(), err.read_text())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("AGENT_KIT_CRASH_AT", "RELIABILITY_CRASH_AT", "AGENT_KIT_DB_URL", "AGENT_KIT_MODEL")}


def _crash_env(crash_at: str | None) -> dict[str, str]:
    if crash_at == "before_checkpoint":
        return {"RELIABILITY_CRASH_AT": crash_at}  # the worker's own hook on the checkpointer
    if crash_at is not None:
        return {"AGENT_KIT_CRASH_AT": crash_at}  # agent_kit's crash_point() in the execute node
    return {}


def _args(home: Path, scenario: str, step: str, durability: str) -> dict[str, Any]:
    return {"home": str(home), "thread": THREAD, "scenario": scenario, "step": step, "durability": durability}


def report_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report on a worker's last stdout line (fails with its stderr if there is none)."""
    assert proc.returncode == 0, f"worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def shop_writes(shop: Records, tool: str) -> list[str]:
    """Idempotency keys of the committed writes of ``tool``: one per effect (each write records its key)."""
    return list(shop.effects(tool))


def business_effects(shop: Records, tool: str) -> int:
    """How many times ``tool``'s effect shows in the business tables of the system of record."""
    if tool == "issue_refund":
        return len(shop.refunds(1001))
    if tool == "apply_discount":
        return sum(1 for d in shop.discounts() if d["order_id"] == 1002)
    if tool == "create_ticket":
        return len(shop.tickets())
    if tool == "cancel_order":
        return int(shop.order(1002)["status"] == "cancelled")  # type: ignore[index]
    if tool == "change_address":
        return int(shop.order(1002)["address"].startswith("1 Main St"))  # type: ignore[index]
    if tool == "update_preferences":
        return int(not shop.emails_allowed(JANE_ID))
    raise AssertionError(f"no effect check for {tool}")


def effect_count(home: Path, tool: str) -> int:
    with Records.at_home(home) as shop:
        writes = shop_writes(shop, tool)
        shown = business_effects(shop, tool)
    assert len(writes) <= 1, f"{tool} was written {len(writes)} times: {writes}"
    assert shown == len(writes), f"{tool}: {shown} effect(s) in the business tables, {len(writes)} write(s) recorded"
    return len(writes)


def assert_executed_exactly_once(store: Store, home: Path, thread: str, tool: str) -> None:
    """One effect in the system of record, one ``done`` ledger record with its key, one ``executed``
    entry naming that key, nothing left in the inbox, and an intact audit chain."""
    with Records.at_home(home) as shop:
        writes = shop_writes(shop, tool)
        shown = business_effects(shop, tool)
    assert len(writes) == 1, f"{tool} should have run exactly once; the system of record has {len(writes)} write(s)"
    assert shown == 1, f"{tool}: the business tables show {shown} effect(s)"
    records = [r for r in store.ledger.for_thread(thread) if r.tool == tool]
    assert [(r.status, r.key) for r in records] == [("done", writes[0])], records
    executed = [e for e in store.audit.entries(thread, kind="executed") if e.tool == tool]
    assert len(executed) == 1, [e.to_json() for e in executed]
    assert executed[0].data["idempotency_key"] == records[0].key
    assert executed[0].action_hash == records[0].action_hash
    assert store.inbox.for_thread(thread) == []
    report = store.audit.verify()
    assert report.ok, report.to_json()
