"""Several processes on one fresh shop file: seeded once, one write per idempotency key."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from tools import Shop

PROCESSES = 4


def _open_and_refund(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()  # every process opens the fresh file at the same moment
    try:
        with Shop(path) as shop:
            refund = shop.issue_refund(1003, 100, "dent", customer_id="cus_jane", idempotency_key="same-key")
            results.put((shop.count("customers"), shop.count("orders"), refund))
    except Exception as error:  # report it, so the test fails at once instead of waiting
        results.put(("error", repr(error), None))


@pytest.mark.parametrize("trial", range(3))
def test_processes_opening_a_fresh_file_at_once_seed_once(tmp_path: Path, trial: int) -> None:
    path = tmp_path / "fresh" / "shop.sqlite"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [context.Process(target=_open_and_refund, args=(str(path), barrier, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    assert [o for o in outcomes if o[0] == "error"] == []
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    assert {(customers, orders) for customers, orders, _ in outcomes} == {(2, 5)}
    assert len({refund["refund_id"] for _, _, refund in outcomes}) == 1
    with Shop(path) as shop:
        assert shop.count("customers") == 2
        assert shop.count("orders") == 5
        assert len(list(shop.db.query("select * from meta where key = 'seeded_at'"))) == 1
        assert len(shop.refunds(1003)) == 1
