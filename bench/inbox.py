"""Listing paused runs: the inbox index vs a get_state scan of every thread.

Real paused threads are made by the runtime (a gated call: ``AgentRuntime.send`` pauses it, which
writes its checkpoints and its inbox row). Running 10,000 of them through the graph takes minutes,
so ``SEED`` real ones are made and then cloned to 10,000 threads by copying their checkpoint and
write rows under new thread ids and their inbox rows under new thread and interrupt ids: each
clone is a real paused thread that ``get_state`` reads like the original.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from agent_kit import AgentRuntime
from agent_kit.inbox import _put

from . import Result, interleave, median, report
from ._app import PAY, ours_graph

NAME = "inbox"
GOAL_MS = 50.0
GOAL_X = 50.0
PAGE_GOAL_MS = 20.0
"""The first page (50 items, oldest first) of a million pending items."""
PAGE = 50


def run(quick: bool = False) -> Result:
    total, seed = (1_000, 50) if quick else (10_000, 200)
    rounds = 5 if quick else 15
    scan_rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        graph, store = ours_graph(Path(tmp) / "ours", PAY, None)
        runtime = AgentRuntime(graph, store=store)
        t0 = time.perf_counter()
        for i in range(seed):
            assert runtime.send(f"real{i}", "pay ann 50").status == "paused"
        per_real = (time.perf_counter() - t0) / seed
        t0 = time.perf_counter()
        originals = store.inbox.list()
        conn = sqlite3.connect(str(store.path))
        with conn:
            for k in range(seed, total):
                src = originals[k % seed]
                new = f"clone{k}"
                conn.execute("INSERT INTO checkpoints SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
                             "type, checkpoint, metadata FROM checkpoints WHERE thread_id = ?", (new, src.thread_id))
                conn.execute("INSERT INTO writes SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, "
                             "channel, type, value FROM writes WHERE thread_id = ?", (new, src.thread_id))
        conn.close()
        clones = [replace(originals[k % seed], thread_id=f"clone{k}", interrupt_id=f"{k:08d}-clone")
                  for k in range(seed, total)]
        store._db.write(lambda tx: [_put(tx, item) for item in clones])  # type: ignore[attr-defined]
        build_s = time.perf_counter() - t0
        saver = store.checkpointer()

        def ours(_: int) -> None:
            items = store.inbox.list()
            assert len(items) == total

        def scan(_: int) -> None:
            with saver.cursor(transaction=False) as cur:
                threads = [r[0] for r in cur.execute("SELECT DISTINCT thread_id FROM checkpoints")]
            paused = 0
            for t in threads:
                snap = runtime.graph.get_state({"configurable": {"thread_id": t}})
                paused += bool(snap.interrupts)
            assert paused == total, paused

        a, _ = interleave(ours, lambda i: None, rounds=rounds, warmup=2, scale=1e3)
        sa, sb = interleave(ours, scan, rounds=scan_rounds, warmup=0, scale=1e3)
        # The first page of a much larger inbox: the items are copied under new thread and
        # interrupt ids (body and columns alike) until there are ``big`` of them. The goal is set
        # for 1,000,000 (AGENT_KIT_BENCH_INBOX_PAGE_OF=1000000: growing it takes minutes on a
        # shared 2-core machine); the page is an index range read, so it grows with the B-tree's
        # depth, not with the count.
        big = 100_000 if quick else int(os.environ.get("AGENT_KIT_BENCH_INBOX_PAGE_OF", "200000"))
        t0 = time.perf_counter()
        store._db.write(lambda tx: tx.execute(  # type: ignore[attr-defined]
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ?) "
            "INSERT INTO inbox (interrupt_id, thread_id, kind, requested_at, body) "
            "SELECT interrupt_id || '-' || k, thread_id || '-' || k, kind, requested_at, "
            "json_set(body, '$.interrupt_id', interrupt_id || '-' || k, '$.thread_id', thread_id || '-' || k) "
            "FROM inbox, n", (big // total - 1,)))
        grow_s = time.perf_counter() - t0

        def page(_: int) -> None:
            assert len(store.inbox.list(limit=PAGE)) == PAGE

        pa, _ = interleave(page, lambda i: None, rounds=rounds * 2, warmup=2, scale=1e3)
        pending = store._db.fetchone("SELECT count(*) FROM inbox")[0]  # type: ignore[attr-defined,index]
        store.close()
    ours_m, scan_m = median(a + sa), median(sb)
    speedup = scan_m / ours_m
    page_m = median(pa)
    res = Result(NAME, ours_m, scan_m, "ms", f"<={GOAL_MS:g}ms,>={GOAL_X:g}x;page<={PAGE_GOAL_MS:g}ms",
                 ours_m <= GOAL_MS and speedup >= GOAL_X and page_m <= PAGE_GOAL_MS,
                 "store.inbox.list()", "get_state scan",
                 extra={"paused_runs": total, "real_runs": seed, "cloned_runs": total - seed,
                        "real_run_ms": per_real * 1e3, "clone_build_s": build_s, "speedup": speedup,
                        "scan_rounds": scan_rounds, "first_page_ms": page_m, "first_page_of": pending,
                        "grow_s": grow_s})
    return report(res, [
        f"{total} paused runs: {seed} real (runtime.send, {per_real * 1e3:.0f} ms each), "
        f"{total - seed} cloned from them by copying their rows ({build_s:.1f} s)",
        f"inbox.list()          median {ours_m:9.1f} ms ({len(a + sa)} rounds)",
        f"get_state scan        median {scan_m:9.1f} ms ({scan_rounds} full scans of {total} threads)",
        f"speed-up {speedup:.0f}x",
        f"first page ({PAGE}) of {pending:,} pending: median {page_m:.2f} ms (goal <={PAGE_GOAL_MS:g} ms; "
        f"grown in {grow_s:.1f} s)",
    ])
