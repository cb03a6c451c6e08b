"""Checkpoint growth over a long conversation: bare SqliteSaver vs agent_kit with retention.

Each turn: a customer message, a read_only tool call, its result, a reply (4 messages). Sizes are
the SQLite file after ``PRAGMA wal_checkpoint(TRUNCATE)`` (the WAL folded in and emptied), no
VACUUM. agent_kit's file also holds the audit trail and the other tables. Retention is applied
after each turn the way the runtime will (``RetentionPolicy().apply(store, thread)``).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from agent_kit import AgentRuntime
from agent_kit.retention import RetentionPolicy, checkpoint_count, reclaim_space

from . import Result, report
from ._app import LOOKUP, bare_graph, bare_saver, ours_graph

NAME = "checkpoint_growth"
GOAL_MB = 5.0


def _settled_size(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
    return path.stat().st_size


def _ours(home: Path, turns: int, retention: RetentionPolicy | None) -> dict[str, Any]:
    graph, store = ours_graph(home, LOOKUP, "done", with_checkpointer=False)
    runtime = AgentRuntime(graph, store=store)
    t0 = time.perf_counter()
    for i in range(turns):
        assert runtime.send("t", f"turn {i}").reply == "done"
        if retention is not None:
            retention.apply(store, "t")
    elapsed = time.perf_counter() - t0
    rows = checkpoint_count(store, "t")
    messages = len(runtime.state("t").values["messages"])
    assert store.path is not None
    size = _settled_size(store.path)
    full = None
    if retention is not None:
        reclaim_space(store, full=True)
        full = _settled_size(store.path)
    store.close()
    return {"bytes": size, "rows": rows, "messages": messages, "turn_ms": elapsed / turns * 1e3,
            "vacuumed_bytes": full}


def run(quick: bool = False) -> Result:
    turns = 50 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        path = home / "bare" / "bare.sqlite"
        saver = bare_saver(path)
        bare = bare_graph(saver, LOOKUP)
        cfg = {"configurable": {"thread_id": "t"}}
        t0 = time.perf_counter()
        for i in range(turns):
            bare.invoke({"messages": [HumanMessage(content=f"turn {i}")]}, cfg)
        bare_ms = (time.perf_counter() - t0) / turns * 1e3
        bare_rows = saver.conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        saver.conn.close()
        bare_bytes = _settled_size(path)
        kept = _ours(home / "ours", turns, RetentionPolicy())
        unpruned = _ours(home / "ours_unpruned", turns, None)
    mb = 1e6
    ours_mb, bare_mb = kept["bytes"] / mb, bare_bytes / mb
    res = Result(NAME, ours_mb, bare_mb, "MB", f"<={GOAL_MB:g}MB", ours_mb <= GOAL_MB,
                 "agent_kit + RetentionPolicy()", "bare SqliteSaver",
                 extra={"turns": turns, "messages": kept["messages"], "ours_rows": kept["rows"],
                        "bare_rows": bare_rows, "ours_unpruned_mb": unpruned["bytes"] / mb,
                        "ours_unpruned_rows": unpruned["rows"], "ours_vacuumed_mb": kept["vacuumed_bytes"] / mb,
                        "ours_turn_ms": kept["turn_ms"], "ours_unpruned_turn_ms": unpruned["turn_ms"],
                        "bare_turn_ms": bare_ms})
    return report(res, [
        f"{turns} turns ({kept['messages']} messages), file size after a WAL checkpoint, no VACUUM",
        f"bare SqliteSaver            {bare_mb:7.2f} MB  {bare_rows:5d} checkpoints  {bare_ms:5.1f} ms/turn",
        f"agent_kit, no retention     {unpruned['bytes'] / mb:7.2f} MB  {unpruned['rows']:5d} checkpoints  "
        f"{unpruned['turn_ms']:5.1f} ms/turn",
        f"agent_kit + retention       {ours_mb:7.2f} MB  {kept['rows']:5d} checkpoints  {kept['turn_ms']:5.1f} ms/turn"
        f"  (after a VACUUM: {kept['vacuumed_bytes'] / mb:.2f} MB)",
    ])
