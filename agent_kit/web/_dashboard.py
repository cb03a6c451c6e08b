"""The dashboard's figures, all read from the audit trail (and the ledger, for amounts).

Everything here is derived from entries the runtime wrote; nothing is counted on the side, so the
dashboard agrees with ``agent-kit audit`` and cannot drift from it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent_kit.web._views import parse_time

__all__ = ["Figures", "figures"]

REQUESTED = ("approval_requested", "escalated")
DECIDED = ("approved", "edited", "rejected", "resolved", "refused")
MAX_ENTRIES = 50_000
"""The dashboard reads at most the newest this many audit entries."""

TIME_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 min", 60), ("1–5 min", 300), ("5–15 min", 900), ("15–60 min", 3600),
    ("1–4 h", 4 * 3600), ("4–24 h", 86400), ("> 1 day", float("inf")),
)


@dataclass(frozen=True)
class Figures:
    pending_series: dict[str, list[tuple[datetime, int]]]
    """Role -> (time, items pending on that role then), over the period shown."""
    time_to_decision: list[tuple[str, int]]
    """(bucket label, decisions that took that long)."""
    median_decision_s: float | None
    by_rule: dict[str, dict[str, int]]
    """Rule -> outcome -> count."""
    executed: dict[str, dict[str, tuple[int, float]]]
    """Tool -> ``automatic`` / ``approved`` -> (count, sum of ``amount`` arguments)."""
    decided_count: int
    executed_count: int
    pending_now: int


def figures(store: Any, now: datetime, *, points: int = 24) -> Figures:
    head, _ = store.audit.head()
    entries = store.audit.entries(after_seq=max(0, head - MAX_ENTRIES))
    requested: dict[tuple[str | None, str], Any] = {}
    decided: dict[tuple[str | None, str], Any] = {}
    executed: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"automatic": [0, 0.0], "approved": [0, 0.0]})
    for e in entries:
        key = (e.thread_id, e.interrupt_id or "")
        if e.kind in REQUESTED and e.interrupt_id:
            requested.setdefault(key, e)
        elif e.kind in DECIDED and e.interrupt_id:
            decided.setdefault(key, e)
        elif e.kind == "executed" and e.tool:
            how = "approved" if e.data.get("approvals") else "automatic"
            cell = executed[e.tool][how]
            cell[0] += 1
            amount = _amount(store, e)
            if amount is not None:
                cell[1] += amount

    # pending by role over time: +1 at each request, -1 at its decision
    events: list[tuple[datetime, str, int]] = []
    for key, req in requested.items():
        role = str(req.data.get("required_role") or "anyone")
        at = parse_time(req.at)
        if at is None:
            continue
        events.append((at, role, 1))
        dec = decided.get(key)
        dec_at = parse_time(dec.at) if dec is not None else None
        if dec_at is not None:
            events.append((dec_at, role, -1))
    events.sort(key=lambda ev: ev[0])
    series: dict[str, list[tuple[datetime, int]]] = {}
    if events:
        # From just before the first request to now: the whole story, however long it took.
        span = max(now - events[0][0], timedelta(seconds=30))
        start = now - span * 1.05
        step = (now - start) / max(1, points - 1)
        roles = sorted({r for _, r, _ in events})
        level = dict.fromkeys(roles, 0)
        series = {r: [] for r in roles}
        i = 0
        for n in range(points):
            t = start + step * n
            while i < len(events) and events[i][0] <= t:
                level[events[i][1]] += events[i][2]
                i += 1
            for r in roles:
                series[r].append((t, max(0, level[r])))

    waits: list[float] = []
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for key, dec in decided.items():
        req = requested.get(key)
        if req is None:
            continue
        a, b = parse_time(req.at), parse_time(dec.at)
        if a is not None and b is not None:
            waits.append(max(0.0, (b - a).total_seconds()))
        outcome = dec.kind
        if dec.kind == "resolved":
            outcome = "handed back" if dec.data.get("resolution") == "return" else "resolved"
        by_rule[str(req.data.get("rule") or req.kind)][outcome] += 1
    hist = Counter(next(label for label, top in TIME_BUCKETS if w < top) for w in waits)
    return Figures(
        pending_series=series,
        time_to_decision=[(label, hist.get(label, 0)) for label, _ in TIME_BUCKETS],
        median_decision_s=statistics.median(waits) if waits else None,
        by_rule={rule: dict(c) for rule, c in sorted(by_rule.items())},
        executed={tool: {k: (int(v[0]), float(v[1])) for k, v in d.items()} for tool, d in sorted(executed.items())},
        decided_count=len(waits),
        executed_count=int(sum(v[0] for d in executed.values() for v in d.values())),
        pending_now=sum(s[-1][1] for s in series.values()) if series else 0,
    )


def _amount(store: Any, entry: Any) -> float | None:
    key = entry.data.get("idempotency_key")
    record = store.ledger.get(key) if key else None
    value = record.args.get("amount") if record is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
